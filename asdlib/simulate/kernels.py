"""Compiled loops (numba) that give NumPy's results bit for bit, faster: its random normal draws and
its floating-point arithmetic, operation for operation. The timings are of one core of a Zen 3.

- :func:`standard_normal` gives ``rng.standard_normal(out=out)``'s draws, and leaves ``rng`` in the
  same state, more than twice as fast: :func:`_ziggurat` turns the generator's 64-bit words into
  normals as NumPy's ziggurat does, with the sign applied without a branch (a mispredicted branch on
  every other draw is most of what NumPy's and numba's loops spend). For NumPy's default bit
  generator, PCG64, the words come from :func:`_pcg64_words`, PCG64's step compiled inline (its
  128-bit state in LLVM's 128-bit integers; 160,000 words in 0.31 ms against 0.42 ms for
  ``bit_generator.random_raw``, which calls the generator through a function pointer per word), and
  the generator is then set to the state NumPy's would be in; other bit generators give their words
  through ``random_raw``. 160,000 draws: 0.66 ms, against 1.72 ms for NumPy and 1.48 ms for numba's
  port of NumPy's ziggurat (:func:`_standard_normal`, the fallback for bit generators whose
  ``random_raw`` is not their 64-bit output).
  ``test_simulate.py::test_standard_normal_kernel_draws_numpys_numbers_and_leaves_its_state`` and
  the tests after it check them over a million draws, on every bit generator of NumPy.
- NumPy's SIMD loops multiply complex numbers with fused multiply-adds,
  ``(a * b).real = fma(a.real, b.real, -(a.imag * b.imag))`` and
  ``(a * b).imag = fma(a.real, b.imag, a.imag * b.real)``; :func:`_cmul` does the same through LLVM's
  ``fma`` intrinsic. So :func:`_mix_sources` (the sum over sources at the microphones) and
  :func:`harmonic_sum` (a sum of harmonics by Horner's rule) give NumPy's results bit for bit while
  they keep their operands in registers and cache instead of making one pass over memory per
  operation: 40 harmonics of 162,000 samples in 1.9 ms instead of 4.0 (cosine and sine included).
  :func:`_mix_sources` works on real and imaginary parts held apart, which the compiler turns into
  SIMD loops: 1.3-1.5 times as fast as the same loop over interleaved complex numbers (five
  sources to eight microphones, 81,001 bins: 1.9 ms instead of 2.6).
  ``test_simulate.py::test_mix_at_mics_is_numpys_arithmetic`` and
  ``test_harmonic_sum_is_numpys_horner_recursion`` check them.
- :func:`wrap_phase`, :func:`interp` (``np.interp`` for ascending points: 0.24 ms instead of 0.66
  for 162,000), :func:`add_scaled` (the microphones' self-noise added: 0.05 ms a channel instead of
  0.18), :func:`mix_scaled` (the clip's three parts scaled and summed, and its peak: 1.1 ms instead
  of 1.4 for 8 channels of 160,000 samples) and :func:`pcm16` (the 16-bit conversion) are NumPy's
  arithmetic in one pass.

The functions compile on first use (about 2.4 s) and are cached on disk (numba's ``cache=True``): a
new process loads them in about 0.27 s (numba's start-up).
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


_I128, _I64 = ir.IntType(128), ir.IntType(64)


@intrinsic
def _muladd128(typingctx, hi, lo, m_hi, m_lo, c_hi, c_lo):
    """``(hi, lo) * (m_hi, m_lo) + (c_hi, c_lo)`` modulo 2**128, as (high, low) uint64 halves."""
    u64 = numba.types.uint64
    signature = numba.types.UniTuple(u64, 2)(u64, u64, u64, u64, u64, u64)

    def codegen(context, builder, signature, args):
        def join(high, low):
            return builder.or_(builder.shl(builder.zext(high, _I128), ir.Constant(_I128, 64)), builder.zext(low, _I128))

        value = builder.add(builder.mul(join(args[0], args[1]), join(args[2], args[3])), join(args[4], args[5]))
        halves = [builder.trunc(builder.lshr(value, ir.Constant(_I128, 64)), _I64), builder.trunc(value, _I64)]
        return context.make_tuple(builder, signature.return_type, halves)

    return signature, codegen


@numba.njit(inline="always")
def _cmul(ar, ai, br, bi):
    """``(ar + i ai) * (br + i bi)`` as NumPy's complex multiply computes it: (real, imaginary)."""
    return _fma(ar, br, -(ai * bi)), _fma(ar, bi, ai * br)


@numba.njit(inline="always")
def _ramp_term(fr, fi, xr, xi, cr, ci):
    """``(fine * x) * coarse``, two of NumPy's complex multiplies: (real, imaginary)."""
    tr, ti = _cmul(fr, fi, xr, xi)
    return _cmul(tr, ti, cr, ci)


@numba.njit(nogil=True, cache=True)
def _mix_sources(spectra, fine_re, fine_im, coarse, zero_last, out):
    """``out[m, k] = sum_s (fine[s, m, k % B] * spectra[s, k]) * coarse[s, m, k // B]``, sources in order.

    Parameters
    ----------
    spectra : complex array [shape=(S, F)]
        The sources' spectra.
    fine_re, fine_im : float arrays [shape=(S, M, B)]
        Real and imaginary parts of the fine factors of each source's phase ramp to microphone ``m``,
        in the precision of ``spectra``.
    coarse : complex array [shape=(S, M, ceil(F / B))]
        The coarse factors (and spreading).
    zero_last : bool
        Set the last bin of ``out`` to 0 (the Nyquist bin of an even-length signal, which cannot carry a
        fractional delay).
    out : complex array [shape=(M, F)]
        Written in place.

    The products and the running sum are NumPy's ``np.multiply(fine, x, out=t); t *= c; acc += t``,
    bin by bin, in the dtype of the arrays (complex64 or complex128). Each block of ``B`` bins of
    every source is split into real and imaginary parts once, and each microphone's sum is kept
    split until it is written: contiguous operands, which the compiler turns into SIMD loops (1.3-1.5
    times as fast as the same loop over interleaved complex numbers).
    """
    n_src, n_bins = spectra.shape
    n_mics, block = fine_re.shape[1], fine_re.shape[2]
    n_mixed = n_bins - 1 if zero_last else n_bins
    x_re, x_im = np.empty((n_src, block), dtype=fine_re.dtype), np.empty((n_src, block), dtype=fine_re.dtype)
    acc_re, acc_im = np.empty(block, dtype=fine_re.dtype), np.empty(block, dtype=fine_re.dtype)
    for b0 in range(0, n_mixed, block):
        b, width = b0 // block, min(block, n_mixed - b0)
        for s in range(n_src):
            for j in range(width):
                x_re[s, j], x_im[s, j] = spectra[s, b0 + j].real, spectra[s, b0 + j].imag
        for m in range(n_mics):
            dst = out[m, b0 : b0 + width]
            for s in range(n_src):
                cr, ci = coarse[s, m, b].real, coarse[s, m, b].imag
                fr, fi, xr, xi = fine_re[s, m], fine_im[s, m], x_re[s], x_im[s]
                # one loop per case, each without a branch, so that each becomes a SIMD loop
                if n_src == 1:  # the term is the sum
                    for j in range(width):
                        ur, ui = _ramp_term(fr[j], fi[j], xr[j], xi[j], cr, ci)
                        dst[j] = complex(ur, ui)
                elif s == 0:
                    for j in range(width):
                        acc_re[j], acc_im[j] = _ramp_term(fr[j], fi[j], xr[j], xi[j], cr, ci)
                elif s < n_src - 1:
                    for j in range(width):
                        ur, ui = _ramp_term(fr[j], fi[j], xr[j], xi[j], cr, ci)
                        acc_re[j] += ur
                        acc_im[j] += ui
                else:  # the last source's term, added as the sum is written out
                    for j in range(width):
                        ur, ui = _ramp_term(fr[j], fi[j], xr[j], xi[j], cr, ci)
                        dst[j] = complex(acc_re[j] + ur, acc_im[j] + ui)
    if zero_last:
        out[:, n_bins - 1] = 0


_HORNER_BLOCK = 256  # samples per block of harmonic_sum: its running sums stay in the core's L1 cache


@numba.njit(nogil=True, cache=True)
def harmonic_sum(cos, sin, coef_re, coef_im, out):
    """The imaginary part of ``sum_k c_k z^k`` (k = 1 .. K) with ``z = cos + i sin``, by Horner's rule.

    Gives bit for bit what NumPy gives for ``acc = np.full(n, c_K, np.complex64)``, then for
    ``k = K - 1, ..., 1``: ``acc *= z`` and, where ``c_k != 0``, ``acc += c_k``; then ``acc *= z``
    and ``out[:] = acc.imag``. It runs the recursion over blocks of samples held in registers and
    cache instead of two passes over the whole signal per harmonic.

    Parameters
    ----------
    cos, sin : float32 arrays [shape=(n,)]
        Real and imaginary parts of ``z``.
    coef_re, coef_im : float32 arrays [shape=(K,)], K >= 1
        The coefficients ``c_1 .. c_K`` (complex64 values, real and imaginary parts).
    out : float array [shape=(n,)]
        Written in place.
    """
    n, k = cos.size, coef_re.size
    acc_re = np.empty(_HORNER_BLOCK, dtype=np.float32)
    acc_im = np.empty(_HORNER_BLOCK, dtype=np.float32)
    for b0 in range(0, n, _HORNER_BLOCK):
        width = min(_HORNER_BLOCK, n - b0)
        zr, zi = cos[b0 : b0 + width], sin[b0 : b0 + width]
        acc_re[:width] = coef_re[k - 1]
        acc_im[:width] = coef_im[k - 1]
        for c in range(k - 2, -1, -1):
            cr, ci = coef_re[c], coef_im[c]
            add = cr != 0 or ci != 0
            for j in range(width):
                r, i = _cmul(acc_re[j], acc_im[j], zr[j], zi[j])
                if add:
                    r += cr
                    i += ci
                acc_re[j], acc_im[j] = r, i
        for j in range(width):
            out[b0 + j] = _cmul(acc_re[j], acc_im[j], zr[j], zi[j])[1]


@numba.njit(nogil=True, cache=True)
def wrap_phase(phase, out):
    """``out[:] = phase - 2π rint(phase / 2π)``: ``phase`` reduced to ``[-π, π]``, rounded to ``out``'s dtype.

    NumPy's ``turns = np.rint(phase * (1 / 2π)); turns *= 2π; out[:] = phase - turns``, in one pass.

    Parameters
    ----------
    phase : float64 array [shape=(n,)]
        Radians.
    out : float array [shape=(n,)]
        Written in place (float32 for :func:`harmonic_sum`).
    """
    two_pi = 2.0 * np.pi
    inverse = 1.0 / two_pi
    for i in range(phase.size):
        turns = np.rint(phase[i] * inverse)
        out[i] = phase[i] - turns * two_pi


_PCM_BLOCK = 512  # samples per block of pcm16: each channel converted along its row, then interleaved


@numba.njit(nogil=True, cache=True)
def pcm16(audio, out):
    """``out[i, c] = clip(rint(audio[c, i] * 32768), -32768, 32767)``, as NumPy's float32 passes give it.

    Each block of samples is converted channel by channel (SIMD loops along the rows), then
    interleaved into ``out``: about 0.7 ms for 8 channels of 160,000 samples against 1.0 ms for one
    loop that converts in ``out``'s order.

    Parameters
    ----------
    audio : float32 array [shape=(channels, n)]
        Samples in [-1, 1].
    out : int16 array [shape=(n, channels)]
        Written in place.
    """
    scale = np.float32(32768.0)
    lo, hi = np.float32(-32768.0), np.float32(32767.0)
    n_channels, n = audio.shape
    block = np.empty((n_channels, _PCM_BLOCK), dtype=np.int16)
    for b0 in range(0, n, _PCM_BLOCK):
        width = min(_PCM_BLOCK, n - b0)
        for c in range(n_channels):
            row = audio[c, b0 : b0 + width]
            for j in range(width):
                q = np.rint(row[j] * scale)
                block[c, j] = np.int16(min(max(q, lo), hi))
        for j in range(width):
            for c in range(n_channels):
                out[b0 + j, c] = block[c, j]


@numba.njit(nogil=True, cache=True)
def add_scaled(out, x, scale):
    """``out += x * scale`` as NumPy gives ``np.add(out, x * scale, out=out, casting="same_kind")``.

    The product and the sum in float64 (``x``'s and ``scale``'s precision), rounded once to ``out``'s
    dtype, in one pass and without a temporary.

    Parameters
    ----------
    out : float32 array [shape=(n,)]
        Added to in place.
    x : float64 array [shape=(n,)]
    scale : float
    """
    for i in range(out.size):
        out[i] = out[i] + x[i] * scale


@numba.njit(nogil=True, cache=True)
def mix_scaled(machine, machine_gain, background, background_gain, anomaly, anomaly_gain, with_anomaly, out):
    """The clip's mixture and its peak, in one pass over the three parts.

    ``out = machine * machine_gain + background * background_gain`` or, with an anomaly,
    ``out = (machine * machine_gain + anomaly * anomaly_gain) + background * background_gain``: NumPy's
    float32 arithmetic, operation for operation (the parts scaled in place, then ``m + a``, then
    ``+= b``). The parts are not changed.

    Parameters
    ----------
    machine, background, anomaly : float32 arrays [shape=(channels, n)]
        The parts (``anomaly`` is ignored unless ``with_anomaly``).
    machine_gain, background_gain, anomaly_gain : float32
    with_anomaly : bool
    out : float32 array [shape=(channels, n)]
        Written in place.

    Returns
    -------
    float
        ``max(out.max(), -out.min())``, NaN if ``out`` holds a NaN.
    """
    hi, lo, finite = -np.inf, np.inf, True
    n_channels, n = out.shape
    for c in range(n_channels):
        m, b, a, dst = machine[c], background[c], anomaly[c], out[c]
        for i in range(n):
            v = m[i] * machine_gain
            if with_anomaly:
                v = v + a[i] * anomaly_gain
            v = v + b[i] * background_gain
            dst[i] = v
            hi, lo = max(hi, v), min(lo, v)
            finite = finite and v == v
    if not finite:
        return np.nan
    return max(hi, -lo)


@numba.njit(nogil=True, cache=True)
def interp(x, xp, fp, out):
    """``out[:] = np.interp(x, xp, fp)`` for ascending ``x`` and strictly increasing ``xp``, bit for bit.

    NumPy's ``arr_interp``: ``fp[0]`` left of ``xp[0]``, ``fp[-1]`` from ``xp[-1]`` on, ``fp[j]`` at
    ``xp[j]``, and between ``slope * (x - xp[j]) + fp[j]`` with
    ``slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])``. It goes through the knots' intervals in
    turn, each in one loop without a search.

    Parameters
    ----------
    x : float64 array [shape=(n,)]
        Where to interpolate, in ascending order.
    xp, fp : float64 arrays [shape=(m,)], m >= 1
        The knots, strictly increasing, and their values.
    out : float64 array [shape=(n,)]
        Written in place.
    """
    n, m, i = x.size, xp.size, 0
    while i < n and x[i] < xp[0]:
        out[i] = fp[0]
        i += 1
    for j in range(m - 1):
        x0, x1, f0 = xp[j], xp[j + 1], fp[j]
        slope = (fp[j + 1] - f0) / (x1 - x0)
        end = i
        while end < n and x[end] < x1:
            end += 1
        for k in range(i, end):
            v = x[k]
            out[k] = f0 if v == x0 else slope * (v - x0) + f0
        i = end
    for k in range(i, n):
        out[k] = fp[m - 1]


@numba.njit(nogil=True, cache=True)
def _standard_normal(rng, out):
    """Fill the float64 array ``out`` with draws of ``rng.standard_normal()``, in order.

    numba's port of NumPy's ziggurat: the same numbers, and ``rng`` (a ``np.random.Generator``) ends in
    the same state as after ``rng.standard_normal(out=out)``.
    """
    for i in range(out.size):
        out[i] = rng.standard_normal()


#: NumPy's PCG64 multiplier (``PCG_DEFAULT_MULTIPLIER_128``), as (high, low) 64-bit halves.
_PCG64_MULTIPLIER = (np.uint64(0x2360ED051FC65DA4), np.uint64(0x4385DF649FCCF645))


@numba.njit(nogil=True, cache=True)
def _pcg64_words(state_hi, state_lo, inc_hi, inc_lo, out):
    """Fill ``out`` with NumPy's PCG64 ``next_uint64`` words from the 128-bit ``state`` and ``inc``.

    Each word: ``state = state * multiplier + inc`` (modulo 2**128), then the XSL-RR output of the new
    state, ``rotr64(high ^ low, high >> 58)``. Returns the state after the last word, as (high, low).
    """
    m_hi, m_lo = _PCG64_MULTIPLIER
    for i in range(out.size):
        state_hi, state_lo = _muladd128(state_hi, state_lo, m_hi, m_lo, inc_hi, inc_lo)
        x = state_hi ^ state_lo
        r = state_hi >> np.uint64(58)
        out[i] = (x >> r) | (x << ((np.uint64(64) - r) & np.uint64(63)))
    return state_hi, state_lo


def _halves(value: int) -> tuple[np.uint64, np.uint64]:
    return np.uint64(value >> 64), np.uint64(value & 0xFFFFFFFFFFFFFFFF)


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
    bit_generator = rng.bit_generator
    if type(bit_generator) is not np.random.PCG64:
        _ziggurat_blocks(flat, bit_generator.random_raw)
        return
    with bit_generator.lock:  # NumPy's own methods take it too
        full = bit_generator.state
        state, inc = _halves(full["state"]["state"]), _halves(full["state"]["inc"])
        block = np.empty(min(flat.size, _RAW_BLOCK), dtype=np.uint64)

        def words(n: int) -> np.ndarray:
            nonlocal state
            state = tuple(np.uint64(half) for half in _pcg64_words(*state, *inc, block[:n]))
            return block[:n]

        _ziggurat_blocks(flat, words)
        full["state"]["state"] = (int(state[0]) << 64) | int(state[1])
        bit_generator.state = full


def _ziggurat_blocks(out: np.ndarray, words) -> None:
    """Fill the float64 array ``out`` with :func:`_ziggurat`'s draws from ``words(n)``, n words at a time."""
    state = (0, 0, 0.0, 0, 0, 0.0)
    while state[0] < out.size:
        # Every draw still to make takes at least one word, so this never takes a word too many.
        state = _ziggurat(words(min(out.size - state[0], _RAW_BLOCK)), out, *state)


def load() -> None:
    """Compile the simulator's kernels, or load them from numba's cache (about 0.27 s, once per process).

    :func:`~asdlib.simulate.simulate_dataset` calls it before it starts its worker processes: forked
    workers inherit the compiled code instead of each loading it again.
    """
    one, part = np.zeros((1, 1), dtype=np.complex64), np.zeros((1, 1, 1), dtype=np.float32)
    _mix_sources(one, part, part, one[None], False, np.empty_like(one))
    standard_normal(np.random.default_rng(0), np.empty(1))  # the simulator's PCG64: _ziggurat, not the fallback
    z = np.zeros(1, dtype=np.float32)
    harmonic_sum(z, z, z, z, np.empty(1))
    pcm16(z[None], np.empty((1, 1), dtype=np.int16))
    add_scaled(z, np.zeros(1), 1.0)
    mix_scaled(z[None], z[0], z[None], z[0], z[None], z[0], False, np.empty((1, 1), dtype=np.float32))
    interp(np.zeros(1), np.zeros(1), np.zeros(1), np.empty(1))
    wrap_phase(np.zeros(1), z)
