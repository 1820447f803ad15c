"""The ``jaxdl`` command: ``jaxdl info``, ``jaxdl demo``, ``jaxdl bench``."""

from __future__ import annotations

import argparse
import platform
import sys
from importlib import metadata
from typing import Optional, Sequence

from jaxdl import _xla, compilation


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def info() -> str:
    """Versions of jaxdl and its dependencies, the JAX backend, its devices, the processes
    (several after ``jax.distributed.initialize()``) and the mesh ``fit(mesh="data")`` uses."""
    import jax

    import jaxdl
    from jaxdl.train import sharding

    lines = [f"jaxdl      {jaxdl.__version__}",
             f"python     {platform.python_version()} ({platform.machine()}, {platform.system()})"]
    for dist in ("jax", "jaxlib", "optax", "flax", "numpy"):
        lines.append(f"{dist:<10} {_version(dist)}")
    lines.append(f"backend    {jax.default_backend()}")
    for d in jax.devices():
        lines.append(f"device     {d.id}: {d.device_kind} ({d.platform}, process "
                     f"{d.process_index})")
    lines.append(f"processes  {jax.process_count()} (this is process {jax.process_index()}; "
                 f"local devices: {jax.local_device_count()})")
    mesh = sharding.resolve_mesh("jaxdl info", sharding.DATA_AXIS)
    lines.append(f"mesh       fit(mesh='data') splits batches over {sharding.describe_mesh(mesh)}")
    lines.append(f"xla cache  {compilation.cache_status()}")
    lines.append(f"malloc     {_xla.malloc_status()}")
    return "\n".join(lines)


def configure_process() -> None:
    """What the ``jaxdl`` command turns on for its own process before any work: glibc's
    malloc tuned so that large step buffers are reused (:func:`jaxdl.tune_malloc`, unless
    ``JAXDL_TUNE_MALLOC=0``), and JAX's persistent compilation cache (unless
    ``JAXDL_COMPILATION_CACHE=0``), so the second ``jaxdl demo`` starts warm. A cache
    directory that cannot be used is reported and skipped, never fatal."""
    _xla.tune_malloc()
    if compilation.cache_requested():
        try:
            compilation.enable_cache()
        except ValueError as err:
            print(f"jaxdl: running without the compilation cache: {err}", file=sys.stderr)


def bench(quick: bool = False, out: str = "jaxdl-bench.md", tuned_malloc: bool = True) -> int:
    """Run the scripts in benchmarks/ (kernels, train, fit_loop, compile, startup); collect
    their tables in ``out``."""
    import os
    import pathlib
    import subprocess

    root = pathlib.Path(__file__).resolve().parent.parent / "benchmarks"
    if not (root / "bench_train.py").exists():
        print(f"jaxdl bench: the benchmark scripts are not next to this installation "
              f"({root} is missing). Run it from a source checkout installed with "
              f"`pip install -e .`.", file=sys.stderr)
        return 2
    env = dict(os.environ)
    if tuned_malloc:  # every framework alike, through the children's environment
        env["GLIBC_TUNABLES"] = _xla.MALLOC_TUNABLES
    else:  # untuned means untuned: a user's JAXDL_TUNE_MALLOC=1 must not reach the children
        env[_xla.MALLOC_ENV] = "0"
    out = os.path.abspath(out)
    with open(out, "w") as f:
        f.write(f"# jaxdl benchmark report\n\n{info()}\n\nGLIBC_TUNABLES="
                f"{env.get('GLIBC_TUNABLES', '(unset)')}\n")
    status = 0
    for script in ("bench_kernels.py", "bench_train.py", "bench_fit_loop.py", "bench_compile.py",
                   "bench_startup.py"):
        cmd = [sys.executable, str(root / script), "--out", out] + (["--quick"] if quick else [])
        print(f"$ {' '.join(cmd)}", flush=True)
        status |= subprocess.call(cmd, env=env)
    print(f"\nreport written to {out}")
    return status


def positive_int(text: str) -> int:
    """argparse type for counts such as ``--epochs``: an integer >= 1, else a usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``jaxdl`` console script; returns the exit status."""
    from jaxdl import __version__

    parser = argparse.ArgumentParser(prog="jaxdl", description="jaxdl: deep learning for JAX "
                                     "from pure functions.")
    parser.add_argument("--version", action="version", version=f"jaxdl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{info,demo,bench}")
    sub.add_parser("info", help="print versions, the JAX backend, its devices, the "
                   "processes and the mesh fit(mesh='data') uses")
    demo_p = sub.add_parser("demo", help="train the default CNN on the bundled 8x8 digits")
    demo_p.add_argument("--epochs", type=positive_int, default=20,
                        help="training epochs, at least 1 (default 20)")
    demo_p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo_p.add_argument("--out", default=".", help="directory for the curves PNG (default .)")
    bench_p = sub.add_parser("bench", help="run the benchmark suite (kernels, training steps, "
                             "fit against a step loop, compile times, time to first step) and "
                             "write a markdown report")
    bench_p.add_argument("--quick", action="store_true", help="smoke run (about 3 minutes)")
    bench_p.add_argument("--out", default="jaxdl-bench.md", help="report file (default "
                         "jaxdl-bench.md)")
    bench_p.add_argument("--no-tuned-malloc", action="store_true",
                         help="leave glibc's malloc untuned (default: tune it for every framework)")
    args = parser.parse_args(argv)
    if args.command in ("info", "demo"):
        configure_process()
    if args.command == "info":
        print(info())
        return 0
    if args.command == "demo":
        from jaxdl import demo as _demo
        return _demo.main(epochs=args.epochs, seed=args.seed, out=args.out)
    if args.command == "bench":
        return bench(quick=args.quick, out=args.out, tuned_malloc=not args.no_tuned_malloc)
    parser.print_help()
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
