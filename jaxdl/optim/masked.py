"""``masked``: apply a transformation to some leaves only (optax.masked, by hand)."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Union

import jax
import optax

__all__ = ["masked", "MaskedState", "MaskedNode"]


class MaskedNode(NamedTuple):
    """Stands in for a masked-out leaf: an empty pytree (no leaves, no state)."""


class MaskedState(NamedTuple):
    """The state of :func:`masked`: the inner state, built for the masked-in leaves only."""

    inner_state: Any


def _keep(tree: Any, mask: Any) -> Any:
    """``tree`` with every masked-out leaf (or sub-tree, for a prefix mask) a MaskedNode."""
    return jax.tree.map(lambda m, t: t if m else MaskedNode(), mask, tree)


def masked(inner: optax.GradientTransformation,
           mask: Union[Any, Callable[[Any], Any]]) -> optax.GradientTransformation:
    """Apply ``inner`` to the leaves where ``mask`` is True; pass the others through.

    Equal to ``optax.masked``: the inner transformation sees the params and
    updates with every masked-out leaf replaced by an empty node, so it keeps
    state (moments, traces) only for the masked-in leaves; the masked-out
    leaves' updates come back unchanged. To give them no update at all, chain
    ``masked(optax.set_to_zero(), not_mask)`` after it (as ``TrainState.create``
    does for frozen layers).

    Args:
        inner: the transformation for the masked-in leaves.
        mask: a tree of Python bools with the structure of the params (or a
            prefix of it: one bool for a whole sub-tree), or a function of the
            params (called on the updates in ``update``) returning one.

    Returns:
        An ``optax.GradientTransformation`` whose state is a :class:`MaskedState`.

    Example:
        >>> import jax.numpy as jnp
        >>> from jaxdl import optim
        >>> params = {"w": jnp.ones(2), "b": jnp.ones(1)}
        >>> opt = optim.masked(optim.sgd(0.1), {"w": True, "b": False})
        >>> updates, _ = opt.update({"w": jnp.ones(2), "b": jnp.ones(1)}, opt.init(params))
        >>> updates["w"].tolist(), updates["b"].tolist()
        ([-0.10000000149011612, -0.10000000149011612], [1.0])
    """
    if not (callable(getattr(inner, "init", None)) and callable(getattr(inner, "update", None))):
        raise TypeError(f"optim.masked: `inner` must be an optax GradientTransformation, got "
                        f"{inner!r}. Pass e.g. optim.adamw(1e-3).")

    def mask_of(tree):
        return mask(tree) if callable(mask) else mask

    def init(params):
        return MaskedState(inner_state=inner.init(_keep(params, mask_of(params))))

    def update(updates, state, params=None):
        mask_tree = mask_of(updates)
        kept = None if params is None else _keep(params, mask_tree)
        new, inner_state = inner.update(_keep(updates, mask_tree), state.inner_state, kept)
        merged = jax.tree.map(lambda m, n, u: n if m else u, mask_tree, new, updates,
                              is_leaf=lambda node: isinstance(node, MaskedNode))
        return merged, MaskedState(inner_state=inner_state)

    return optax.GradientTransformation(init, update)
