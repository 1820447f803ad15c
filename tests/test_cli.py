"""The `jaxdl` command."""

import subprocess
import sys

import pytest

from jaxdl import _xla, cli


def test_info_lists_versions_and_devices(capsys, monkeypatch, tmp_path):
    from jaxdl import compilation

    monkeypatch.setenv(compilation.CACHE_ENV, str(tmp_path / "xla"))
    monkeypatch.setenv("JAXDL_TUNE_MALLOC", "0")  # malloc stays as it is in this test process
    try:
        assert cli.main(["info"]) == 0  # the command turns the persistent cache on
    finally:
        compilation.disable_cache()  # this test process goes on without it
    out = capsys.readouterr().out
    assert "jaxdl" in out and "jax " in out and "backend" in out and "device" in out
    assert f"xla cache  on, {tmp_path / 'xla'} (" in out
    assert ("\nmalloc     tuned by jaxdl (" in out  # by an earlier test of this process
            or "\nmalloc     not tuned: JAXDL_TUNE_MALLOC=0" in out)
    monkeypatch.setenv(compilation.CACHE_ENV, "0")
    assert cli.main(["info"]) == 0
    assert "xla cache  off (" in capsys.readouterr().out


def test_info_names_the_processes_and_the_mesh_fit_would_use():
    import jax

    lines = cli.info().splitlines()
    devices = jax.devices()
    assert [line for line in lines if line.startswith("device ")] == [
        f"device     {d.id}: {d.device_kind} ({d.platform}, process 0)" for d in devices]
    assert f"processes  1 (this is process 0; local devices: {len(devices)})" in lines
    (mesh_line,) = [line for line in lines if line.startswith("mesh ")]
    assert "fit(mesh='data')" in mesh_line and f"data: {len(devices)} " in mesh_line
    assert devices[0].platform in mesh_line
    # 2 processes x 2 devices: tests/test_multihost.py checks the lines each worker prints


def test_bench_runs_the_five_scripts_with_the_tuned_allocator(tmp_path, monkeypatch):
    calls = []

    def fake_call(cmd, env=None):
        calls.append((cmd, env))
        return 0

    monkeypatch.setattr(subprocess, "call", fake_call)
    out = tmp_path / "report.md"
    assert cli.main(["bench", "--quick", "--out", str(out)]) == 0
    scripts = [c[0][1].rsplit("/", 1)[-1] for c in calls]
    assert scripts == ["bench_kernels.py", "bench_train.py", "bench_fit_loop.py",
                       "bench_compile.py", "bench_startup.py"]
    assert all("--quick" in c[0] and str(out) in c[0] for c in calls)
    assert all(c[1]["GLIBC_TUNABLES"] == _xla.MALLOC_TUNABLES for c in calls)
    assert out.read_text().startswith("# jaxdl benchmark report")  # the scripts append to it
    calls.clear()
    cli.main(["bench", "--no-tuned-malloc", "--out", str(out)])
    assert all(c[1].get("GLIBC_TUNABLES") != _xla.MALLOC_TUNABLES for c in calls)


def test_console_script_help():
    proc = subprocess.run([sys.executable, "-m", "jaxdl", "--help"], capture_output=True,
                          text=True, check=True)
    assert "demo" in proc.stdout and "bench" in proc.stdout


@pytest.mark.parametrize("value, message", [
    ("0", "argument --epochs: must be at least 1, got 0"),
    ("-3", "argument --epochs: must be at least 1, got -3"),
    ("two", "argument --epochs: expected a positive integer, got 'two'"),
])
def test_demo_rejects_epochs_below_one_as_a_usage_error(capsys, value, message):
    """Issue 10 item 17: no traceback, argparse's exit status 2 and a message naming --epochs."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["demo", "--epochs", value])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_version_flag(capsys):
    import jaxdl

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"jaxdl {jaxdl.__version__}"


@pytest.mark.slow  # the same check runs in CI inside test_demo_cnn_reaches_97_percent_...
def test_demo_first_epoch_validation_accuracy_is_not_broken(tmp_path):
    """Issue 10 item 17: the demo's batch norms warm up within the first epoch."""
    from jaxdl import demo

    result = demo.run(epochs=1, verbose=0, out=str(tmp_path))
    # Inference-mode accuracy on the held-out 10 %; with BatchNorm(momentum=0.99) it was 0.27.
    assert result["history"]["val_accuracy"][0] > 0.6
