"""XLA settings jaxdl applies when it is imported, each measured to help.

On XLA:CPU with jaxlib 0.10, YNNPACK library fusions of convolutions,
element-wise and reduce ops made the benchmark CNN's training step 1.4x slower
(19.8 vs 28.5 steps/s) while leaving dots in YNNPACK kept every MLP workload at
its speed (``benchmarks/RESULTS.md``). jaxdl therefore asks for YNNPACK on dots
only, through ``XLA_FLAGS``, unless:

* the user already set ``--xla_cpu_experimental_ynn_fusion_type`` in ``XLA_FLAGS``;
* ``JAXDL_KEEP_XLA_FLAGS=1`` is set in the environment;
* the installed jaxlib is not a version this was measured on (an unknown flag
  would make XLA refuse to start).

Flags are read when JAX first starts a backend, so this has no effect in a
process that ran JAX computations before importing jaxdl.
"""

from __future__ import annotations

import os
from importlib import metadata

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type=individual_dot"
_MEASURED_JAXLIB = ("0.10.",)


def configure(environ=os.environ) -> bool:
    """Add jaxdl's measured XLA flags to ``environ["XLA_FLAGS"]``; return whether it did."""
    if environ.get("JAXDL_KEEP_XLA_FLAGS"):
        return False
    flags = environ.get("XLA_FLAGS", "")
    if "xla_cpu_experimental_ynn_fusion_type" in flags:
        return False
    try:
        version = metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return False
    if not version.startswith(_MEASURED_JAXLIB):
        return False
    environ["XLA_FLAGS"] = f"{flags} {YNN_FLAG}".strip()
    return True
