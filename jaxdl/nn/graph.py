"""The functional graph (Keras-style): ``nn.Input`` nodes, layers called on nodes, ``nn.Model``.

Calling a layer on a node records the call and returns a new node whose shape
(without the batch axis) is known at once from ``nn.output_shape``: no weights
are made and no FLOPs spent. ``nn.Model(inputs, outputs)`` turns the recorded
graph into a layer with the usual ``init``/``apply``::

    inp1, inp2 = nn.Input((4,)), nn.Input((4,))
    out = nn.Concatenate()([nn.Dense(40)(nn.Dense(30)(inp1)),
                            nn.Dense(50)(nn.Dense(20)(inp2))])
    model = nn.Model([inp1, inp2], out)

Nodes are immutable and compared by identity; a Model stores its graph in
tuples, so it is hashable and can be a static argument of ``jax.jit``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Optional, Union

import jax
import jax.numpy as jnp

from jaxdl import _checks, compilation
from jaxdl._typing import Params, PRNGKey, Shape, State
from jaxdl.nn import base
from jaxdl.nn.base import Layer


@dataclasses.dataclass(frozen=True, eq=False)
class Input:
    """A model input: the start of a functional graph.

    Args:
        shape: the shape of one example, without the batch axis, e.g. ``(4,)``.
        name: an optional name, shown in summaries and error messages.

    Example:
        >>> from jaxdl import nn
        >>> inp = nn.Input((4,), name="left")
        >>> nn.Dense(30)(inp).shape
        (30,)
    """

    shape: Shape
    name: Optional[str] = None

    def __post_init__(self):
        owner = f"Input(name={self.name!r})"
        object.__setattr__(self, "shape", _checks.shape_tuple(owner, self.shape))
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"{owner}: `name` must be a str or None, received "
                            f"{type(self.name).__name__}. Pass name='left', say.")

    def __repr__(self) -> str:
        return f"Input(shape={self.shape}, name={self.name!r})"


@dataclasses.dataclass(frozen=True, eq=False)
class Call:
    """One call of a layer on nodes: ``layer(inputs)``, possibly with an explicit ``name``.

    ``packed`` is True when the layer was called on a list of nodes (merge
    layers, multi-input Models): it then receives a tuple of arrays.
    """

    layer: Any
    inputs: tuple
    packed: bool
    name: Optional[str] = None

    def input_shape(self) -> Any:
        """The shape (or, when ``packed``, the tuple of shapes) the layer receives."""
        shapes = tuple(node.shape for node in self.inputs)
        return shapes if self.packed else shapes[0]


@dataclasses.dataclass(frozen=True, eq=False)
class Node:
    """An output of a layer call in a graph: its ``shape`` (no batch axis) and its ``call``.

    ``index`` picks the output of a layer with several outputs (a Model), else ``None``.
    """

    shape: Shape
    call: Call
    index: Optional[int] = None

    @property
    def layer(self) -> Any:
        """The layer whose output this node is."""
        return self.call.layer

    def __repr__(self) -> str:
        name = f"'{self.call.name}'" if self.call.name else type(self.call.layer).__name__
        return f"Node({name}, shape={self.shape})"


AnyNode = Union[Input, Node]


def is_node(value: Any) -> bool:
    """Whether ``value`` is a graph node (an ``nn.Input`` or a layer's output)."""
    return isinstance(value, (Input, Node))


def _is_shape_list(shape: Any) -> bool:
    return isinstance(shape, tuple) and bool(shape) and all(isinstance(s, tuple) for s in shape)


def _call_inputs(layer: Any, nodes: Any) -> tuple[tuple, bool]:
    """The nodes a layer is called on, and whether they came as a list."""
    if is_node(nodes):
        return (nodes,), False
    if isinstance(nodes, (list, tuple)) and nodes and all(is_node(n) for n in nodes):
        return tuple(nodes), True
    got = (f"{type(nodes).__name__} of shape {tuple(jnp.shape(nodes))}"
           if hasattr(nodes, "shape") else repr(nodes)[:80])
    raise TypeError(f"{type(layer).__name__}: a layer is called only on graph nodes (an "
                    f"nn.Input or another layer's output, or a list of them), received {got}. "
                    f"To compute with arrays use layer.apply(params, state, x); to build a "
                    f"graph start from inp = nn.Input(shape) and call the layer on inp.")


def call_layer(layer: Any, nodes: Any, name: Optional[str] = None) -> Any:
    """``layer(nodes, name=name)``: record the call and return its output node(s).

    The output shape comes from ``nn.output_shape`` (no FLOPs). A layer with
    several outputs (a Model) returns a tuple of nodes.

    Raises:
        TypeError: ``nodes`` is not a node or a list of nodes (e.g. an array).
        ValueError: the layer cannot take inputs of these shapes; the message
            names the layer, the received shapes and what the layer expected.
    """
    inputs, packed = _call_inputs(layer, nodes)
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"{type(layer).__name__}: `name` must be a non-empty str, received "
                        f"{name!r}. Call the layer as layer(node, name='encoder_out').")
    call = Call(layer, inputs, packed, name)
    try:
        shape = base.output_shape(layer, call.input_shape())
    except (ValueError, TypeError) as e:
        received = ", ".join(f"{n!r} of shape {(None,) + n.shape}" for n in inputs)
        raise ValueError(f"{name or type(layer).__name__} ({layer!r}) cannot be called on "
                         f"{received}: {e}") from e
    if _is_shape_list(shape):
        return tuple(Node(tuple(s), call, i) for i, s in enumerate(shape))
    return Node(tuple(shape), call)


def _as_nodes(what: str, value: Any) -> tuple:
    """A tuple of nodes from one node or a list/tuple of them; TypeError otherwise."""
    values = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    for i, v in enumerate(values):
        if not is_node(v):
            raise TypeError(f"Model: `{what}`[{i}] must be a graph node (nn.Input or a layer's "
                            f"output), received {type(v).__name__} {repr(v)[:60]}. Build the "
                            f"graph with inp = nn.Input(shape); out = layer(inp) and pass "
                            f"nn.Model(inp, out).")
    if not values:
        raise ValueError(f"Model: `{what}` is empty; pass at least one node.")
    return values


def _topological(outputs: tuple) -> tuple[tuple, tuple]:
    """The calls the outputs depend on, inputs first; and the ``nn.Input`` nodes reached."""
    order, inputs, done = [], [], set()
    todo = [(node, False) for node in reversed(outputs)]
    while todo:
        node, expanded = todo.pop()
        key = node.call if isinstance(node, Node) else node
        if key in done:
            continue
        if isinstance(node, Input):
            done.add(node)
            inputs.append(node)
        elif expanded:
            done.add(key)
            order.append(key)
        else:
            todo.append((node, True))
            todo.extend((parent, False) for parent in reversed(node.call.inputs))
    return tuple(order), tuple(inputs)


def _ancestor_inputs(node: AnyNode) -> set:
    """The ``nn.Input`` nodes ``node`` is computed from."""
    return set(_topological((node,))[1])


def _label(node: AnyNode) -> str:
    return repr(node) if isinstance(node, Node) else (f"Input '{node.name}'" if node.name
                                                      else repr(node))


def _check_connected(inputs: tuple, outputs: tuple) -> None:
    """Each output depends only on declared inputs, and each declared input is used."""
    declared = set(inputs)
    used = set()
    for i, out in enumerate(outputs):
        reached = _ancestor_inputs(out)
        used |= reached
        shown = [_label(n) for n in inputs]
        if not reached & declared:
            raise ValueError(f"Model: output {i} ({_label(out)}) does not depend on any declared "
                             f"input {shown}; it is computed from {[_label(n) for n in reached]}. "
                             f"Build the output from the model's inputs, or declare its inputs.")
        foreign = reached - declared
        if foreign:
            raise ValueError(f"Model: output {i} ({_label(out)}) uses a node from another graph: "
                             f"it depends on {[_label(n) for n in foreign]}, which is not among "
                             f"the declared inputs {shown}. Add that Input to the model's "
                             f"inputs, or build the output only from nodes of this graph.")
    unused = [_label(n) for n in inputs if n not in used]
    if unused:
        raise ValueError(f"Model: the declared inputs {unused} are used by no output. Remove them "
                         f"from the inputs, or make an output depend on them.")


def _explicit_names(calls: tuple) -> dict:
    """``{id(layer): name}`` for the layers given a name (a call name or a named Model)."""
    names, owners = {}, {}
    for call in calls:
        layer = call.layer
        name = call.name or (layer.name if isinstance(layer, Model) else None)
        if name is None:
            continue
        if names.get(id(layer), name) != name:
            raise ValueError(f"Model: one layer ({layer!r}) is called with two names, "
                             f"'{names[id(layer)]}' and '{name}'. A shared layer has one name: "
                             f"drop the name from the second call.")
        if owners.get(name, layer) is not layer:
            raise ValueError(f"Model: two different layers are named '{name}' ({owners[name]!r} "
                             f"and {layer!r}). Give each layer a unique name, or call the same "
                             f"layer object twice to share its params.")
        names[id(layer)], owners[name] = name, layer
    return names


def _name_layers(calls: tuple) -> tuple[tuple, tuple]:
    """The distinct layers (by identity) in call order, and their unique names.

    A layer keeps its explicit name; the others get ``prefix_k`` with a
    per-prefix counter in call order, skipping names already taken.
    """
    explicit = _explicit_names(calls)
    layers, shapes = [], {}
    for call in calls:
        if id(call.layer) not in shapes:
            layers.append(call.layer)
            shapes[id(call.layer)] = call.input_shape()
        elif shapes[id(call.layer)] != call.input_shape():
            raise ValueError(f"Model: the shared layer {call.layer!r} is called on inputs of "
                             f"shape {shapes[id(call.layer)]} and then of shape "
                             f"{call.input_shape()}; a shared layer has one set of params, so "
                             f"every call needs inputs of one shape. Use two layers instead.")
    taken, counts, names = set(explicit.values()), {}, []
    for layer in layers:
        name = explicit.get(id(layer))
        if name is None:
            prefix = layer.default_name() if hasattr(layer, "default_name") else \
                type(layer).__name__.lower()
            while name is None or name in taken:
                name = f"{prefix}_{counts.get(prefix, 0)}"
                counts[prefix] = counts.get(prefix, 0) + 1
            taken.add(name)
        names.append(name)
    return tuple(layers), tuple(names)


@dataclasses.dataclass(frozen=True)
class Model(Layer):
    """A graph of layers from ``inputs`` to ``outputs``; itself a layer.

    Layers are named as in ``Sequential``: their type in snake case and a
    per-type counter in topological order (``dense_0``, ``dense_1``), or the
    name given with ``layer(node, name="encoder_out")``; a nested Model goes
    under its ``name`` (or ``model_k``). Params and state are dicts keyed by
    those names, holding only the layers that have any. The same layer object
    called twice has one entry (identity, not equality: two ``nn.Dense(30)``
    are two layers). A sub-model built from the nodes of a bigger one keeps the
    bigger one's names when its layers come first there (an encoder, a feature
    extractor, the first branch); name layers explicitly for any other part.

    Randomness: the ``i``-th distinct layer is initialized with
    ``jax.random.fold_in(key, i)`` and the ``j``-th call receives
    ``jax.random.fold_in(key, j)`` in ``apply``, like ``Sequential``.

    Args:
        inputs: an ``nn.Input`` node or a list of them.
        outputs: a node or a list of nodes computed from ``inputs``.
        name: the model's name, its key when nested in another Model.

    Several inputs: ``init(key, ((4,), (4,)))`` and ``apply(params, state, (x1, x2))``;
    several outputs come back as a tuple.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from jaxdl import nn
        >>> inp1, inp2 = nn.Input((4,)), nn.Input((4,))
        >>> h2 = nn.Dense(40)(nn.Dense(30)(inp1))
        >>> h4 = nn.Dense(50)(nn.Dense(20)(inp2))
        >>> model = nn.Model([inp1, inp2], nn.Concatenate()([h2, h4]))
        >>> params, state = model.init(jax.random.key(0))
        >>> sorted(params)
        ['dense_0', 'dense_1', 'dense_2', 'dense_3']
        >>> y, state = model.apply(params, state, (jnp.ones((2, 4)), jnp.ones((2, 4))))
        >>> y.shape
        (2, 90)
    """

    inputs: Any
    outputs: Any
    name: Optional[str] = None
    #: The distinct layers in topological order (walked by ``nn.scan_friendly``).
    layers: tuple = dataclasses.field(init=False, repr=False, compare=False)
    #: Their names, in the same order.
    names: tuple = dataclasses.field(init=False, repr=False, compare=False)
    #: The layer calls in topological order.
    calls: tuple = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.name is not None and (not isinstance(self.name, str) or not self.name):
            raise TypeError(f"Model: `name` must be a non-empty str or None, received "
                            f"{self.name!r}. Pass name='encoder', say.")
        inputs, outputs = _as_nodes("inputs", self.inputs), _as_nodes("outputs", self.outputs)
        for i, node in enumerate(inputs):
            if not isinstance(node, Input):
                raise TypeError(f"Model: inputs[{i}] is {node!r}, the output of a layer, not an "
                                f"nn.Input node. A model's inputs are the nn.Input(shape) nodes "
                                f"its graph starts from; pass those.")
        if len(set(inputs)) < len(inputs):
            raise ValueError(f"Model: an Input is declared twice in inputs {list(inputs)}; "
                             f"declare each once.")
        _check_connected(inputs, outputs)
        calls, _ = _topological(outputs)
        layers, names = _name_layers(calls)
        for attr, value in (("inputs", inputs), ("outputs", outputs), ("layers", layers),
                            ("names", names), ("calls", calls)):
            object.__setattr__(self, attr, value)

    def __hash__(self) -> int:
        return hash((self.inputs, self.outputs, self.name))

    def default_name(self) -> str:  # an instance method: a Model is named by its `name`
        """The Model's ``name``, or ``"model"`` (its prefix inside containers)."""
        return self.name or "model"

    def _owner(self) -> str:
        return f"Model '{self.name}'" if self.name else "Model"

    def get_layer(self, name: str) -> Any:
        """The layer named ``name`` (``"dense_0"``, or an explicit name)."""
        if name not in self.names:
            raise ValueError(f"{self._owner()}: no layer is named {name!r}; the layers are "
                             f"{list(self.names)}.")
        return self.layers[self.names.index(name)]

    def get_node(self, name: str) -> Any:
        """The output node of the (first) call of the layer named ``name``, to build sub-models.

        Example: ``encoder = nn.Model(autoencoder.inputs, autoencoder.get_node("code"))``.
        """
        layer = self.get_layer(name)
        call = next(c for c in self.calls if c.layer is layer)
        nodes = {n.index: n for n in _all_nodes(self) if getattr(n, "call", None) is call}
        found = [nodes[k] for k in sorted(nodes, key=lambda k: -1 if k is None else k)]
        return found[0] if len(found) == 1 else tuple(found)

    def input_shapes(self) -> Any:
        """The Input shapes: one shape for one input, else a tuple of shapes."""
        shapes = tuple(node.shape for node in self.inputs)
        return shapes[0] if len(shapes) == 1 else shapes

    def _check_shapes(self, input_shape: Any) -> None:
        want = self.input_shapes()
        given = input_shape
        if len(self.inputs) > 1 and isinstance(given, (tuple, list)):
            given = tuple(tuple(s) if isinstance(s, (tuple, list)) else s for s in given)
        elif isinstance(given, (tuple, list)):
            given = tuple(given)
        if given != want:
            raise ValueError(f"{self._owner()}: expected input_shape {want} (the shapes of its "
                             f"nn.Input nodes, without the batch axis), received {input_shape!r}. "
                             f"Pass the Input shapes, or call init(key) to use them.")

    def init(self, key: PRNGKey, input_shape: Any = None) -> tuple[Params, State]:
        """Create ``(params, state)``; ``input_shape`` defaults to (and must equal) the Inputs'."""
        if input_shape is not None:
            self._check_shapes(input_shape)
        base.check_key(f"{self._owner()}.init", key)
        return compilation.call_compiled(self._init_layers, key)

    def _init_layers(self, key: PRNGKey) -> tuple[Params, State]:
        first = {}
        for call in self.calls:
            first.setdefault(id(call.layer), call)
        params, state = {}, {}
        for i, (name, layer) in enumerate(zip(self.names, self.layers, strict=True)):
            base.init_child(self._owner(), name, layer, jax.random.fold_in(key, i),
                            first[id(layer)].input_shape(), params, state)
        return params, state

    def output_shape(self, input_shape: Any = None) -> Any:
        """The output shape (a tuple of shapes for several outputs), without the batch axis."""
        if input_shape is not None:
            self._check_shapes(input_shape)
        shapes = tuple(node.shape for node in self.outputs)
        return shapes[0] if len(shapes) == 1 else shapes

    def _inputs(self, x: Any) -> tuple:
        """The input arrays, checked against the Inputs in number and shape."""
        n = len(self.inputs)
        if n > 1 and (not isinstance(x, (tuple, list)) or len(x) != n):
            got = (f"{len(x)} arrays" if isinstance(x, (tuple, list))
                   else f"one array of shape {tuple(jnp.shape(x))}")
            raise ValueError(f"{self._owner()}: expected {n} inputs, a tuple (x1, ..., x{n}) of "
                             f"shapes {[(None,) + i.shape for i in self.inputs]}, received {got}. "
                             f"Pass one array per nn.Input, in the order of the model's inputs.")
        xs = tuple(x) if n > 1 else ((x[0],) if isinstance(x, (tuple, list)) and len(x) == 1
                                     else (x,))
        for i, (node, value) in enumerate(zip(self.inputs, xs, strict=True)):
            shape = tuple(jnp.shape(value))
            if shape[1:] != node.shape:
                raise ValueError(f"{self._owner()}: input {i} ({_label(node)}) expected shape "
                                 f"{(None,) + node.shape} (batch first), received {shape}. Pass "
                                 f"arrays of the Input's shape with a leading batch axis.")
        return xs

    def apply(self, params: Params, state: State, x: Any, *, key: Optional[PRNGKey] = None,
              training: bool = False) -> tuple[Any, State]:
        """Run the graph in topological order; several outputs come back as a tuple."""
        self._check_trees(params, state)
        values = {_key(node): v for node, v in zip(self.inputs, self._inputs(x), strict=True)}
        index = {id(layer): name for name, layer in zip(self.names, self.layers, strict=True)}
        new_state = dict(state)
        for j, call in enumerate(self.calls):
            name = index[id(call.layer)]
            args = tuple(values[_key(node)] for node in call.inputs)
            sub_key = None if key is None else jax.random.fold_in(key, j)
            try:
                y, s = call.layer.apply(params.get(name, {}), new_state.get(name, {}),
                                        args if call.packed else args[0],
                                        key=sub_key, training=training)
            except Exception as e:
                base.add_note(e, f"in {self._owner()} layer '{name}'")
                raise
            if jax.tree.leaves(s):
                new_state[name] = s
            if isinstance(y, tuple):
                values.update(((call, i), v) for i, v in enumerate(y))
            else:
                values[(call, None)] = y
        outs = tuple(values[_key(node)] for node in self.outputs)
        return (outs[0] if len(outs) == 1 else outs), new_state

    def _check_trees(self, params: Params, state: State) -> None:
        for what, tree in (("params", params), ("state", state)):
            if not isinstance(tree, Mapping):
                raise TypeError(f"{self._owner()}: `{what}` must be the dict that init returned, "
                                f"received {type(tree).__name__}. Create them with params, state "
                                f"= model.init(jax.random.key(0)) and pass both.")
            unknown = sorted(set(tree) - set(self.names))
            if unknown:
                raise ValueError(f"{self._owner()}: {what} hold entries {unknown} that match no "
                                 f"layer of this model (its layers are {list(self.names)}). Were "
                                 f"they made by another model's init? nn.subtree(params, model) "
                                 f"picks a sub-model's entries.")


def _key(node: AnyNode) -> Any:
    """The key of a node's value while a graph runs: the Input itself, or (call, output index)."""
    return node if isinstance(node, Input) else (node.call, node.index)


def _all_nodes(model: Model) -> list:
    """Every node of ``model``'s graph: its outputs and the inputs of its calls."""
    return list(model.outputs) + [n for call in model.calls for n in call.inputs]


def subtree(params: Params, sub_model: Model) -> Params:
    """The entries of ``sub_model``'s layers in the params (or state) of a bigger model.

    A sub-model built from the nodes of a bigger one names its layers as the
    bigger one does, so its params are the bigger one's entries of those names.

    Args:
        params: the bigger model's params (or state) dict.
        sub_model: a Model whose layers are layers of the bigger model.

    Returns:
        ``{name: params[name]}`` for each of ``sub_model``'s layers present in ``params``.

    Raises:
        ValueError: the params lack an entry ``sub_model.init`` would make, or
            hold one of another shape (the names differ: a sub-model that is not
            the first part of the bigger graph in topological order names its
            layers from 0 again; give those layers explicit names).

    Example:
        >>> import jax
        >>> from jaxdl import nn
        >>> inp = nn.Input((8,))
        >>> code = nn.Dense(2)(nn.Dense(4)(inp))
        >>> autoencoder = nn.Model(inp, nn.Dense(8)(nn.Dense(4)(code)))
        >>> encoder = nn.Model(inp, code)
        >>> params, _ = autoencoder.init(jax.random.key(0))
        >>> sorted(nn.subtree(params, encoder))
        ['dense_0', 'dense_1']
    """
    if not isinstance(sub_model, Model):
        raise TypeError(f"subtree: `sub_model` must be an nn.Model, received "
                        f"{type(sub_model).__name__}. Build it with nn.Model(inputs, outputs).")
    if not isinstance(params, Mapping):
        raise TypeError(f"subtree: `params` must be a model's params or state dict, received "
                        f"{type(params).__name__}.")
    made = jax.eval_shape(lambda k: sub_model.init(k), jax.random.key(0))
    in_params, in_state, have = set(made[0]), set(made[1]), set(params)
    # a params tree holds every params entry; a state tree every state entry and no other
    if not (in_params <= have or (in_state <= have and not have & (in_params - in_state))):
        missing = sorted(in_params - have)
        raise ValueError(f"subtree: the params lack the entries {missing} of {sub_model!r}'s "
                         f"layers {list(sub_model.names)}; they hold {sorted(params)}. The "
                         f"sub-model names its layers differently: name them explicitly with "
                         f"layer(node, name=...) when building the graph.")
    picked = {name: params[name] for name in sub_model.names if name in params}
    want = base.leaf_shapes(made[0] if in_params <= have else made[1])
    got = base.leaf_shapes(picked)
    wrong = [f"'{path}' is {got.get(path)} but {shape} in the sub-model"
             for path, shape in want.items() if got.get(path) != shape]
    if wrong:
        raise ValueError(f"subtree: the entries of the sub-model's layer names do not fit it: "
                         f"{'; '.join(wrong[:3])}. The bigger model names these layers "
                         f"differently: name them explicitly with layer(node, name=...) when "
                         f"building the graph.")
    return picked
