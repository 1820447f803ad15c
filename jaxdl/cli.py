"""The ``jaxdl`` command: ``jaxdl info``, ``jaxdl demo``, ``jaxdl bench``."""

from __future__ import annotations

import argparse
import platform
import sys
from importlib import metadata
from typing import Optional, Sequence


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def info() -> str:
    """Versions of jaxdl and its dependencies, the JAX backend and its devices."""
    import jax

    import jaxdl

    lines = [f"jaxdl      {jaxdl.__version__}",
             f"python     {platform.python_version()} ({platform.machine()}, {platform.system()})"]
    for dist in ("jax", "jaxlib", "optax", "flax", "numpy"):
        lines.append(f"{dist:<10} {_version(dist)}")
    lines.append(f"backend    {jax.default_backend()}")
    for d in jax.devices():
        lines.append(f"device     {d.id}: {d.device_kind} ({d.platform})")
    return "\n".join(lines)


def _not_yet(what: str) -> int:
    print(f"jaxdl {what}: not available yet in jaxdl {_pkg_version()}; it arrives with the "
          f"performance work. `jaxdl info` and `jaxdl demo` work today.", file=sys.stderr)
    return 2


def _pkg_version() -> str:
    import jaxdl
    return jaxdl.__version__


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``jaxdl`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(prog="jaxdl", description="jaxdl: deep learning for JAX "
                                     "from pure functions.")
    sub = parser.add_subparsers(dest="command", metavar="{info,demo,bench}")
    sub.add_parser("info", help="print versions, the JAX backend and its devices")
    demo = sub.add_parser("demo", help="train the default CNN on the bundled 8x8 digits")
    demo.add_argument("--epochs", type=int, default=15, help="training epochs (default 15)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--out", default=".", help="directory for the curves PNG (default .)")
    sub.add_parser("bench", help="run the benchmark suite (not available yet)")
    args = parser.parse_args(argv)
    if args.command == "info":
        print(info())
        return 0
    if args.command == "demo":
        from jaxdl import demo as _demo
        return _demo.main(epochs=args.epochs, seed=args.seed, out=args.out)
    if args.command == "bench":
        return _not_yet(args.command)
    parser.print_help()
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
