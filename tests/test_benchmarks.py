"""Smoke runs of the benchmark scripts (``--quick``). Speed is never asserted here."""

import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


def _run(script, args, tmp_path):
    out = tmp_path / "report.md"
    out.write_text("# header written before\n")  # as `jaxdl bench` does: scripts append
    proc = subprocess.run([sys.executable, str(BENCH / script), *args, "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.read_text().startswith("# header written before")
    assert out.stat().st_size > 200
    return proc.stdout


@pytest.mark.parametrize("script,args,expect", [
    ("bench_train.py", ["--quick", "--only", "tiny32", "--rounds", "1", "--seconds", "0.05",
                        "--contestants", "jaxdl step,jaxdl fit,raw JAX"],
     "| TINY b32 | jaxdl fit |"),
    ("bench_kernels.py", ["--smoke"], "matmul"),
    ("bench_gan.py", ["--quick", "--rounds", "1", "--seconds", "0.05",
                      "--contestants", "jaxdl step"], "| jaxdl step |"),
])
def test_smallest_benchmark_runs(script, args, expect, tmp_path):
    """CI's variant: one workload, one round; the scripts' wiring and report, not the numbers."""
    assert expect in _run(script, args, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("script,expect", [
    ("bench_train.py", "| TINY b32 | jaxdl fit |"),
    ("bench_kernels.py", "matmul"),
    ("bench_startup.py", "| PyTorch |"),
])
def test_quick_benchmark_runs(script, expect, tmp_path):
    assert expect in _run(script, ["--quick"], tmp_path)


def test_tune_benchmark_runs(tmp_path):
    """bench_tune's wiring and report on the smallest run (5 random trials, one seed, no timing)."""
    stdout = _run("bench_tune.py", ["--quick", "--problems", "branin", "--contestants",
                                    "jaxdl bayes,optuna random", "--seeds", "1", "--trials", "5",
                                    "--timing-repeats", "0"], tmp_path)
    assert "| branin |" in stdout and "target (issue 14)" in stdout


def test_startup_benchmark_runs(tmp_path):
    """bench_startup's wiring, and a second run of a script starts warm.

    The tiny model, one round, jaxdl with a warm persistent cache: two fresh processes
    (the uncounted one that fills the cache, the measured one). Counts, not times, are
    checked: the measured process compiles nothing, it loads every program it needs for
    creation and the first step from the cache, and the second step needs none.
    """
    stdout = _run("bench_startup.py", ["--model", "tiny", "--rounds", "1", "--contestants",
                                       "jaxdl warm cache"], tmp_path)
    row = next(line.split("|")[2:-1] for line in stdout.splitlines()
               if line.startswith("| jaxdl warm cache |"))
    compiles, hits = ([int(n) for n in cell.split(" / ")] for cell in row[-2:])
    assert compiles == [0, 0, 0], row
    assert hits[0] >= 1 and hits[1] >= 1 and hits[2] == 0, row
    assert row[5].strip() == "n/a", row  # no PyTorch in this run: no ratio
