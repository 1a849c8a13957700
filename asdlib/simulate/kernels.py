"""Compiled loops (numba) that give NumPy's results bit for bit, faster: its random normal draws and
its floating-point arithmetic, operation for operation.

- :func:`_standard_normal` is numba's port of NumPy's ziggurat: the same draws from a
  ``np.random.Generator``, which ends in the same state, about 3 times as fast as
  ``rng.standard_normal(out=...)`` here (160,000 draws: 0.5 ms instead of 1.5 ms).
  ``test_simulate.py::test_standard_normal_kernel_draws_numpys_numbers_and_leaves_its_state``
  checks it over a million draws.
- NumPy's SIMD loops multiply complex numbers with fused multiply-adds,
  ``(a * b).real = fma(a.real, b.real, -(a.imag * b.imag))`` and
  ``(a * b).imag = fma(a.real, b.imag, a.imag * b.real)``; :func:`_cmul` does the same through LLVM's
  ``fma`` intrinsic, so :func:`_mix_sources` gives NumPy's results bit for bit while it keeps its
  operands in registers instead of making one pass over memory per operation.
  ``test_simulate.py::test_mix_at_mics_is_numpys_arithmetic`` checks it.

The functions compile on first use and are cached on disk (numba's ``cache=True``): a new process
loads them in about 0.2 s (numba's start-up) instead of compiling them (about 0.8 s).
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.extending import intrinsic

__all__: list[str] = []


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` rounded once (LLVM's ``llvm.fma``, in the precision of ``a``)."""

    def codegen(context, builder, signature, args):
        t = args[0].type
        return builder.call(builder.module.declare_intrinsic("llvm.fma", [t], ir.FunctionType(t, [t, t, t])), args)

    return a(a, b, c), codegen


@numba.njit(inline="always")
def _cmul(ar, ai, br, bi):
    """``(ar + i ai) * (br + i bi)`` as NumPy's complex multiply computes it: (real, imaginary)."""
    return _fma(ar, br, -(ai * bi)), _fma(ar, bi, ai * br)


@numba.njit(nogil=True, cache=True)
def _mix_sources(spectra, fine, coarse, zero_last, out):
    """``out[m, k] = sum_s (fine[s, m, k % B] * spectra[s, k]) * coarse[s, m, k // B]``, sources in order.

    Parameters
    ----------
    spectra : complex array [shape=(S, F)]
        The sources' spectra.
    fine, coarse : complex arrays [shape=(S, M, B)] and [shape=(S, M, ceil(F / B))]
        The factors of each source's phase ramp (and spreading) to microphone ``m``.
    zero_last : bool
        Set the last bin of ``out`` to 0 (the Nyquist bin of an even-length signal, which cannot carry a
        fractional delay).
    out : complex array [shape=(M, F)]
        Written in place.

    The products and the running sum are NumPy's ``np.multiply(fine, x, out=t); t *= c; acc += t``,
    bin by bin, in the dtype of the arrays (complex64 or complex128).
    """
    n_src, n_bins = spectra.shape
    n_mics, block = fine.shape[1], fine.shape[2]
    n_mixed = n_bins - 1 if zero_last else n_bins
    for b0 in range(0, n_mixed, block):
        b, width = b0 // block, min(block, n_mixed - b0)
        for m in range(n_mics):
            acc = out[m, b0 : b0 + width]
            for s in range(n_src):
                cr, ci = coarse[s, m, b].real, coarse[s, m, b].imag
                f, x = fine[s, m], spectra[s, b0 : b0 + width]
                for j in range(width):
                    tr, ti = _cmul(f[j].real, f[j].imag, x[j].real, x[j].imag)
                    ur, ui = _cmul(tr, ti, cr, ci)
                    if s == 0:
                        acc[j] = complex(ur, ui)
                    else:
                        acc[j] = complex(acc[j].real + ur, acc[j].imag + ui)
    if zero_last:
        out[:, n_bins - 1] = 0


@numba.njit(nogil=True, cache=True)
def _standard_normal(rng, out):
    """Fill the float64 array ``out`` with draws of ``rng.standard_normal()``, in order.

    numba's port of NumPy's ziggurat: the same numbers, and ``rng`` (a ``np.random.Generator``) ends in
    the same state as after ``rng.standard_normal(out=out)``.
    """
    for i in range(out.size):
        out[i] = rng.standard_normal()


def load() -> None:
    """Compile the single-precision kernels, or load them from numba's cache (about 0.2 s, once per process).

    :func:`~asdlib.simulate.simulate_dataset` calls it before it starts its worker processes: forked
    workers inherit the compiled code instead of each loading it again.
    """
    one = np.zeros((1, 1), dtype=np.complex64)
    _mix_sources(one, one[None], one[None], False, np.empty_like(one))
    _standard_normal(np.random.default_rng(0), np.empty(1))
