"""Finite-difference gradient checking with per-leaf reports.

``gradcheck(f, *args)`` compares the derivative that JAX computes for ``f``
(``jax.grad`` in reverse mode, ``jax.jvp`` in forward mode) with central finite
differences, in float64, and reports the agreement leaf by leaf of the argument
pytrees, so a wrong derivative is pinned to the parameter that carries it
(``dense_1/kernel``, not "somewhere in the model").

The method
----------
1. **One scalar.** If ``f`` returns an array (or a pytree of arrays) ``y``, the
   check runs on ``F(θ) = <r, y(θ)>`` with a fixed random cotangent ``r`` drawn
   from ``seed``. Every element of ``y`` then contributes to ``F`` with a
   generic weight, so a wrong derivative of any output element shows up. A
   scalar output is used as it is.
2. **Float64.** The whole check runs inside ``jax.enable_x64(True)``; every
   floating leaf of ``args`` is cast to float64 (integer, boolean and key leaves
   are passed through and never differentiated). The user's x64 setting is
   untouched when ``gradcheck`` returns.
3. **Probes per leaf.** For each differentiated leaf ``θ_j`` (all others held
   fixed) the directional derivative ``F'(θ)·d`` is measured along

   a. ``num_directions`` random unit directions supported on that leaf;
   b. the direction of the leaf's own autodiff gradient ``g_j / ||g_j||``
      (reverse mode). A random direction in a leaf of ``n`` elements sees only
      about ``1/sqrt(n)`` of the gradient, so a gradient scaled wrong by 1% in
      a 60,000-element kernel would hide below the noise; along ``g_j`` itself
      the same bug is a full 1% error;
   c. every coordinate ``e_i`` of leaves with at most ``max_coords`` elements
      (biases, scales, small kernels), which pins a bug to single entries.

   The finite difference is central, ``(F(θ + h d) − F(θ − h d)) / 2h``, with
   the step ``h = eps · max(1, rms(θ_j))``. The direction actually taken is
   re-read from the rounded points, ``d = (θ₊ − θ₋) / 2h``, so the rounding of
   ``θ ± h d`` does not count as an error. The ``2k`` perturbed evaluations of
   each leaf run as one ``jax.vmap``, and those of all leaves inside a single
   ``jax.jit``: one compilation for ``F`` and its gradient, one for all the
   finite differences.
4. **Comparison.** With ``ad`` the autodiff value and ``fd`` the finite
   difference of one probe, the check fails when
   ``|ad − fd| > atol + rtol · scale``, where ``scale`` is
   ``max(||g_j||·||d||, |fd|)`` for directions (reverse mode; the bound
   ``|<g, d>| <= ||g||·||d||`` is used rather than ``|<g, d>|`` itself, which
   can cancel to nearly zero for a random ``d`` and would turn harmless noise
   into a large relative error), ``max(|ad|, |fd|)`` for directions in forward
   mode (no full gradient exists there; a uniformly scaled derivative is then
   visible at full size in every direction), and ``max(|g_i d_i|, |fd|)`` for
   coordinates. The reported relative error is
   ``|ad − fd| / max(scale, atol / rtol)``: values below ``atol / rtol`` count
   as zero, so a zero gradient against ``1e-13`` of rounding noise reads as a
   tiny error rather than 100%.

Defaults and why
----------------
* ``eps = 1e-6`` (times ``max(1, rms(θ_j))``). For central differences the
  truncation error is about ``h²·|F'''|/6`` and the rounding error about
  ``u·|F|/h`` with unit roundoff ``u``. In float64 (``u ≈ 1.1e-16``) the step
  ``1e-6`` gives ``≈ 2e-13`` truncation and ``≈ 1e-10`` rounding relative to
  unit-scaled quantities: correct code typically agrees to ``1e-8`` relative or
  better, well clear of ``rtol``.
* ``rtol = 1e-4``: four or more decades above what correct code produces and
  two decades below a 1% bug, so both sides have a wide margin.
* ``atol = 1e-8 · max(1, S)`` where ``S`` is the magnitude of ``F``'s terms
  (``|F|`` for a scalar output, ``Σ|r_i·y_i|`` for an array output). It is the
  absolute floor for derivatives that are (nearly) zero, where the finite
  difference is pure rounding noise of size ``u·S/h ≈ 1e-10·S`` times the
  accumulation factor of the computation; ``1e-8·S`` leaves a factor of 100 for
  the latter.

Why not float32
---------------
In float32 ``u ≈ 6e-8``. The total error ``h²|F'''|/6 + u|F|/h`` is smallest at
``h ≈ u^(1/3) ≈ 4e-3`` and is then about ``u^(2/3) ≈ 1.5e-5`` relative, and
that is the best case: real networks sum thousands of rounded terms, so the
rounding term is usually 10 to 1000 times larger, and a step as large as
``4e-3`` crosses ReLU kinks and feels the curvature. Even for a 5-16-3 tanh
MLP on 64 examples, float32 central differences miss the true directional
derivative by up to ``1.5e-4`` (relative to ``||g||``) at the best step and by
``4e-3`` at ``h = 1e-4``: the same order as real bugs (a missing factor in a
rarely taken branch, a 1% scale error), so a float32 check can neither pass
correct code reliably nor fail wrong code reliably. Float64 has
``u ≈ 1.1e-16`` and reaches about ``1e-10``, which separates the two by many
decades. That is why ``gradcheck`` always works in float64.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import _checks
from jaxdl._checks import non_negative_float

__all__ = ["gradcheck", "GradcheckReport", "GradcheckError", "LeafCheck"]

DEFAULT_EPS = 1e-6
DEFAULT_RTOL = 1e-4
DEFAULT_ATOL_FACTOR = 1e-8
_MODES = ("rev", "fwd")


# --------------------------------------------------------------------------
# Report types
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LeafCheck:
    """The outcome of checking one differentiated leaf.

    Attributes:
      path: readable '/'-joined path of the leaf, e.g. ``"dense_0/kernel"``
        (prefixed with ``"args[i]"`` when several args are differentiated).
      shape: the leaf's shape.
      dtype: the leaf's dtype as given by the caller (checked in float64).
      step: the finite-difference step ``h`` used for this leaf.
      num_checks: number of probes (random directions, gradient direction,
        coordinates).
      max_abs_error: largest ``|autodiff − finite difference|`` over probes.
      max_rel_error: largest relative error over probes (see module docs).
      error_ratio: largest ``|ad − fd| / (atol + rtol·scale)``; the leaf passes
        when this is at most 1.
      passed: whether every probe of the leaf passed.
      worst: a description of the worst probe (kind, autodiff and finite
        difference values).
    """

    path: str
    shape: tuple[int, ...]
    dtype: str
    step: float
    num_checks: int
    max_abs_error: float
    max_rel_error: float
    error_ratio: float
    passed: bool
    worst: str


@dataclasses.dataclass(frozen=True)
class GradcheckReport:
    """Per-leaf results of :func:`gradcheck` plus the settings it ran with.

    ``str(report)`` is an aligned table with one row per leaf and a final
    ``PASS``/``FAIL`` line.

    Attributes:
      rows: one :class:`LeafCheck` per differentiated leaf, in pytree order.
      mode: ``"rev"`` or ``"fwd"``.
      eps: base finite-difference step (per-leaf steps are in ``rows``).
      rtol: relative tolerance used.
      atol: absolute tolerance used (resolved default included).
      num_directions: random directions per leaf.
      max_coords: leaves up to this size were checked coordinate by coordinate.
      seed: seed of the random directions and of the output cotangent.
      value: the scalar ``F`` at the given point (``<r, f(args)>`` for array
        outputs).
      value_scale: the magnitude ``S`` of ``F``'s terms used for the default
        ``atol``.
    """

    rows: tuple[LeafCheck, ...]
    mode: str
    eps: float
    rtol: float
    atol: float
    num_directions: int
    max_coords: int
    seed: int
    value: float
    value_scale: float

    @property
    def passed(self) -> bool:
        """True when every leaf passed."""
        return all(row.passed for row in self.rows)

    @property
    def failures(self) -> tuple[LeafCheck, ...]:
        """The rows of the leaves that failed."""
        return tuple(row for row in self.rows if not row.passed)

    @property
    def max_rel_error(self) -> float:
        """Largest relative error over all leaves (0.0 when there are none)."""
        return max((row.max_rel_error for row in self.rows), default=0.0)

    def __getitem__(self, path: str) -> LeafCheck:
        for row in self.rows:
            if row.path == path:
                return row
        raise KeyError(
            f"gradcheck report has no leaf {path!r}; leaves: "
            f"{[row.path for row in self.rows]}"
        )

    def __str__(self) -> str:
        header = (
            "leaf", "shape", "dtype", "step", "checks",
            "max abs err", "max rel err", "err/tol", "status",
        )
        body = [
            (
                row.path,
                str(row.shape),
                row.dtype,
                f"{row.step:.1e}",
                str(row.num_checks),
                f"{row.max_abs_error:.2e}",
                f"{row.max_rel_error:.2e}",
                f"{row.error_ratio:.2e}",
                "ok" if row.passed else "FAIL",
            )
            for row in self.rows
        ]
        widths = [max(len(line[c]) for line in [header, *body]) for c in range(len(header))]
        right = {3, 4, 5, 6, 7}  # numeric columns

        def fmt(line):
            cells = [
                cell.rjust(w) if c in right else cell.ljust(w)
                for c, (cell, w) in enumerate(zip(line, widths, strict=True))
            ]
            return "  ".join(cells).rstrip()

        title = (
            f"gradcheck: mode={self.mode}, eps={self.eps:.1e}, rtol={self.rtol:.1e}, "
            f"atol={self.atol:.1e}, F={self.value:.6g}"
        )
        lines = [title, fmt(header), fmt(tuple("-" * w for w in widths))]
        lines += [fmt(line) for line in body]
        checks = sum(row.num_checks for row in self.rows)
        summary = (
            f"{len(self.rows)} leaves, {checks} checks, "
            f"max rel err {self.max_rel_error:.2e}"
        )
        if self.passed:
            lines.append(f"PASS: {summary}")
        else:
            names = ", ".join(row.path for row in self.failures)
            lines.append(f"FAIL: {len(self.failures)} of {summary}; failing: {names}")
        return "\n".join(lines)


class GradcheckError(AssertionError):
    """Raised by :func:`gradcheck` when a derivative disagrees with finite differences.

    Attributes:
      report: the full :class:`GradcheckReport`.
    """

    def __init__(self, message: str, report: GradcheckReport):
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _check_eps(value) -> float:
    if not _checks.is_real(value):
        raise TypeError(
            f"gradcheck: `eps` must be a positive number or None, "
            f"got {value!r} of type {type(value).__name__}."
        )
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(
            f"gradcheck: `eps` must be a finite number > 0 (the base finite-difference "
            f"step, default {DEFAULT_EPS}), got {value!r}."
        )
    return value


def _check_count(name: str, value) -> int:
    if not _checks.is_int(value):
        raise TypeError(
            f"gradcheck: `{name}` must be an int, got {value!r} of type "
            f"{type(value).__name__}."
        )
    if value < 0:
        raise ValueError(f"gradcheck: `{name}` must be >= 0, got {value!r}.")
    return int(value)


def _check_argnums(argnums, nargs: int) -> tuple[int, ...]:
    if argnums is None:
        return tuple(range(nargs))
    items = (argnums,) if _checks.is_int(argnums) else argnums
    if not isinstance(items, (tuple, list)) or not all(_checks.is_int(i) for i in items):
        raise TypeError(
            f"gradcheck: `argnums` must be None, an int or a sequence of ints, got {argnums!r}."
        )
    resolved = []
    for i in items:
        if not -nargs <= i < nargs:
            raise ValueError(
                f"gradcheck: `argnums` entry {i} is out of range for {nargs} positional "
                f"arg(s); use an index in [{-nargs}, {nargs - 1}]."
            )
        resolved.append(int(i) % nargs)
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"gradcheck: `argnums` has repeated entries: {argnums!r}.")
    if not resolved:
        raise ValueError("gradcheck: `argnums` is empty; select at least one arg.")
    return tuple(sorted(resolved))


# --------------------------------------------------------------------------
# Pytree plumbing
# --------------------------------------------------------------------------


def _leaf_dtype(leaf):
    """The dtype of an array-like leaf, or None for other Python objects."""
    if isinstance(leaf, (jax.Array, np.ndarray, np.generic)):
        return leaf.dtype
    if isinstance(leaf, float):
        return np.dtype(np.float64)
    return None


def _enable_x64():
    """A context manager that turns float64 on locally (not globally)."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # older jax

    return enable_x64(True)


# --------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------


def gradcheck(
    f: Callable[..., Any],
    *args: Any,
    eps: float | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    num_directions: int = 3,
    max_coords: int = 32,
    argnums: int | Sequence[int] | None = None,
    mode: str = "rev",
    seed: int = 0,
    raise_on_failure: bool = True,
) -> GradcheckReport:
    """Checks the JAX derivative of ``f`` against central finite differences.

    The check runs in float64 (see the module docstring for the method and the
    reasoning behind the defaults). For an array output ``y = f(*args)`` the
    scalar ``F = <r, y>`` with a fixed random ``r`` is checked, so every output
    element is covered; a scalar output is checked as it is. Every floating
    leaf of the args selected by ``argnums`` is differentiated and gets its own
    row in the report: random unit directions, the direction of its own
    gradient (reverse mode), and each coordinate of leaves with at most
    ``max_coords`` elements.

    A probe with autodiff value ``ad`` and finite difference ``fd`` fails when
    ``|ad − fd| > atol + rtol · scale``, ``scale`` being
    ``max(||g_leaf||·||d||, |fd|)`` for directions (``max(|ad|, |fd|)`` in
    forward mode) and ``max(|g_i|, |fd|)`` for coordinates.

    Args:
      f: function of ``*args`` returning a scalar, an array or a pytree of
        floating arrays. It must be traceable by ``jax.jit``/``jax.vmap``.
      *args: pytrees of arrays (e.g. a params dict and an input batch).
        Floating leaves are cast to float64; integer, boolean and PRNG-key
        leaves are passed through unchanged and not differentiated; non-array
        Python objects (ints, strings) are closed over as constants.
      eps: base finite-difference step; a leaf uses
        ``eps * max(1, rms(leaf))``. Default ``1e-6``.
      rtol: relative tolerance. Default ``1e-4``.
      atol: absolute tolerance on derivative values. Default
        ``1e-8 * max(1, S)`` with ``S = |F|`` (scalar output) or
        ``Σ|r_i y_i|`` (array output).
      num_directions: random unit directions per leaf.
      max_coords: leaves with at most this many elements are also checked
        coordinate by coordinate (0 disables).
      argnums: int or sequence of ints selecting the args to differentiate;
        ``None`` (default) differentiates all of them.
      mode: ``"rev"`` checks ``jax.grad``; ``"fwd"`` checks ``jax.jvp``
        (for functions without a reverse-mode rule).
      seed: seed for the random directions and the output cotangent ``r``.
      raise_on_failure: raise :class:`GradcheckError` when a leaf fails
        (default); otherwise return the failing report.

    Returns:
      A :class:`GradcheckReport`; ``report.passed`` tells whether all leaves
      passed and ``print(report)`` shows the per-leaf table.

    Raises:
      GradcheckError: some leaf failed and ``raise_on_failure`` is true. The
        message names each failing leaf with its absolute and relative error.
      TypeError: ``f`` is not callable, a setting has the wrong type, or ``f``
        returns a non-floating value.
      ValueError: a setting is out of range, no floating leaf is selected,
        ``F`` is not finite at ``args``, or a leaf's autodiff derivative is not
        finite (the message names the leaf). Under strict dtype promotion, a
        ``jax.dtypes.TypePromotionError`` (a ``ValueError``) with a hint when
        ``f`` mixes the float64 args with float32 arrays it closes over.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jaxdl.gradcheck import gradcheck
      >>> def loss(params, x):
      ...     h = jnp.tanh(x @ params["dense_0"]["kernel"] + params["dense_0"]["bias"])
      ...     return jnp.mean(h ** 2)
      >>> params = {"dense_0": {"kernel": jnp.ones((3, 2)) * 0.1, "bias": jnp.zeros(2)}}
      >>> report = gradcheck(loss, params, jnp.ones((4, 3)), argnums=0)
      >>> report.passed
      True
      >>> [row.path for row in report.rows]
      ['dense_0/bias', 'dense_0/kernel']
    """
    if not callable(f):
        raise TypeError(f"gradcheck: `f` must be callable, got {f!r} of type {type(f).__name__}.")
    if not args:
        raise ValueError("gradcheck: no args given; call gradcheck(f, *args).")
    eps = DEFAULT_EPS if eps is None else _check_eps(eps)
    rtol = DEFAULT_RTOL if rtol is None else non_negative_float("gradcheck", "rtol", rtol)
    if atol is not None:
        atol = non_negative_float("gradcheck", "atol", atol)
    num_directions = _check_count("num_directions", num_directions)
    max_coords = _check_count("max_coords", max_coords)
    seed = _check_count("seed", seed)
    if not isinstance(mode, str):
        raise TypeError(f"gradcheck: `mode` must be a str in {_MODES}, got {mode!r}.")
    if mode not in _MODES:
        raise ValueError(f"gradcheck: `mode` must be one of {_MODES}, got {mode!r}.")
    if not isinstance(raise_on_failure, (bool, np.bool_)):
        raise TypeError(
            f"gradcheck: `raise_on_failure` must be a bool, got {raise_on_failure!r}."
        )
    argnums = _check_argnums(argnums, len(args))

    with _enable_x64():
        report = _run(
            f, args, eps=eps, rtol=rtol, atol=atol, num_directions=num_directions,
            max_coords=max_coords, argnums=argnums, mode=mode, seed=seed,
        )

    if raise_on_failure and not report.passed:
        raise GradcheckError(_failure_message(report), report)
    return report


# --------------------------------------------------------------------------
# Step 1: the arguments
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Split:
    """The leaves of ``args`` split into differentiated, dynamic and static ones.

    Attributes:
      treedef: the structure of ``tuple(args)``.
      diff_idx: flat positions of the differentiated (floating, selected) leaves.
      diff_vals: those leaves as float64 arrays.
      dyn_idx: flat positions of the other array leaves (passed through ``jit``;
        floating ones cast to float64).
      dyn_vals: those leaves.
      static_vals: flat position -> Python object closed over as a constant.
      paths: readable path of each differentiated leaf (see :class:`LeafCheck`).
      dtypes: each differentiated leaf's dtype as the caller gave it.
    """

    treedef: Any
    diff_idx: tuple[int, ...]
    diff_vals: tuple[Any, ...]
    dyn_idx: tuple[int, ...]
    dyn_vals: tuple[Any, ...]
    static_vals: dict
    paths: tuple[str, ...]
    dtypes: tuple[str, ...]

    def call(self, f, diff, dyn):
        """``f(*args)`` with the differentiated and dynamic leaves replaced."""
        leaves = [None] * self.treedef.num_leaves
        for pos, v in zip(self.diff_idx, diff, strict=True):
            leaves[pos] = v
        for pos, v in zip(self.dyn_idx, dyn, strict=True):
            leaves[pos] = v
        for pos, v in self.static_vals.items():
            leaves[pos] = v
        return f(*jax.tree_util.tree_unflatten(self.treedef, leaves))


def _leaf_names(raw_paths) -> tuple[str, ...]:
    """'/'-joined names of ``(arg index, key path)`` pairs, ``args[i]``-prefixed if needed.

    The prefix is added when leaves of several args are differentiated, or when
    the arg is itself a bare array (an empty key path).
    """
    several = len({a for a, _ in raw_paths}) > 1
    names = []
    for arg_i, rest in raw_paths:
        name = _checks.path_str(rest)
        if several or not name:
            name = f"args[{arg_i}]" + (f"/{name}" if name else "")
        names.append(name)
    return tuple(names)


def _split_args(args: tuple, argnums: tuple[int, ...]) -> _Split:
    """Classify the leaves of ``args``; floating leaves of ``argnums`` are differentiated.

    Raises:
      ValueError: no floating leaf is selected.
    """
    path_leaves, treedef = jax.tree_util.tree_flatten_with_path(tuple(args))
    diff_idx, diff_vals, raw_paths, dtypes = [], [], [], []
    dyn_idx, dyn_vals, static_vals = [], [], {}
    for pos, (path, leaf) in enumerate(path_leaves):
        dtype = _leaf_dtype(leaf)
        is_float = dtype is not None and jnp.issubdtype(dtype, jnp.floating)
        is_array = isinstance(leaf, (jax.Array, np.ndarray, np.generic))
        if is_float and path[0].idx in argnums:
            diff_idx.append(pos)
            diff_vals.append(jnp.asarray(leaf, dtype=jnp.float64))
            raw_paths.append((path[0].idx, path[1:]))
            dtypes.append(str(np.dtype(dtype)))
        elif is_float and is_array:  # a float array that is not differentiated: float64 too
            dyn_idx.append(pos)
            dyn_vals.append(jnp.asarray(leaf, dtype=jnp.float64))
        elif isinstance(leaf, (jax.Array, np.ndarray)):
            dyn_idx.append(pos)
            dyn_vals.append(leaf)
        else:
            static_vals[pos] = leaf
    if not diff_vals:
        raise ValueError(
            f"gradcheck: no floating-point leaves to differentiate in args {list(argnums)}; "
            "gradcheck needs at least one float array (integer and boolean leaves are "
            "never differentiated). Pass float params or change `argnums`."
        )
    return _Split(treedef, tuple(diff_idx), tuple(diff_vals), tuple(dyn_idx), tuple(dyn_vals),
                  static_vals, _leaf_names(raw_paths), tuple(dtypes))


def _output_leaves(f, split: _Split) -> list:
    """The shapes and dtypes of ``f``'s outputs, checked to be floating arrays.

    Raises:
      TypeError: an output is not floating-point.
      ValueError: ``f`` returns no arrays, or (``TypePromotionError``) mixes the
        float64 args with lower-precision arrays it closes over.
    """
    try:
        out_struct = jax.eval_shape(lambda d, y: split.call(f, d, y), split.diff_vals,
                                    split.dyn_vals)
    except jax.dtypes.TypePromotionError as err:
        raise jax.dtypes.TypePromotionError(
            "gradcheck: f mixes float64 with a lower precision. gradcheck casts every "
            "floating leaf of args to float64, but arrays that f closes over keep their "
            "dtype; pass them to gradcheck as extra args (excluded with `argnums` if they "
            f"should not be differentiated). Original error: {err}"
        ) from err
    out_leaves = jax.tree_util.tree_leaves(out_struct)
    if not out_leaves:
        raise ValueError("gradcheck: `f` returned no arrays; it must return a scalar or an array.")
    for o in out_leaves:
        if not jnp.issubdtype(o.dtype, jnp.floating):
            raise TypeError(
                f"gradcheck: `f` must return floating-point values, got dtype {o.dtype} "
                f"(shape {o.shape}); wrap f so that it returns only the float output."
            )
    low = sorted({str(o.dtype) for o in out_leaves if o.dtype != jnp.float64})
    if low:
        warnings.warn(
            f"gradcheck: `f` returned {', '.join(low)} although its inputs were cast to "
            "float64; something inside f casts down, so finite differences lose accuracy.",
            stacklevel=4,
        )
    return out_leaves


def _cotangents(out_leaves, rng: np.random.Generator) -> list:
    """The fixed random ``r`` of ``F = <r, y>``; empty for a single scalar output."""
    if len(out_leaves) == 1 and out_leaves[0].shape == ():
        return []
    return [jnp.asarray(rng.standard_normal(o.shape)) for o in out_leaves]


def _scalar_and_scale(outputs, cot):
    """``F`` and the magnitude ``S`` of its terms from ``f``'s outputs and the cotangents.

    ``F = outputs[0]`` and ``S = |F|`` when ``cot`` is empty (a scalar output);
    otherwise ``F = Σ<r, y>`` and ``S = Σ|r·y|`` over the output leaves.
    """
    outs = [o.astype(jnp.float64) for o in jax.tree_util.tree_leaves(outputs)]
    if not cot:
        return outs[0], jnp.abs(outs[0])
    terms = [jnp.sum(r * o) for r, o in zip(cot, outs, strict=True)]
    mags = [jnp.sum(jnp.abs(r * o)) for r, o in zip(cot, outs, strict=True)]
    return sum(terms), sum(mags)


def _value_and_grads(F_terms, split: _Split, cot, mode: str):
    """``F``, its scale ``S`` and (reverse mode) the gradient of every leaf, in one jit.

    Raises:
      ValueError: ``F`` is not finite, or a leaf's gradient is not finite.
    """
    grads = None
    if mode == "rev":
        def value_and_grad(diff, dyn, cot):
            (val, mag), g = jax.value_and_grad(F_terms, has_aux=True)(diff, dyn, cot)
            return val, mag, g

        val, mag, g = jax.jit(value_and_grad)(split.diff_vals, split.dyn_vals, cot)
        grads = [np.asarray(leaf) for leaf in g]
    else:
        val, mag = jax.jit(F_terms)(split.diff_vals, split.dyn_vals, cot)
    value, value_scale = float(val), float(mag)
    if not (math.isfinite(value) and math.isfinite(value_scale)):
        raise ValueError(
            f"gradcheck: f is not finite at the given args (F = {value}); gradcheck needs "
            "a point where f and its derivative are finite."
        )
    for path, g in zip(split.paths, grads, strict=True) if grads is not None else ():
        bad = int(np.size(g) - np.count_nonzero(np.isfinite(g)))
        if bad:
            raise ValueError(
                f"gradcheck: the autodiff gradient of leaf '{path}' has {bad} non-finite "
                f"value(s) (nan/inf) at the given args while F = {value:.6g} is finite; "
                "fix the backward pass or check at a point where f is differentiable."
            )
    return value, value_scale, grads


# --------------------------------------------------------------------------
# Step 2: the probes
# --------------------------------------------------------------------------


class Probes(NamedTuple):
    """The ``k`` probes of one leaf.

    Attributes:
      kinds: what each probe is (``"random direction"``, ``"gradient
        direction"``, ``"coordinate (i, j)"``).
      step: the finite-difference step ``h``.
      points: ``(2k, *leaf.shape)``: the ``k`` points ``θ + h d`` then the
        ``k`` points ``θ − h d``.
      directions: ``(k, *leaf.shape)``: the directions actually probed,
        ``(θ₊ − θ₋) / 2h``.
    """

    kinds: tuple[str, ...]
    step: float
    points: np.ndarray
    directions: np.ndarray


def probe_directions(theta: np.ndarray, grad: np.ndarray | None, num_directions: int,
                     max_coords: int, rng: np.random.Generator
                     ) -> tuple[list[str], list[np.ndarray]]:
    """The probe kinds and unit directions of one leaf (method step 3 a-c).

    Args:
      theta: the leaf, any shape ``s``.
      grad: its autodiff gradient (shape ``s``) in reverse mode, else ``None``.
      num_directions: how many random unit directions to draw from ``rng``.
      max_coords: leaves with at most this many elements also get every
        coordinate direction ``e_i``.
      rng: the generator of the random directions.

    Returns:
      ``(kinds, dirs)``: ``num_directions`` random directions, then
      ``grad / ||grad||`` when ``grad`` is given and non-zero, then the
      coordinates; each a unit array of shape ``s``. Both empty for an empty
      leaf.

    Example:
      >>> import numpy as np
      >>> from jaxdl.gradcheck import probe_directions
      >>> kinds, dirs = probe_directions(np.zeros(2), np.array([3.0, 4.0]), 0, 2,
      ...                                np.random.default_rng(0))
      >>> kinds
      ['gradient direction', 'coordinate 0', 'coordinate 1']
      >>> dirs[0].tolist()
      [0.6, 0.8]
    """
    n = theta.size
    kinds, dirs = [], []
    for _ in range(num_directions if n else 0):
        v = rng.standard_normal(theta.shape)
        dirs.append(v / np.linalg.norm(v))
        kinds.append("random direction")
    if grad is not None and n:
        gnorm = float(np.linalg.norm(grad))
        if gnorm > 0:
            dirs.append(grad / gnorm)
            kinds.append("gradient direction")
    if 0 < n <= max_coords:
        eye = np.eye(n).reshape((n, *theta.shape))
        for i in range(n):
            dirs.append(eye[i])
            where = tuple(int(c) for c in np.unravel_index(i, theta.shape))
            kinds.append(f"coordinate {where[0] if len(where) == 1 else where}")
    return kinds, dirs


def probe_step(theta: np.ndarray, eps: float) -> float:
    """The finite-difference step ``h = eps · max(1, rms(θ))`` of one leaf.

    Example:
      >>> import numpy as np
      >>> from jaxdl.gradcheck import probe_step
      >>> probe_step(np.array([2.0, -2.0]), 1e-6), probe_step(np.array([0.5]), 1e-6)
      (2e-06, 1e-06)
    """
    rms = float(np.sqrt(np.mean(theta**2))) if theta.size else 0.0
    return eps * max(1.0, rms)


def make_probes(theta: np.ndarray, kinds: Sequence[str], dirs: Sequence[np.ndarray],
                step: float) -> Probes | None:
    """The perturbed points ``θ ± h d`` of one leaf and the directions they really probe.

    Args:
      theta: the leaf (float64), shape ``s``.
      kinds: one description per direction.
      dirs: the ``k`` directions, each of shape ``s``.
      step: the step ``h``.

    Returns:
      A :class:`Probes`, or ``None`` when ``dirs`` is empty (an empty leaf).

    Example:
      >>> import numpy as np
      >>> from jaxdl.gradcheck import make_probes
      >>> p = make_probes(np.array([1.0, 2.0]), ["coordinate 1"], [np.array([0.0, 1.0])], 0.5)
      >>> p.points.tolist(), p.directions.tolist()
      ([[1.0, 2.5], [1.0, 1.5]], [[0.0, 1.0]])
    """
    if not dirs:
        return None
    V = np.stack(dirs)
    plus, minus = theta + step * V, theta - step * V
    return Probes(tuple(kinds), step, np.concatenate([plus, minus]),
                  (plus - minus) / (2 * step))


def _all_probes(split: _Split, grads, *, eps, num_directions, max_coords, mode, rng):
    """The :class:`Probes` of every differentiated leaf (``None`` for empty leaves).

    Raises:
      ValueError: a non-empty leaf would get no probe at all.
    """
    probes = []
    for j, theta in enumerate(np.asarray(t) for t in split.diff_vals):
        grad = None if grads is None else grads[j]
        kinds, dirs = probe_directions(theta, grad, num_directions, max_coords, rng)
        if theta.size and not dirs:
            raise ValueError(
                f"gradcheck: leaf '{split.paths[j]}' ({theta.size} elements) would get no "
                f"checks with num_directions={num_directions}, max_coords={max_coords} in "
                f"mode {mode!r}; raise `num_directions`."
            )
        probes.append(make_probes(theta, kinds, dirs, probe_step(theta, eps)))
    return probes


# --------------------------------------------------------------------------
# Step 3: finite differences (and forward-mode derivatives)
# --------------------------------------------------------------------------


def _evaluate(F, diff, dyn, cot, points, tangents):
    """``F`` at every perturbed point, and the jvps along ``tangents`` (or ``None``).

    ``F(diff, dyn, cot)`` is evaluated with leaf ``j`` replaced by each row of
    ``points[j]``, all others held fixed, as one ``vmap`` per leaf. Leaves
    whose ``points`` are ``None`` get ``None``. Meant to run inside one ``jit``.
    """
    fvals, jvps = [], []
    for j, pts in enumerate(points):
        if pts is None:
            fvals.append(None)
            jvps.append(None)
            continue

        def of_leaf(x, j=j):
            return F([x if i == j else d for i, d in enumerate(diff)], dyn, cot)

        fvals.append(jax.vmap(of_leaf)(pts))
        if tangents is None:
            jvps.append(None)
        else:
            jvps.append(jax.vmap(lambda t, j=j, f=of_leaf: jax.jvp(f, (diff[j],), (t,))[1])(
                tangents[j]))
    return fvals, jvps


def central_differences(fvals, step: float) -> np.ndarray:
    """Central differences ``(F(θ + h d) − F(θ − h d)) / 2h`` of ``k`` probes.

    Args:
      fvals: the ``2k`` values of ``F`` at :attr:`Probes.points`: the ``k``
        values at ``θ + h d`` first, then the ``k`` values at ``θ − h d``.
      step: the step ``h``.

    Returns:
      The ``k`` finite differences, a float64 array.

    Example:
      >>> from jaxdl.gradcheck import central_differences
      >>> central_differences([5.0, 1.0, 3.0, 1.0], 0.5)  # F(θ±hd) = 5, 3 and 1, 1
      array([2., 0.])
    """
    fvals = np.asarray(fvals)
    k = fvals.shape[0] // 2
    return (fvals[:k] - fvals[k:]) / (2 * step)


def autodiff_along(grad: np.ndarray, probes: Probes) -> tuple[np.ndarray, np.ndarray]:
    """Reverse mode: the autodiff derivative ``<g, d>`` of each probe and its scale.

    Args:
      grad: the leaf's autodiff gradient ``g``.
      probes: the leaf's :class:`Probes`.

    Returns:
      ``(ad, scale)``, one entry per probe: ``<g, d>``, and (method step 4)
      ``||g||·||d||`` for directions or ``|g_i|·||d||`` for coordinates.

    Example:
      >>> import numpy as np
      >>> from jaxdl.gradcheck import autodiff_along, make_probes
      >>> p = make_probes(np.zeros(2), ["random direction", "coordinate 0"],
      ...                 [np.array([0.6, 0.8]), np.array([1.0, 0.0])], 1e-6)
      >>> ad, scale = autodiff_along(np.array([3.0, -4.0]), p)
      >>> np.round(ad, 6).tolist(), np.round(scale, 6).tolist()
      ([-1.4, 3.0], [5.0, 3.0])
    """
    k = len(probes.kinds)
    Dflat = probes.directions.reshape(k, -1)
    gflat = grad.reshape(-1)
    dnorm = np.linalg.norm(Dflat, axis=1)
    dir_scale = np.linalg.norm(gflat) * dnorm
    coord_scale = np.sqrt(((Dflat != 0) * gflat[None, :] ** 2).sum(1)) * dnorm
    is_coord = np.array([kind.startswith("coordinate") for kind in probes.kinds])
    return Dflat @ gflat, np.where(is_coord, coord_scale, dir_scale)


# --------------------------------------------------------------------------
# Step 4: scoring
# --------------------------------------------------------------------------


class ProbeScore(NamedTuple):
    """The comparison of one leaf's probes (arrays have one entry per probe).

    Attributes:
      err: ``|ad − fd|`` (``inf`` where ``fd`` is not finite).
      rel: ``err / max(scale, tiny)``.
      ratio: ``err / (atol + rtol · scale)``; a probe passes when it is <= 1.
      passed: whether every probe passed.
      worst: index of the probe with the largest ``ratio``.
    """

    err: np.ndarray
    rel: np.ndarray
    ratio: np.ndarray
    passed: bool
    worst: int


def score_probes(ad, fd, ad_scale, *, atol: float, rtol: float, tiny: float) -> ProbeScore:
    """Compare autodiff values ``ad`` with finite differences ``fd`` (method step 4).

    With ``scale = max(ad_scale, |fd|)`` a probe fails when
    ``|ad − fd| > atol + rtol · scale``; its relative error is
    ``|ad − fd| / max(scale, tiny)``. A non-finite ``fd`` fails with infinite
    errors.

    Args:
      ad: autodiff derivatives, one per probe.
      fd: finite differences, one per probe.
      ad_scale: the autodiff scale of each probe (see :func:`autodiff_along`).
      atol: absolute tolerance.
      rtol: relative tolerance.
      tiny: floor of the relative error's denominator (``atol / rtol``).

    Returns:
      A :class:`ProbeScore`.

    Example:
      >>> from jaxdl.gradcheck import score_probes
      >>> s = score_probes([1.0, 2.0], [1.0, 2.002], [1.0, 2.0], atol=0.0, rtol=1e-4,
      ...                  tiny=0.0)
      >>> s.passed, s.worst, round(float(s.rel[1]), 6)
      (False, 1, 0.000999)
    """
    ad, fd = np.asarray(ad, np.float64), np.asarray(fd, np.float64)
    err = np.abs(ad - fd)
    scale = np.maximum(ad_scale, np.abs(fd))
    tol = atol + rtol * scale
    finite = np.isfinite(fd)
    err = np.where(finite, err, np.inf)
    rel = np.where(finite, err / np.maximum(scale, tiny), np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(err == 0, 0.0, err / tol)
    ratio = np.where(finite, ratio, np.inf)
    return ProbeScore(err, rel, ratio, bool(np.all(err <= tol)), int(np.argmax(ratio)))


def _tiny(atol: float, rtol: float) -> float:
    """The floor below which a derivative counts as zero in relative errors."""
    return max(atol / rtol if rtol > 0 else 0.0, float(np.finfo(np.float64).tiny))


# --------------------------------------------------------------------------
# Step 5: the report
# --------------------------------------------------------------------------


def _leaf_row(path: str, theta, dtype: str, probes: Probes | None, ad, fd,
              score: ProbeScore | None, eps: float) -> LeafCheck:
    """The :class:`LeafCheck` of one leaf (an empty leaf passes with no checks)."""
    shape = tuple(int(s) for s in np.shape(theta))
    if probes is None:
        return LeafCheck(path, shape, dtype, eps * 1.0, 0, 0.0, 0.0, 0.0, True, "no elements")
    w, kind = score.worst, probes.kinds[score.worst]
    if np.isfinite(fd[w]):
        worst = f"{kind}: autodiff {ad[w]:.10g}, finite difference {fd[w]:.10g}"
    else:
        worst = (f"{kind}: finite difference is not finite (F is nan/inf within "
                 f"step {probes.step:.1e} of the point); try a smaller `eps`")
    return LeafCheck(path=path, shape=shape, dtype=dtype, step=float(probes.step),
                     num_checks=len(probes.kinds), max_abs_error=float(score.err.max()),
                     max_rel_error=float(score.rel.max()),
                     error_ratio=float(score.ratio.max()), passed=score.passed, worst=worst)


def _failure_message(report: GradcheckReport) -> str:
    """The :class:`GradcheckError` message: one line per failing leaf, then the table."""
    lines = [
        f"gradcheck failed for {len(report.failures)} of {len(report.rows)} leaves "
        f"(rtol={report.rtol:.1e}, atol={report.atol:.1e}):"
    ]
    for row in report.failures:
        lines.append(
            f"  {row.path}: abs err {row.max_abs_error:.3e}, "
            f"rel err {row.max_rel_error:.3e} (worst: {row.worst})"
        )
    lines += ["", str(report)]
    return "\n".join(lines)


def _rows(split: _Split, probes, grads, fvals, jvps, *, value, eps, atol, rtol, mode):
    """Score every leaf's probes and build its :class:`LeafCheck`.

    Raises:
      ValueError: (forward mode) a leaf's jvp is not finite.
    """
    rows, tiny = [], _tiny(atol, rtol)
    for j, p in enumerate(probes):
        ad = fd = score = None
        if p is not None:
            fd = central_differences(fvals[j], p.step)
            if mode == "rev":
                ad, ad_scale = autodiff_along(grads[j], p)
            else:
                ad = np.asarray(jvps[j])
                if not np.all(np.isfinite(ad)):
                    raise ValueError(
                        f"gradcheck: the forward-mode derivative (jvp) of leaf "
                        f"'{split.paths[j]}' is not finite at the given args while "
                        f"F = {value:.6g} is finite; fix the jvp rule or check at a point "
                        "where f is differentiable."
                    )
                ad_scale = np.abs(ad)
            score = score_probes(ad, fd, ad_scale, atol=atol, rtol=rtol, tiny=tiny)
        rows.append(_leaf_row(split.paths[j], split.diff_vals[j], split.dtypes[j], p, ad, fd,
                              score, eps))
    return tuple(rows)


# --------------------------------------------------------------------------
# The method, step by step
# --------------------------------------------------------------------------


def _run(f, args, *, eps, rtol, atol, num_directions, max_coords, argnums, mode, seed):
    """Run the check of the module docstring on validated settings, in float64.

    Steps: split ``args`` (1), ``F`` and its gradient (1-2), probes (3),
    finite differences in one ``jit`` (3), scoring and the report (4).

    Returns:
      The :class:`GradcheckReport` (never raises on a failing leaf).
    """
    split = _split_args(args, argnums)
    rng = np.random.default_rng(seed)
    cot = _cotangents(_output_leaves(f, split), rng)

    def F_terms(diff, dyn, cot):
        return _scalar_and_scale(split.call(f, diff, dyn), cot)

    def F(diff, dyn, cot):
        return F_terms(diff, dyn, cot)[0]

    value, value_scale, grads = _value_and_grads(F_terms, split, cot, mode)
    if atol is None:
        atol = DEFAULT_ATOL_FACTOR * max(1.0, value_scale)
    probes = _all_probes(split, grads, eps=eps, num_directions=num_directions,
                         max_coords=max_coords, mode=mode, rng=rng)
    points = [None if p is None else jnp.asarray(p.points) for p in probes]
    tangents = None
    if mode == "fwd":
        tangents = [None if p is None else jnp.asarray(p.directions) for p in probes]
    fvals, jvps = jax.jit(functools.partial(_evaluate, F))(split.diff_vals, split.dyn_vals, cot,
                                                          points, tangents)
    rows = _rows(split, probes, grads, fvals, jvps, value=value, eps=eps, atol=atol, rtol=rtol,
                 mode=mode)
    return GradcheckReport(rows=rows, mode=mode, eps=float(eps), rtol=float(rtol),
                           atol=float(atol), num_directions=num_directions,
                           max_coords=max_coords, seed=seed, value=value,
                           value_scale=value_scale)
