"""Second-order passes with a lean double backward (convolutions, BatchNorm, Softplus, max pooling).

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

On the CPU a strided convolution of an input with few channels (ResNet's 7x7/2 stem on RGB) takes
its input gradient as one ordinary convolution over the output phases (:class:`_PhaseConvTranspose`):
2.5x oneDNN's transposed convolution here, which runs such layers at a third of a forward's speed.

Batch-statistics BatchNorm (train mode) goes through :func:`lean_batch_norm`: its first backward
is ATen's fused kernel, and the derivative of that backward (PyTorch's
``batchnorm_double_backward``, some twenty full-size element-wise passes a layer, a fifth of an
L_attr backward on ResNets) is written out in closed form: the fused backward kernel applied to
the incoming gradient, one product-sum and one three-term axpy per layer; eval-mode BatchNorm is
the affine map it is (one product back, one product in the double backward). The Softplus stand-ins
of ``wsol.models.smooth_activations`` use :func:`lean_softplus` (its double backward in four
passes instead of nine) wherever they run. CPU max pooling runs in channels-last layout (3-5x
ATen's NCHW kernel here) with the NCHW backward, the same indices and values.

Under autocast (`train.amp: bf16`, the attack's bf16 mode) the forward convolution runs in the
autocast dtype and the backward in that of the incoming gradient; BatchNorm keeps autocast's mixed
dtypes as nn.BatchNorm does (bf16 input, float32 parameters and statistics), its channel sums and
coefficients in float32; gradients return in the input's dtype.
Values are those of the standard path up to float rounding (the transposed convolution is
bit-identical on oneDNN here; the phase form, BN and Softplus round differently; max pooling is
bit-identical); ``tests/test_second_order.py`` checks first and second derivatives against it.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["input_second_order", "lean_batch_norm", "lean_conv2d", "lean_double_backward", "lean_softplus",
           "plain_double_backward"]

_plain = 0   # > 0 inside plain_double_backward()


@contextlib.contextmanager
def plain_double_backward() -> Iterator[None]:
    """Context: PyTorch's own double backward everywhere for the duration: :func:`lean_double_backward`
    and :func:`input_second_order` change nothing (parameters keep requiring gradients) and
    :func:`lean_softplus` is F.softplus. The computation the lean paths are checked against (tests)
    and timed against (bench_train_step's `*_plain` rows, bench_attack's reference). Process-wide
    while open; graphs built inside stay plain after exit. Nesting-safe."""
    global _plain
    _plain += 1
    try:
        yield
    finally:
        _plain -= 1


def _pair(v) -> tuple[int, int]:
    """An int or a pair (a conv's or pool's stride, padding...) as a pair."""
    return (v, v) if isinstance(v, int) else tuple(v)


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
            w = weight.to(grad_out.dtype)
            if grad_out.device.type == "cpu" and _by_phases(w, stride, dilation, groups):
                gx = _PhaseConvTranspose.apply(grad_out, w, ctx.conf, tuple(ctx.input_shape[2:]))
            else:
                gx = F.conv_transpose2d(grad_out, w, None, stride, padding, extra, groups, dilation)
        return gx, None, None


def _by_phases(weight: torch.Tensor, stride, dilation, groups: int) -> bool:
    """Whether the input gradient goes by :class:`_PhaseConvTranspose` (on the CPU; not measured on
    GPUs): a strided, undilated, ungrouped convolution of an input with few channels (a stem:
    ResNet's 7x7/2 on RGB), where oneDNN's transposed convolution runs at a third of a forward
    convolution's speed and the phase form, one ordinary convolution, at 2.5x the transposed one
    (ResNet stem, 32 images)."""
    return groups == 1 and tuple(dilation) == (1, 1) and max(stride) > 1 and weight.shape[1] <= 4


def _phase_taps(stride: int, padding: int, kernel: int) -> tuple[torch.Tensor, int, int]:
    """One axis of a transposed convolution split into its `stride` output phases: output index
    s*m + r gathers grad_out[m - d] * w[s*d + r + padding] over d. Returns (index (stride, T) into
    the kernel axis, `kernel` where a tap is empty), the phase kernel length T and d's largest value."""
    lo = min(-((r + padding) // stride) for r in range(stride))            # ceil((-r - p) / s)
    hi = max((kernel - 1 - r - padding) // stride for r in range(stride))
    taps = hi - lo + 1
    u = torch.tensor([[stride * (hi - t) + r + padding for t in range(taps)] for r in range(stride)])
    return torch.where((u >= 0) & (u < kernel), u, kernel), taps, hi


class _PhaseConvTranspose(torch.autograd.Function):
    """conv_transpose2d(grad_out, w) (the input gradient of conv2d(x, w) with stride s, x of spatial
    size `size`) as one ordinary convolution with s*s*C output channels (each output phase's taps of
    w) and an interleave of the phases; the same sums, in another order. Its backward is the
    transposed convolution's own: d/dgrad_out = conv2d(g, w) and d/dw the conv weight gradient of
    (g, grad_out), through differentiable ops (higher orders stay available)."""

    @staticmethod
    def forward(ctx, grad_out, weight, conf, size):
        stride, padding, dilation, groups = conf
        ctx.conf = conf
        ctx.save_for_backward(grad_out, weight)
        (i1, t1, h1), (i2, t2, h2) = (_phase_taps(stride[a], padding[a], weight.shape[2 + a]) for a in range(2))
        c = weight.shape[1]
        padded = F.pad(weight, (0, 1, 0, 1))                                     # index k: an empty tap
        w = padded[:, :, i1.to(weight.device)[:, :, None, None], i2.to(weight.device)[None, None]]  # (O,C,s1,T1,s2,T2)
        w = w.permute(1, 2, 4, 0, 3, 5).reshape(c * stride[0] * stride[1], weight.shape[0], t1, t2)
        m1, m2 = -(-size[0] // stride[0]), -(-size[1] // stride[1])
        h, wd = grad_out.shape[2:]
        pads = ((h1, m1 - h - h1 + t1 - 1), (h2, m2 - wd - h2 + t2 - 1))   # (before, after) per axis
        if min(min(p) for p in pads) >= 0:
            # the convolution's own (symmetric) zero padding and a crop: no padded copy of grad_out
            p1, p2 = max(pads[0]), max(pads[1])
            out = F.conv2d(grad_out, w, padding=(p1, p2))
            out = out[:, :, p1 - h1:p1 - h1 + m1, p2 - h2:p2 - h2 + m2]           # (B, C*s1*s2, M1, M2)
        else:
            out = F.conv2d(F.pad(grad_out, (*pads[1], *pads[0])), w)
        b = grad_out.shape[0]
        out = out.view(b, c, stride[0], stride[1], m1, m2).permute(0, 1, 4, 2, 5, 3)
        return out.reshape(b, c, m1 * stride[0], m2 * stride[1])[:, :, :size[0], :size[1]].contiguous()

    @staticmethod
    def backward(ctx, g):
        grad_out, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        d_out = d_w = None
        if ctx.needs_input_grad[0]:
            d_out = F.conv2d(g, weight, None, stride, padding, dilation, groups)
        if ctx.needs_input_grad[1]:
            d_w = torch.ops.aten.convolution_backward(grad_out, g, weight, None, stride, padding, dilation, False,
                                                      [0, 0], groups, [False, True, False])[1]
        return d_out, d_w, None, None


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


class _LeanBatchNorm(torch.autograd.Function):
    """Batch-statistics batch norm (ATen's kernel, running statistics updated as F.batch_norm does)
    whose backward is :class:`_LeanBatchNormBackward`."""

    @staticmethod
    def forward(ctx, x, weight, bias, running_mean, running_var, momentum, eps):
        y, mean, rstd = torch.ops.aten.native_batch_norm(x, weight, bias, running_mean, running_var, True,
                                                         momentum, eps)
        ctx.eps = eps
        ctx.save_for_backward(x, weight, mean, rstd)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, weight, mean, rstd = ctx.saved_tensors
        wants = ctx.needs_input_grad
        gx, gw, gb = _LeanBatchNormBackward.apply(gy, x, weight, mean, rstd, ctx.eps)
        return gx, gw if wants[1] else None, gb if wants[2] else None, None, None, None, None


class _LeanBatchNormBackward(torch.autograd.Function):
    """(gy, x, weight) -> (gx, gw, gb) of batch-statistics batch norm, by ATen's fused kernel; its own
    backward (the double backward, for a loss L of gx, gw and gb) in closed form. Per channel, with
    n elements, xh = (x - mean) * rstd, m1 = mean(gy), m2 = mean(gy * xh) and a = dL/dgx:

        gx = w * rstd * (gy - m1 - xh * m2)
        dL/dgy = w * rstd * (a - mean(a) - xh * mean(a * xh)) + xh * dL/dgw + dL/dgb
               (the fused backward kernel applied to a, plus the gw and gb terms)
        dL/dw  = rstd * (sum(a * gy) - m1 * sum(a) - m2 * sum(a * xh))
        dL/dx  = rstd * (v - mean(v) - xh * mean(v * xh)) - w * rstd^2 * xh * q / n,
                 v = dL/dxh = -w * rstd * (gy * sum(a * xh) / n + m2 * a) + gy * dL/dgw,
                 q = dL/dw / rstd,
    where mean(v) and mean(v * xh) follow from the channel sums already formed, so dL/dx is one
    three-term axpy in gy, a and x. Not differentiable again (no caller needs third derivatives):
    a double backward with create_graph=True raises.
    """

    @staticmethod
    def forward(ctx, gy, x, weight, mean, rstd, eps):
        # the kernel forms sum(gy) and sum(gy * xh) for gx anyway: keep them for the double backward
        gx, gw, gb = torch.ops.aten.native_batch_norm_backward(gy, x, weight, None, None, mean, rstd, True, eps,
                                                               [True, True, True])
        ctx.eps = eps
        ctx.save_for_backward(gy, x, weight, mean, rstd, gw, gb)
        return gx, gw, gb

    @staticmethod
    def backward(ctx, ggx, ggw, ggb):
        gy, x, weight, mean, rstd, gw, gb = ctx.saved_tensors
        _no_third_derivative("lean_batch_norm", ggx, ggw, ggb, gy, x, weight)
        c = x.shape[1]
        n = x.numel() // c
        col = (lambda t: t.reshape([1, c] + [1] * (x.dim() - 2)))
        w = weight if weight is not None else torch.ones_like(rstd)
        zero = torch.zeros_like(rstd)
        m1, m2 = gb / n, gw / n
        d_gy = d_w = None
        coef_gy = coef_a = xh_coef = const = zero   # dL/dx = gy*coef_gy + a*coef_a + xh*xh_coef + const
        if ggx is not None:
            d_gy, s_axh, s_a = torch.ops.aten.native_batch_norm_backward(ggx, x, weight, None, None, mean, rstd,
                                                                         True, ctx.eps, [True, True, True])
            s_agy = _channel_dot(ggx, gy, zero)
            q = s_agy - m1 * s_a - m2 * s_axh
            d_w = rstd * q
            v_gy, v_a = -w * rstd * s_axh / n, -w * rstd * m2      # v = gy*v_gy + a*v_a (+ gy*ggw below)
            mean_v, mean_vxh = v_gy * m1 + v_a * s_a / n, v_gy * m2 + v_a * s_axh / n
            coef_gy, coef_a = rstd * v_gy, rstd * v_a
            const = -rstd * mean_v
            xh_coef = -rstd * mean_vxh - w * q * rstd * rstd / n
        if ggw is not None:
            coef_gy = coef_gy + rstd * ggw
            const = const - rstd * ggw * m1
            xh_coef = xh_coef - rstd * ggw * m2
            lin = col(-ggw * rstd * mean + (ggb if ggb is not None else zero))
            scale = col(ggw * rstd)
            d_gy = torch.addcmul(lin, x, scale) if d_gy is None else d_gy.addcmul_(x, scale).add_(lin)
        elif ggb is not None:
            d_gy = col(ggb).expand_as(x).clone() if d_gy is None else d_gy.add_(col(ggb))
        d_x = torch.addcmul(col(const - xh_coef * rstd * mean), x, col(xh_coef * rstd))
        d_x.addcmul_(gy, col(coef_gy))
        if ggx is not None:
            d_x.addcmul_(ggx, col(coef_a))
        # under autocast x and gy are bf16 / fp16 and the statistics float32: sums and coefficients stay
        # float32, each result returns in its input's dtype
        return (d_gy if d_gy is None else d_gy.to(gy.dtype), d_x.to(x.dtype),
                d_w if weight is not None else None, None, None, None)


def _channel_dot(a: torch.Tensor, b: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    """sum(a * b) per channel (dim 1), in `zero`'s dtype (float32 for bf16 / fp16 a and b under
    autocast): the weight gradient of ATen's batch-norm backward kernel with mean 0 and inverse std 1,
    one pass with a wide accumulator (2.6-3x `(a * b).sum(dims)` here, and in bf16 without rounding
    each product)."""
    return torch.ops.aten.native_batch_norm_backward(a, b, None, None, None, zero, torch.ones_like(zero), True,
                                                     0.0, [False, True, False])[1]


def lean_batch_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                    running_mean: torch.Tensor | None, running_var: torch.Tensor | None,
                    momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:
    """``F.batch_norm(x, running_mean, running_var, weight, bias, training=True, momentum, eps)``
    (x (B,C,*)) with the lean double backward: normalised by the batch's statistics, running
    statistics (when given) updated in place as F.batch_norm does. Gradients of every input of
    the first order and of the second order (the gradient of x's, weight's and bias's gradients)
    are those of the standard path up to float rounding; third derivatives raise."""
    return _LeanBatchNorm.apply(x, weight, bias, running_mean, running_var, momentum, eps)


def _no_third_derivative(name: str, *tensors: torch.Tensor | None) -> None:
    """Raise where a double backward is itself to be differentiated (create_graph=True with inputs
    that need a graph): its closed form is not (once_differentiable would drop the term silently
    under torch.autograd.grad)."""
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        raise RuntimeError(f"{name}: third derivatives are not supported (a double backward ran with "
                           "create_graph=True); compute them outside wsol.models.lean_double_backward / "
                           "input_second_order and smooth_activations")


@functools.cache
def _saturates(dtype: torch.dtype, threshold: float) -> bool:
    """Whether sigmoid(threshold) rounds to 1 in `dtype` (float32: threshold >= ~17), so that the
    sigmoid of every input above it is exactly 1 already and needs no mask."""
    return bool(torch.sigmoid(torch.tensor(threshold, dtype=dtype)) == 1)


def _slope(x: torch.Tensor, beta: float, threshold: float) -> torch.Tensor:
    """Softplus's derivative sigmoid(beta x), exactly 1 where beta x > threshold (linear there)."""
    bx = x * beta if beta != 1 else x
    s = torch.sigmoid(bx)
    if not _saturates(s.dtype, threshold):
        s.masked_fill_(bx > threshold, 1.0)
    return s


class _LeanSoftplus(torch.autograd.Function):
    """F.softplus(x, beta, threshold) whose backward is :class:`_LeanSoftplusBackward`."""

    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.beta, ctx.threshold = beta, threshold
        ctx.save_for_backward(x)
        return F.softplus(x, beta, threshold)

    @staticmethod
    def backward(ctx, gy):
        x, = ctx.saved_tensors
        return _LeanSoftplusBackward.apply(gy, x, ctx.beta, ctx.threshold), None, None


class _LeanSoftplusBackward(torch.autograd.Function):
    """(gy, x) -> gy * s, s = sigmoid(beta x) (1 where beta x > threshold: softplus is linear there);
    its own backward: d/dgy = a * s, d/dx = beta * a * gy * s * (1 - s) (a the incoming gradient;
    zero above the threshold, as PyTorch's). The forward is ATen's softplus_backward kernel (one
    pass). PyTorch's softplus double backward takes some nine full-size passes; this takes four,
    recomputing s from x rather than keeping it (keeping it
    cost 17% more memory per image in a faithful ART step for 0.3% of its time). Not
    differentiable again: a double backward with create_graph=True raises."""

    @staticmethod
    def forward(ctx, gy, x, beta, threshold):
        ctx.beta, ctx.threshold = beta, threshold
        ctx.save_for_backward(gy, x)
        if gy.dtype == x.dtype:      # ATen's fused kernel (PyTorch's own softplus backward): one pass
            return torch.ops.aten.softplus_backward(gy, x, beta, threshold)
        return gy * _slope(x, beta, threshold)      # autocast's mixed dtypes

    @staticmethod
    def backward(ctx, ggx):
        gy, x = ctx.saved_tensors
        _no_third_derivative("lean_softplus", ggx, gy, x)
        s = _slope(x, ctx.beta, ctx.threshold)
        d_x = torch.ops.aten.sigmoid_backward(ggx * gy, s)
        if ctx.beta != 1:
            d_x.mul_(ctx.beta)
        return ggx * s, d_x, None, None


def lean_softplus(x: torch.Tensor, beta: float = 1.0, threshold: float = 20.0) -> torch.Tensor:
    """``F.softplus(x, beta, threshold)`` (any shape) with a lean double backward: the same values,
    first and second derivatives up to float rounding; third derivatives raise. F.softplus itself
    inside :func:`plain_double_backward`."""
    if _plain:
        return F.softplus(x, beta, threshold)
    return _LeanSoftplus.apply(x, beta, threshold)


def lean_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups: int = 1) -> torch.Tensor:
    """``F.conv2d`` (x (B,C,H,W)) with the lean double backward; numeric padding only.

    Input gradients of any order, the weight's and bias's first-order gradients and the weight's
    second-order term through an input gradient (a loss of d z/d x, differentiated w.r.t. the
    weight: double-backprop training) are all formed, each only when asked for. Not formed: the
    derivative of the first-order weight gradient w.r.t. the input (no caller needs it).
    """
    conf = (_pair(stride), _pair(padding), _pair(dilation), int(groups))
    y = _LeanConv2d.apply(x, weight, conf)
    if weight.requires_grad and torch.is_grad_enabled():
        y = y + _ConvWeightGrad.apply(x.detach(), weight, conf, y.detach())
    if bias is not None:
        y = y + bias.to(y.dtype)[:, None, None]
    return y


def _leanable(m: nn.Module) -> bool:
    """Plain zero-padded Conv2d with numeric padding (subclasses and 'same' padding keep their forward)."""
    return type(m) is nn.Conv2d and m.padding_mode == "zeros" and not isinstance(m.padding, str)


def _lean_pool(m: nn.Module) -> bool:
    """Plain MaxPool2d without returned indices."""
    return type(m) is nn.MaxPool2d and not m.return_indices


def _lean_pool_forward(m: nn.MaxPool2d):
    """On the CPU, max pooling of an NCHW batch in channels-last layout and back: ATen's NCHW kernel
    runs at a third to a fifth of the channels-last one here (ResNet's stem pool, VGG's pools, the
    conversions included). The same values, and the same argmax indices (both kernels keep the
    first maximum of a window in the same scan order; ties checked in tests), hence the same
    gradients of every order."""
    original = type(m).forward.__get__(m)

    def forward(x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or x.dim() != 4 or not x.is_contiguous():
            return original(x)
        return _ChannelsLastMaxPool.apply(x, (m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode))
    return forward


class _ChannelsLastMaxPool(torch.autograd.Function):
    """max_pool2d of an NCHW batch computed in channels-last layout (values and indices returned in
    NCHW); the backward is ATen's NCHW max-pool backward with those indices (differentiable: its
    derivative w.r.t. the incoming gradient gathers by the indices), faster here than the
    channels-last backward."""

    @staticmethod
    def forward(ctx, x, conf):
        kernel, stride, padding, dilation, ceil_mode = conf
        stride = kernel if stride is None or stride == [] else stride
        ctx.conf = (_pair(kernel), _pair(stride), _pair(padding), _pair(dilation), ceil_mode)
        y, idx = F.max_pool2d(x.contiguous(memory_format=torch.channels_last), kernel, stride, padding, dilation,
                              ceil_mode=ceil_mode, return_indices=True)
        idx = idx.contiguous()
        ctx.save_for_backward(x, idx)
        ctx.mark_non_differentiable(idx)
        return y.contiguous()

    @staticmethod
    def backward(ctx, gy):
        x, idx = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(gy, x, *ctx.conf, idx), None


def _lean_bn(m: nn.Module) -> bool:
    """Plain BatchNorm1d/2d/3d (subclasses, e.g. SyncBatchNorm, keep their forward)."""
    return type(m) in (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _lean_forward(m: nn.Conv2d):
    def forward(x: torch.Tensor) -> torch.Tensor:
        return lean_conv2d(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
    return forward


def _affine_batch_norm(x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None,
                       running_mean: torch.Tensor, running_var: torch.Tensor, eps: float) -> torch.Tensor:
    """Eval-mode batch norm, x (B,C,*), as x * scale + shift with scale = w / sqrt(var + eps) and
    shift = b - mean * scale per channel (what ATen's kernel computes, in one fused multiply-add):
    its backward is one product, its double backward one product; PyTorch's eval-mode
    ``batchnorm_double_backward`` takes several full-size passes (7-11% of an attribution-attack
    step on ResNets and WRNs here). Values equal F.batch_norm's up to float rounding."""
    scale = torch.rsqrt(running_var + eps)
    if weight is not None:
        scale = scale * weight
    shift = -running_mean * scale
    if bias is not None:
        shift = shift + bias
    shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
    # under autocast (bf16 / fp16 x, float32 statistics) in float32 and rounded once, as ATen's kernel
    return torch.addcmul(shift.reshape(shape), x, scale.reshape(shape)).to(x.dtype)


def _lean_bn_forward(m: nn.modules.batchnorm._BatchNorm):
    """nn.BatchNorm's own forward (running statistics, batch counter, momentum None = cumulative
    average) with :func:`lean_batch_norm` where it normalises with the batch's statistics and, in
    eval mode with running statistics, as the affine map it is (:func:`_affine_batch_norm`);
    under autocast the input stays in its dtype and the statistics and parameters in theirs (float32),
    as nn.BatchNorm's own path runs there."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        m._check_input_dim(x)
        if not (m.training or (m.running_mean is None and m.running_var is None)):
            return _affine_batch_norm(x, m.weight, m.bias, m.running_mean, m.running_var, m.eps)
        factor = 0.0 if m.momentum is None else m.momentum
        if m.training and m.track_running_stats and m.num_batches_tracked is not None:
            m.num_batches_tracked.add_(1)
            factor = 1.0 / float(m.num_batches_tracked) if m.momentum is None else m.momentum
        track = not m.training or m.track_running_stats
        return lean_batch_norm(x, m.weight, m.bias, m.running_mean if track else None,
                               m.running_var if track else None, factor, m.eps)
    return forward


@contextlib.contextmanager
def lean_double_backward(model: nn.Module) -> Iterator[nn.Module]:
    """Context: `model`'s plain ``nn.Conv2d`` layers use :func:`lean_conv2d`, its plain BatchNorm
    layers, where they normalise with the batch's statistics, :func:`lean_batch_norm`, and its plain
    ``nn.MaxPool2d`` layers on the CPU the channels-last kernel; restored on exit (also after an
    exception). Yields `model`. Parameters keep their gradients: for double-backprop
    training (ART's L_attr: a loss of input gradients, differentiated w.r.t. the parameters), where
    PyTorch's own conv double backward forms the weight term through a convolution with the batch
    as channels (slow on CPUs) and this path uses the ordinary weight-gradient kernel. Graphs built
    inside keep the lean nodes after exit, so the backward may run outside. Nesting-safe.
    """
    if _plain:
        yield model
        return
    convs = [m for m in model.modules() if _leanable(m) and "forward" not in m.__dict__]
    norms = [m for m in model.modules() if _lean_bn(m) and "forward" not in m.__dict__]
    pools = [m for m in model.modules() if _lean_pool(m) and "forward" not in m.__dict__]
    try:
        for m in convs:
            m.forward = _lean_forward(m)
        for m in norms:
            m.forward = _lean_bn_forward(m)
        for m in pools:
            m.forward = _lean_pool_forward(m)
        yield model
    finally:
        for m in convs + norms + pools:
            m.__dict__.pop("forward", None)


@contextlib.contextmanager
def input_second_order(model: nn.Module) -> Iterator[nn.Module]:
    """Context: `model`'s parameters stop requiring gradients and its plain convolution, BatchNorm
    and max-pool layers take the lean paths of :func:`lean_double_backward`; both restored on exit
    (also after an exception). Yields `model`.

    For work that differentiates input gradients w.r.t. the input only (attribution attacks);
    gradients w.r.t. the parameters are not available inside. Nesting-safe.
    """
    if _plain:
        yield model
        return
    frozen = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in frozen:
            p.requires_grad_(False)
        with lean_double_backward(model):
            yield model
    finally:
        for p in frozen:
            p.requires_grad_(True)
