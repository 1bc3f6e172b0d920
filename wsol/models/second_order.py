"""Second-order passes with a lean conv double backward.

    with input_second_order(model), smooth_activations(model, beta):
        g = grad(logit, x, create_graph=True)      # input gradient, differentiable
        d = grad(loss_of(g), x)                     # its gradient w.r.t. x: the attack direction

    with lean_double_backward(model), smooth_activations(model, beta):
        g = grad(logit, x, create_graph=True)      # parameters keep requiring gradients
    loss_of(g).backward()                           # parameter gradients (double-backprop training)

PyTorch's double backward of a convolution (``_convolution_double_backward``) computes the
weight term gW = conv(ggI^T, gO^T) whenever the gradient of the input-gradient is defined,
whether or not the weight needs a gradient. On the CPU (oneDNN) that convolution - the batch
as channels, the whole feature map as the kernel - is the slowest op of the pass: for WRN-16-2
at 32 px and 100 rows, ~340 ms a layer against ~25 ms for the layer's own convolution, two
thirds of an attribution-attack step. With :func:`lean_conv2d` every plain ``nn.Conv2d``
computes its input gradient with ``F.conv_transpose2d`` instead: the same linear map, whose own
backward is an ordinary convolution and, where the weight needs one, an ordinary weight-gradient
kernel; the first-order weight gradient is a separate node that runs only when asked for.
Inside :func:`input_second_order` the parameters do not require gradients for the duration, so
no weight gradient is formed at all and the layer inputs are not kept for one;
:func:`lean_double_backward` keeps them (ART's L_attr pass).

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

__all__ = ["input_second_order", "lean_conv2d", "lean_double_backward"]


class _LeanConv2d(torch.autograd.Function):
    """conv2d without bias whose backward is the input gradient alone, a differentiable transposed
    convolution: differentiating it again forms ggO = conv2d(ggI, W) and, where the weight requires
    a gradient, the weight's second-order term through the transposed convolution's own weight
    gradient; nothing else. The weight's first-order gradient is a node of its own
    (:class:`_ConvWeightGrad`), which autograd runs only when a weight gradient is asked for."""

    @staticmethod
    def forward(ctx, x, weight, conf):
        stride, padding, dilation, groups = conf
        ctx.conf = conf
        ctx.input_shape = x.shape
        ctx.save_for_backward(weight)
        return F.conv2d(x, weight, None, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad_out):
        weight, = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        gx = None
        if ctx.needs_input_grad[0]:
            kernel = weight.shape[2:]
            extra = [ctx.input_shape[2 + i] - ((grad_out.shape[2 + i] - 1) * stride[i] - 2 * padding[i]
                                               + dilation[i] * (kernel[i] - 1) + 1) for i in range(2)]
            gx = F.conv_transpose2d(grad_out, weight.to(grad_out.dtype), None, stride, padding, extra, groups,
                                    dilation)
        return gx, None, None


class _ConvWeightGrad(torch.autograd.Function):
    """Zero in the forward (added to the convolution's output); its backward is the weight's
    first-order gradient, conv2d_weight(x, gO). `x` comes detached, so autograd runs this node only
    when a weight gradient is wanted (never for an input gradient)."""

    @staticmethod
    def forward(ctx, x, weight, conf, out):
        ctx.conf = conf
        ctx.weight_shape = weight.shape
        ctx.save_for_backward(x)
        return out.new_zeros(()).expand(out.shape)

    @staticmethod
    def backward(ctx, grad_out):
        x, = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        gw = torch.nn.grad.conv2d_weight(x.to(grad_out.dtype), ctx.weight_shape, grad_out, stride, padding,
                                         dilation, groups)
        return None, gw, None, None


def lean_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups: int = 1) -> torch.Tensor:
    """``F.conv2d`` (x (B,C,H,W)) with the lean double backward; numeric padding only.

    Input gradients of any order, the weight's and bias's first-order gradients and the weight's
    second-order term through an input gradient (a loss of d z/d x, differentiated w.r.t. the
    weight: double-backprop training) are all formed, each only when asked for. Not formed: the
    derivative of the first-order weight gradient w.r.t. the input (no caller needs it).
    """
    pair = (lambda v: (v, v) if isinstance(v, int) else tuple(v))
    conf = (pair(stride), pair(padding), pair(dilation), int(groups))
    y = _LeanConv2d.apply(x, weight, conf)
    if weight.requires_grad and torch.is_grad_enabled():
        y = y + _ConvWeightGrad.apply(x.detach(), weight, conf, y.detach())
    if bias is not None:
        y = y + bias.to(y.dtype)[:, None, None]
    return y


def _leanable(m: nn.Module) -> bool:
    """Plain zero-padded Conv2d with numeric padding (subclasses and 'same' padding keep their forward)."""
    return type(m) is nn.Conv2d and m.padding_mode == "zeros" and not isinstance(m.padding, str)


def _lean_forward(m: nn.Conv2d):
    def forward(x: torch.Tensor) -> torch.Tensor:
        return lean_conv2d(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
    return forward


@contextlib.contextmanager
def lean_double_backward(model: nn.Module) -> Iterator[nn.Module]:
    """Context: `model`'s plain ``nn.Conv2d`` layers use :func:`lean_conv2d`; restored on exit (also
    after an exception). Yields `model`. Parameters keep their gradients: for double-backprop
    training (ART's L_attr: a loss of input gradients, differentiated w.r.t. the parameters), where
    PyTorch's own conv double backward forms the weight term through a convolution with the batch
    as channels (slow on CPUs) and this path uses the ordinary weight-gradient kernel. Graphs built
    inside keep the lean nodes after exit, so the backward may run outside. Nesting-safe.
    """
    convs = [m for m in model.modules() if _leanable(m) and "forward" not in m.__dict__]
    try:
        for m in convs:
            m.forward = _lean_forward(m)
        yield model
    finally:
        for m in convs:
            m.__dict__.pop("forward", None)


@contextlib.contextmanager
def input_second_order(model: nn.Module) -> Iterator[nn.Module]:
    """Context: `model`'s parameters stop requiring gradients and its plain ``nn.Conv2d`` layers
    use :func:`lean_conv2d`; both restored on exit (also after an exception). Yields `model`.

    For work that differentiates input gradients w.r.t. the input only (attribution attacks);
    gradients w.r.t. the parameters are not available inside. Nesting-safe.
    """
    frozen = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in frozen:
            p.requires_grad_(False)
        with lean_double_backward(model):
            yield model
    finally:
        for p in frozen:
            p.requires_grad_(True)
