"""BatchNorm + ReLU of the fused trainer's stacked networks as compiled loops (numba), forward and
backward, and the output layer's residual and loss in one pass (:func:`residual_loss`).

:class:`asdlib.fused.StackedAutoencoders` normalises activations ``a`` of shape ``(N, b, C)``: ``N``
networks, a batch of ``b`` vectors, ``C`` channels, statistics per network and channel. Written as
PyTorch operations, one layer's forward and backward take about 25 passes over ``a``-sized arrays
(mean, centring, squares, sums, scaling, ReLU, mask, the gradient's three terms, the bias sum), each
streaming the whole ``(N, b, C)`` array through the cache. These loops take one network at a time,
whose ``b x C`` block (128 KiB in float32 for the paper's 256 x 128) stays in the core's L2 cache
between passes, and do the whole layer in three passes each way: the same formulas
(the textbook BatchNorm and ReLU, as :meth:`asdlib.fused.StackedAutoencoders._bn_relu_forward` and
:meth:`~asdlib.fused.StackedAutoencoders._bn_relu_backward` write them with PyTorch), in the arrays' own
precision, summed in another order, so the results agree with those to rounding
(``tests/test_fused.py::test_cpu_kernels_do_the_same_step``; the Linear bias's gradient,
exactly zero in exact arithmetic, is rounding noise either way).

The loops run on one thread. The fused trainer uses them when torch runs on one thread, as the
runner's grids do (one per core): there an epoch of the 9-model grid took 4 % less time (paired,
on 2 cores). On two threads they still win for one model (1.15-1.22x an epoch of the baseline),
whose small arrays gain nothing from PyTorch's two-thread passes, but not for the whole grid
(0.83-0.96x), so the trainer takes them there only for stacks of up to
:data:`asdlib.fused.CPU_KERNELS_MAX_NETWORKS` networks
(:meth:`asdlib.fused.StackedAutoencoders.uses_cpu_kernels`). The loops compile on first use and
are cached on disk (``cache=True``).
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["bn_relu_forward", "bn_relu_backward", "residual_loss"]


@numba.njit(nogil=True, cache=True, boundscheck=False)
def bn_relu_forward(a, gamma, beta, eps, momentum, bias, running_mean, running_var, act, invstd):  # pragma: no cover - compiled
    """Training-mode BatchNorm + ReLU of ``a = h Wᵀ`` (the Linear output without its bias), in place.

    Parameters
    ----------
    a : array [shape=(N, b, C)]
        Overwritten with the normalised ``x̂ = (a - mean) / sqrt(var + eps)`` (the backward pass's input).
    gamma, beta, bias : arrays [shape=(N, 1, C)]
        BatchNorm weight and bias, and the Linear layer's bias (which the batch mean cancels; it
        enters only the running mean).
    eps, momentum : float
        ``BatchNorm1d``'s ``eps`` and ``momentum``.
    running_mean, running_var : arrays [shape=(N, 1, C)]
        Updated as ``nn.BatchNorm1d`` does: ``(1 - m) r + m s`` with the batch mean of ``a + bias``
        and the unbiased batch variance.
    act : array [shape=(N, b, C)]
        Written: ``ReLU(γ x̂ + β)``.
    invstd : array [shape=(N, 1, C)]
        Written: ``1 / sqrt(var + eps)`` with the biased batch variance.
    """
    n_net, n_b, n_c = a.shape
    zero = np.zeros(1, a.dtype)[0]
    one = zero + 1
    eps = zero + eps
    new = zero + momentum  # nn.BatchNorm1d's arithmetic: r.mul_(1 - m).add_(s, alpha=m) in the arrays' precision
    keep = zero + (1.0 - momentum)
    new_var = zero + momentum * n_b / (n_b - 1)  # the unbiased variance's weight
    mean = np.empty(n_c, a.dtype)
    var = np.empty(n_c, a.dtype)
    for n in range(n_net):
        mean[:] = zero
        for i in range(n_b):
            for c in range(n_c):
                mean[c] += a[n, i, c]
        for c in range(n_c):
            mean[c] /= n_b
        var[:] = zero
        for i in range(n_b):
            for c in range(n_c):
                d = a[n, i, c] - mean[c]
                var[c] += d * d
        for c in range(n_c):
            var[c] /= n_b
            invstd[n, 0, c] = one / np.sqrt(var[c] + eps)
            running_mean[n, 0, c] = keep * running_mean[n, 0, c] + new * (mean[c] + bias[n, 0, c])
            running_var[n, 0, c] = keep * running_var[n, 0, c] + new_var * var[c]
        for i in range(n_b):
            for c in range(n_c):
                xhat = (a[n, i, c] - mean[c]) * invstd[n, 0, c]
                a[n, i, c] = xhat
                y = xhat * gamma[n, 0, c] + beta[n, 0, c]
                act[n, i, c] = y if y > zero else zero


@numba.njit(nogil=True, cache=True, boundscheck=False)
def bn_relu_backward(grad_act, act, xhat, gamma, invstd, dgamma, dbeta, dbias):  # pragma: no cover - compiled
    """Backward of :func:`bn_relu_forward` and of the Linear bias before it.

    ``g = grad_act · [act > 0]``, ``dβ = Σ_b g``, ``dγ = Σ_b g x̂``,
    ``da = γ invstd (g - dβ / b - x̂ dγ / b)``, ``dbias = Σ_b da``.

    Parameters
    ----------
    grad_act : array [shape=(N, b, C)]
        The gradient at the ReLU's output (not modified).
    act : array [shape=(N, b, C)]
        The ReLU's output; overwritten with ``da``, the gradient at the Linear output.
    xhat, gamma, invstd : arrays
        From the forward pass: ``x̂`` (N, b, C), ``γ`` and ``1 / sqrt(var + eps)`` (N, 1, C).
    dgamma, dbeta, dbias : arrays [shape=(N, 1, C)]
        Written: the gradients of ``γ``, ``β`` and the Linear bias.
    """
    n_net, n_b, n_c = act.shape
    zero = np.zeros(1, act.dtype)[0]
    db = np.empty(n_c, act.dtype)
    dg = np.empty(n_c, act.dtype)
    scale = np.empty(n_c, act.dtype)
    sb = np.empty(n_c, act.dtype)
    for n in range(n_net):
        db[:] = zero
        dg[:] = zero
        for i in range(n_b):
            for c in range(n_c):
                g = grad_act[n, i, c] if act[n, i, c] > zero else zero
                db[c] += g
                dg[c] += g * xhat[n, i, c]
        for c in range(n_c):
            dbeta[n, 0, c] = db[c]
            dgamma[n, 0, c] = dg[c]
            scale[c] = gamma[n, 0, c] * invstd[n, 0, c]
            db[c] /= n_b
            dg[c] /= n_b
        sb[:] = zero
        for i in range(n_b):
            for c in range(n_c):
                g = grad_act[n, i, c] if act[n, i, c] > zero else zero
                d = scale[c] * (g - db[c] - xhat[n, i, c] * dg[c])
                act[n, i, c] = d
                sb[c] += d
        for c in range(n_c):
            dbias[n, 0, c] = sb[c]



@numba.njit(nogil=True, cache=True, boundscheck=False)
def residual_loss(r, bias, x, scale, sse):  # pragma: no cover - compiled
    """The output layer's residual, each network's sum of its squares, and the residual scaled into
    the loss gradient, in one pass over each network's block.

    ``r = h Wᵀ + bias - x``, ``sse = Σ r²`` per network, then ``r ← scale r``: what the fused
    trainer otherwise does as four PyTorch passes (``bias - x``, the product added to it,
    ``vector_norm``, the scaling).

    Parameters
    ----------
    r : array [shape=(N, b, D)]
        ``h Wᵀ`` on entry (the output layer's product without its bias); overwritten with
        ``scale · (h Wᵀ + bias - x)``.
    bias : array [shape=(N, 1, D)]
        The output layer's bias.
    x : array [shape=(N, b, D)]
        The networks' inputs, which they reconstruct (not modified).
    scale : array [shape=(N,)]
        Each network's factor: ``2 w / (b D)`` gives the gradient of its weighted MSE; ones keep
        the residual.
    sse : array [shape=(N,)]
        Written: ``Σ r²`` over the batch and the outputs, before the scaling, summed per output in
        the arrays' precision.
    """
    n_net, n_b, n_d = r.shape
    zero = np.zeros(1, r.dtype)[0]
    acc = np.empty(n_d, r.dtype)
    for n in range(n_net):
        acc[:] = zero
        s = scale[n]
        for i in range(n_b):
            for d in range(n_d):
                v = r[n, i, d] + bias[n, 0, d] - x[n, i, d]
                acc[d] += v * v
                r[n, i, d] = v * s
        total = zero
        for d in range(n_d):
            total += acc[d]
        sse[n] = total
