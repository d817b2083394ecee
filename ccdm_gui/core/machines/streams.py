"""Opening a streamed softmax: the state class of the route that computes it."""

from __future__ import annotations

import torch

from . import routes
from .routes import Route, Task
from .stream_fold import FoldStream
from .stream_numba import NumbaStream
from .stream_torch import TorchStream
from .streaming import Stream


def open_stream(
    queries: torch.Tensor,
    key_scale: float,
    value_dim: int,
    *,
    tile_elements: int | None = None,
    separate_keys: bool = False,
    route: Route | None = None,
) -> Stream:
    """A softmax state for queries [G, M, D] (already multiplied by a / v; key_scale =
    a^2 / (2 v)) over key chunks with ``value_dim`` values each. ``route``: chosen by the
    caller, else by routes.select. ``tile_elements``: logits per tile (tiled routes);
    ``separate_keys``: the chunks will carry their patches apart from the bank."""
    if route is None:
        route = routes.select(Task.of(queries, queries.shape[-1], value_dim))
    if route is Route.TORCH:
        return TorchStream(queries, key_scale, value_dim, tile_elements, separate_keys)
    if route is Route.NUMBA:
        return NumbaStream(queries, key_scale, value_dim, tile_elements)
    if route in (Route.FOLD_AVX512, Route.FOLD_AVX2):
        return FoldStream(queries, key_scale, value_dim, route.isa)
    raise ValueError(f"route {route.value} does not stream key chunks")
