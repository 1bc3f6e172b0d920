"""Second-order passes w.r.t. the input only: no parameter gradients, a lean conv double backward.

    with input_second_order(model), smooth_activations(model, beta):
        g = grad(logit, x, create_graph=True)      # input gradient, differentiable
        d = grad(loss_of(g), x)                     # its gradient w.r.t. x: the attack direction

PyTorch's double backward of a convolution (``_convolution_double_backward``) computes the
weight term gW = conv(ggI^T, gO^T) whenever the gradient of the input-gradient is defined,
whether or not the weight needs a gradient. On the CPU (oneDNN) that convolution - the batch
as channels, the whole feature map as the kernel - is the slowest op of the pass: for WRN-16-2
at 32 px and 100 rows, ~340 ms a layer against ~25 ms for the layer's own convolution, two
thirds of an attribution-attack step. Inside :func:`input_second_order` every plain
``nn.Conv2d`` of the model computes its input gradient with ``F.conv_transpose2d`` instead:
the same linear map, whose own backward is an ordinary convolution (and a weight gradient
only where one is asked for). The parameters do not require gradients for the duration, so
no weight gradient is formed at all and the layer inputs are not kept for one.

Under autocast (the attack's bf16 mode) the forward convolution runs in the autocast dtype and
the backward in that of the incoming gradient; gradients return in the input's dtype.
Values are those of the standard path up to float rounding (bit-identical on oneDNN here);
``tests/test_second_order.py`` checks first and second derivatives against it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["input_second_order", "lean_conv2d"]


class _LeanConv2d(torch.autograd.Function):
    """conv2d whose backward is differentiable ops that form only the gradients asked for."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        ctx.conf = (tuple(stride), tuple(padding), tuple(dilation), int(groups))
        ctx.input_shape = x.shape
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x if weight.requires_grad else None, weight)
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            kernel = weight.shape[2:]
            extra = [ctx.input_shape[2 + i] - ((grad_out.shape[2 + i] - 1) * stride[i] - 2 * padding[i]
                                               + dilation[i] * (kernel[i] - 1) + 1) for i in range(2)]
            gx = F.conv_transpose2d(grad_out, weight.to(grad_out.dtype), None, stride, padding, extra, groups,
                                    dilation)
        if ctx.needs_input_grad[1]:
            gw = torch.nn.grad.conv2d_weight(x.to(grad_out.dtype), weight.shape, grad_out, stride, padding, dilation,
                                             groups)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = grad_out.sum((0, 2, 3))
        return gx, gw, gb, None, None, None, None


def lean_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups: int = 1) -> torch.Tensor:
    """``F.conv2d`` (x (B,C,H,W)) with the lean double backward; numeric padding only."""
    pair = (lambda v: (v, v) if isinstance(v, int) else tuple(v))
    return _LeanConv2d.apply(x, weight, bias, pair(stride), pair(padding), pair(dilation), groups)


def _leanable(m: nn.Module) -> bool:
    """Plain zero-padded Conv2d with numeric padding (subclasses and 'same' padding keep their forward)."""
    return type(m) is nn.Conv2d and m.padding_mode == "zeros" and not isinstance(m.padding, str)


def _lean_forward(m: nn.Conv2d):
    def forward(x: torch.Tensor) -> torch.Tensor:
        return _LeanConv2d.apply(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
    return forward


@contextlib.contextmanager
def input_second_order(model: nn.Module) -> Iterator[nn.Module]:
    """Context: `model`'s parameters stop requiring gradients and its plain ``nn.Conv2d`` layers
    use :func:`lean_conv2d`; both restored on exit (also after an exception). Yields `model`.

    For work that differentiates input gradients w.r.t. the input only (attribution attacks);
    gradients w.r.t. the parameters are not available inside. Nesting-safe.
    """
    frozen = [p for p in model.parameters() if p.requires_grad]
    convs = [m for m in model.modules() if _leanable(m) and "forward" not in m.__dict__]
    try:
        for p in frozen:
            p.requires_grad_(False)
        for m in convs:
            m.forward = _lean_forward(m)
        yield model
    finally:
        for m in convs:
            m.__dict__.pop("forward", None)
        for p in frozen:
            p.requires_grad_(True)
