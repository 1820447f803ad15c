"""First-call compile time of the training steps in bench_train.py.

For each contestant and workload the first call of a fresh step (trace +
XLA compile + one run) is timed, then the steady-state time of one step is
subtracted, leaving the compile overhead a user waits for before training
starts. Each measurement runs in a fresh subprocess so that no cache of an
earlier contestant helps a later one. PyTorch (eager) compiles nothing and
is left out.

Usage::

    python benchmarks/bench_compile.py [--quick] [--out results.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
JAX_CONTESTANTS = ("jaxdl step", "raw JAX", "Flax NNX", "Equinox")


def _child(name: str, kind: str, batch: int) -> None:
    sys.path.insert(0, HERE)
    import bench_train

    t0 = time.perf_counter()
    run = bench_train.CONTESTANTS[name](kind, batch)
    if run is None:
        print(json.dumps(None))
        return
    build = time.perf_counter() - t0
    t = time.perf_counter()
    run(1)
    first = time.perf_counter() - t
    run(3)
    t = time.perf_counter()
    run(10)
    steady = (time.perf_counter() - t) / 10
    print(json.dumps({"build_s": build, "first_s": first, "steady_s": steady}))


def measure(name: str, kind: str, batch: int, repeats: int) -> dict | None:
    samples = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, __file__, "--child", name, kind, str(batch)],
                             capture_output=True, text=True, check=True).stdout.strip()
        res = json.loads(out.splitlines()[-1])
        if res is None:
            return None
        samples.append(res)
    return {k: statistics.median(s[k] for s in samples) for k in samples[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="jaxdl compile-time benchmark")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=None)
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        _child(a.child[0], a.child[1], int(a.child[2]))
        return 0
    repeats = 1 if a.quick else 3
    workloads = [("mlp", 128)] if a.quick else [("mlp", 128), ("cnn", 128)]
    lines = ["| workload | contestant | first call (s) | of which compile (s) | steady step (ms) |",
             "|---|---|---:|---:|---:|"]
    for kind, batch in workloads:
        for name in JAX_CONTESTANTS:
            r = measure(name, kind, batch, repeats)
            if r is None:
                continue
            lines.append(f"| {kind.upper()} b{batch} | {name} | {r['first_s']:.2f} | "
                         f"{r['first_s'] - r['steady_s']:.2f} | {1e3 * r['steady_s']:.2f} |")
            print(lines[-1], flush=True)
    md = "\n".join(lines)
    print()
    print(md)
    if a.out:
        with open(a.out, "a") as f:
            f.write(f"\nCompile times (median of {repeats} fresh processes; command: "
                    f"`python benchmarks/bench_compile.py {' '.join(argv or sys.argv[1:])}`)\n\n"
                    f"{md}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
