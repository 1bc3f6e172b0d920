"""Floating-point operation counts of the ATen ops a piece of code dispatches (shared by the benchmarks)."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_map
from torch.utils.flop_counter import flop_registry


class FlopCount(TorchDispatchMode):
    """Counts the floating-point operations of the ATen ops run inside it, by torch's own
    formulas (``torch.utils.flop_counter.flop_registry``: convolutions, their backward, matmuls).
    Element-wise ops are not counted. `flops` is the running total (read it between phases).

    torch's FlopCounterMode cannot be used here: its module hooks fail inside the attacks'
    ``autograd.grad`` calls ("A leaf node was passed to _will_engine_execute_node").
    """

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            shape = lambda v: v.shape if isinstance(v, torch.Tensor) else v   # noqa: E731
            self.flops += formula(*tree_map(shape, args), **tree_map(shape, kwargs), out_val=tree_map(shape, out))
        return out


def count_flops(fn) -> int:
    """FLOPs of calling fn() once."""
    with FlopCount() as counter:
        fn()
    return counter.flops
