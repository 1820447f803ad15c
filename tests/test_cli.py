"""The `jaxdl` command."""

import subprocess
import sys

from jaxdl import cli


def test_info_lists_versions_and_devices(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "jaxdl" in out and "jax " in out and "backend" in out and "device" in out


def test_bench_runs_the_three_scripts_with_the_tuned_allocator(tmp_path, monkeypatch):
    calls = []

    def fake_call(cmd, env=None):
        calls.append((cmd, env))
        return 0

    monkeypatch.setattr(subprocess, "call", fake_call)
    out = tmp_path / "report.md"
    assert cli.main(["bench", "--quick", "--out", str(out)]) == 0
    scripts = [c[0][1].rsplit("/", 1)[-1] for c in calls]
    assert scripts == ["bench_kernels.py", "bench_train.py", "bench_compile.py"]
    assert all("--quick" in c[0] and str(out) in c[0] for c in calls)
    assert all(c[1]["GLIBC_TUNABLES"] == cli.MALLOC_TUNABLES for c in calls)
    assert out.read_text().startswith("# jaxdl benchmark report")  # the scripts append to it
    calls.clear()
    cli.main(["bench", "--no-tuned-malloc", "--out", str(out)])
    assert all(c[1].get("GLIBC_TUNABLES") != cli.MALLOC_TUNABLES for c in calls)


def test_console_script_help():
    proc = subprocess.run([sys.executable, "-m", "jaxdl", "--help"], capture_output=True,
                          text=True, check=True)
    assert "demo" in proc.stdout and "bench" in proc.stdout
