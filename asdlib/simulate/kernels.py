"""Compiled loops (numba) that give NumPy's results bit for bit, faster: its random normal draws and
its floating-point arithmetic, operation for operation.

- :func:`standard_normal` gives ``rng.standard_normal(out=out)``'s draws, and leaves ``rng`` in the
  same state, about twice as fast: the generator's raw 64-bit words come from NumPy in blocks
  (``bit_generator.random_raw``) and :func:`_ziggurat` turns them into normals as NumPy's ziggurat
  does, with the sign applied without a branch (a mispredicted branch on every other draw is most
  of what NumPy's and numba's loops spend). 160,000 draws on a Zen 3: 0.77 ms, against 1.48 ms for
  numba's port of NumPy's ziggurat (:func:`_standard_normal`, the fallback for bit generators whose
  ``random_raw`` is not their 64-bit output) and 1.72 ms for NumPy.
  ``test_simulate.py::test_standard_normal_kernel_draws_numpys_numbers_and_leaves_its_state``
  checks both over a million draws.
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

try:  # NumPy's ziggurat tables, as numba's port of it holds them (not public: _standard_normal if moved)
    from numba.np.random._constants import fi_double, ki_double, wi_double, ziggurat_nor_inv_r, ziggurat_nor_r
except ImportError:  # pragma: no cover - a numba without them
    fi_double = ki_double = wi_double = None

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


#: Bit generators whose ``random_raw`` words are their ``next_uint64`` and whose ``next_double`` is
#: ``(next_uint64 >> 11) * 2**-53``, as :func:`_ziggurat` assumes (MT19937's are neither).
_RAW_IS_UINT64 = (np.random.PCG64, np.random.PCG64DXSM, np.random.SFC64, np.random.Philox)
_RAW_BLOCK = 1 << 16  # words per call of random_raw: 512 KiB, in the core's cache
_TO_DOUBLE = 1.0 / 9007199254740992.0  # 2**-53


@numba.njit(nogil=True, cache=True)
def _ziggurat(raw, out, pos, stage, x, idx, tail_negative, xx):
    """NumPy's ziggurat (``random_standard_normal``) over the words ``raw``, resumable.

    Writes draws into ``out`` from ``pos`` on and uses every word of ``raw``; a draw that needs more
    words than are left stops mid-way and goes on in the next call with the state returned.

    Parameters
    ----------
    raw : uint64 array
        The generator's next words.
    out : float64 array
        The draws.
    pos, stage, x, idx, tail_negative, xx
        Where the previous call stopped (``0, 0, 0.0, 0, 0, 0.0`` to start): the next index of
        ``out``; 0 for a new draw, 1 for the wedge test of layer ``idx`` with candidate ``x``, 2 and 3
        for the first and second uniform of the tail (``xx``, its sign ``tail_negative``).

    Returns
    -------
    tuple
        ``(pos, stage, x, idx, tail_negative, xx)`` after the last word.
    """
    i, n = 0, raw.size
    while i < n:
        if stage == 0:  # the layers accept about 99 % of the draws at once
            while i < n:
                r = raw[i]
                i += 1
                idx = np.int64(r & np.uint64(0xFF))
                rabs = np.int64((r >> np.uint64(9)) & np.uint64(0x000FFFFFFFFFFFFF))
                negative = np.float64((r >> np.uint64(8)) & np.uint64(1))
                x = rabs * wi_double[idx] * (1.0 - 2.0 * negative)  # x or -x exactly, without a branch
                if rabs < np.int64(ki_double[idx]):
                    out[pos] = x
                    pos += 1
                else:
                    if idx == 0:
                        stage, tail_negative = 2, (rabs >> 8) & 1
                    else:
                        stage = 1
                    break
        else:
            u = np.float64(raw[i] >> np.uint64(11)) * _TO_DOUBLE  # the generator's next_double
            i += 1
            if stage == 1:
                if (fi_double[idx - 1] - fi_double[idx]) * u + fi_double[idx] < np.exp(-0.5 * x * x):
                    out[pos] = x
                    pos += 1
                stage = 0
            elif stage == 2:
                xx = -ziggurat_nor_inv_r * np.log1p(-u)
                stage = 3
            else:
                yy = -np.log1p(-u)
                if yy + yy > xx * xx:
                    out[pos] = -(ziggurat_nor_r + xx) if tail_negative else ziggurat_nor_r + xx
                    pos += 1
                    stage = 0
                else:
                    stage = 2
    return pos, stage, x, idx, tail_negative, xx


def standard_normal(rng: np.random.Generator, out: np.ndarray) -> None:
    """``rng.standard_normal(out=out)``, faster: the same draws, and ``rng`` ends in the same state.

    Parameters
    ----------
    rng : numpy.random.Generator
        The generator to draw from.
    out : C-contiguous float64 array
        Filled in place, in C order.
    """
    if not (out.flags.c_contiguous and out.dtype == np.float64):
        raise ValueError(f"standard_normal needs a C-contiguous float64 array, got {out.dtype} with strides {out.strides}")
    flat = out.reshape(-1)
    if wi_double is None or not isinstance(rng.bit_generator, _RAW_IS_UINT64):
        _standard_normal(rng, flat)
        return
    state = (0, 0, 0.0, 0, 0, 0.0)
    while state[0] < flat.size:
        # Every draw still to make takes at least one word, so this never takes a word too many.
        raw = rng.bit_generator.random_raw(min(flat.size - state[0], _RAW_BLOCK))
        state = _ziggurat(raw, flat, *state)


def load() -> None:
    """Compile the single-precision kernels, or load them from numba's cache (about 0.2 s, once per process).

    :func:`~asdlib.simulate.simulate_dataset` calls it before it starts its worker processes: forked
    workers inherit the compiled code instead of each loading it again.
    """
    one = np.zeros((1, 1), dtype=np.complex64)
    _mix_sources(one, one[None], one[None], False, np.empty_like(one))
    standard_normal(np.random.default_rng(0), np.empty(1))  # the simulator's PCG64: _ziggurat, not the fallback
