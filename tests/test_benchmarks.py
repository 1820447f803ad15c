"""Smoke runs of the benchmark scripts (``--quick``). Speed is never asserted here."""

import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize("script,expect", [
    ("bench_train.py", "| TINY b32 | jaxdl fit |"),
    ("bench_kernels.py", "matmul"),
])
def test_quick_benchmark_runs(script, expect, tmp_path):
    out = tmp_path / "report.md"
    out.write_text("# header written before\n")  # as `jaxdl bench` does: scripts append
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert expect in proc.stdout
    assert out.read_text().startswith("# header written before")
    assert out.stat().st_size > 200
