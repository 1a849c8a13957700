"""The simulator: exact propagation delays (GCC-PHAT), SNR, additive anomalies, SNR twins, determinism,
the fast path against a double-precision reference, files, CLI."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from scipy import fft as sfft

from asdlib import simulate as sim

SR = sim.SR


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def gcc_phat_delay(x: np.ndarray, y: np.ndarray, max_lag: float = 8.0, upsample: int = 64) -> float:
    """Delay of ``x`` relative to ``y`` in samples (positive: x lags), from the GCC-PHAT peak.

    The cross-spectrum is whitened, zero-padded (band-limited interpolation, ``upsample`` points per
    sample) and the peak refined with a parabola through its three highest points.
    """
    n = 2 * len(x)  # linear, not circular, correlation
    cross = sfft.rfft(x, n) * np.conj(sfft.rfft(y, n))
    cross /= np.maximum(np.abs(cross), 1e-12)
    cc = sfft.irfft(cross, n * upsample)
    half = int(max_lag * upsample)
    window = np.r_[cc[-half:], cc[: half + 1]]  # lags -max_lag .. +max_lag
    k = int(np.argmax(window))
    a, b, c = window[k - 1], window[k], window[k + 1]
    peak = k + 0.5 * (a - c) / (a - 2 * b + c)
    return (peak - half) / upsample


def geometric_delay(position, i: int, j: int) -> float:
    """Delay of microphone ``i`` relative to ``j`` (samples) for a point source."""
    d = sim.propagation_delays(np.asarray(position)[None], sim.MIC_POSITIONS)[0] * SR
    return d[i] - d[j]


def padded_noise_at_mics(position, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """White noise from ``position`` at the 8 microphones, simulated with padding and cropped."""
    n, pad = int(seconds * SR), 256
    x = np.random.default_rng(seed).standard_normal(n + 2 * pad)
    return sim.propagate(x, position)[:, pad:-pad]


def db(x: np.ndarray) -> float:
    return 10 * np.log10(np.mean(np.asarray(x, dtype=float) ** 2))


# ---------------------------------------------------------------------------------------------
# geometry and propagation
# ---------------------------------------------------------------------------------------------
def test_array_geometry():
    pos = sim.MIC_POSITIONS
    assert pos.shape == (8, 3)
    np.testing.assert_allclose(np.linalg.norm(pos, axis=1), 0.0365)
    np.testing.assert_allclose(np.rad2deg(np.arctan2(pos[:, 1], pos[:, 0])) % 360, 45.0 * np.arange(8), atol=1e-9)
    for m in range(4):  # opposite pairs are a diameter apart
        assert np.linalg.norm(pos[m] - pos[m + 4]) == pytest.approx(0.073)
    np.testing.assert_allclose(sim.mic_positions(0.05)[2], [0.0, 0.05, 0.0], atol=1e-12)


def test_units_stand_where_mimii_put_them():
    for (machine, mid), unit in sim.UNITS.items():
        expected = 0.1 if machine == "valve" else 0.5
        assert np.linalg.norm(unit.position) == pytest.approx(expected), (machine, mid)
    assert {m for m, _ in sim.UNITS} == set(sim.MACHINES) and {i for _, i in sim.UNITS} == set(sim.MACHINE_IDS)


@pytest.mark.parametrize("position", [(0.3, 0.4, 0.1), (-0.05, 0.09, 0.0), (2.0, -3.0, 1.0)])
def test_gcc_phat_delay_matches_geometry(position):
    """Near (valve-like 10 cm), mid and far sources: measured TDOAs equal the geometric ones."""
    x = padded_noise_at_mics(position)
    for i, j in [(0, 4), (2, 6), (1, 5), (3, 7), (0, 1), (5, 2)]:
        measured = gcc_phat_delay(x[i], x[j])
        assert measured == pytest.approx(geometric_delay(position, i, j), abs=0.02), (i, j)


def test_source_on_the_0_4_axis_gives_pair_0_4_the_largest_delay():
    position = (0.5, 0.0, 0.0)
    x = padded_noise_at_mics(position)
    delays = {(i, j): gcc_phat_delay(x[i], x[j]) for i, j in itertools.combinations(range(8), 2)}
    assert max(delays, key=lambda p: abs(delays[p])) == (0, 4)
    # mic 4 is farther: it hears the source ~3.3 samples after mic 0 (2R/c at 16 kHz, near field)
    assert delays[0, 4] == pytest.approx(geometric_delay(position, 0, 4), abs=0.02)
    assert -3.45 < delays[0, 4] < -3.2
    assert abs(delays[2, 6]) < 0.02  # broadside pair: equal distances


def test_spherical_spreading():
    """Amplitude falls as 1/r: at 10 cm the near microphone is louder by the ratio of distances."""
    position = np.array([0.1, 0.0, 0.0])
    x = padded_noise_at_mics(position)
    r = np.linalg.norm(position - sim.MIC_POSITIONS, axis=1)
    assert np.sqrt(np.mean(x[0] ** 2) / np.mean(x[4] ** 2)) == pytest.approx(r[4] / r[0], rel=1e-3)


def test_simulated_spatial_anomaly_comes_from_its_reported_position():
    """The whole clip path (padding, fades, cropping) keeps exact delays: GCC-PHAT on the anomaly's part."""
    _, info, parts = sim.simulate_clip("fan", 2, snr_db=np.inf, anomaly="spatial", anomaly_type="leak", seed=7,
                                       duration_s=1.0, return_sources=True)
    leak = parts["anomaly"].astype(float)
    position = info["anomaly"]["position"]
    for i, j in [(0, 4), (2, 6), (1, 5), (3, 7)]:
        assert gcc_phat_delay(leak[i], leak[j]) == pytest.approx(geometric_delay(position, i, j), abs=0.05), (i, j)
    assert not np.any(parts["background"])  # snr_db = inf: no background at all


def test_anomaly_position_override_moves_only_the_anomaly():
    """A chosen position: the anomaly's delays follow it, and the machine and background stay the same."""
    kwargs = dict(snr_db=0.0, anomaly="spatial", anomaly_type="leak", seed=7, duration_s=1.0, return_sources=True)
    _, drawn_info, drawn = sim.simulate_clip("fan", 2, **kwargs)
    position = (0.0, -0.4, 0.0)  # on the 2-6 axis, behind microphone 6
    _, info, moved = sim.simulate_clip("fan", 2, anomaly_position=position, **kwargs)
    np.testing.assert_array_equal(info["anomaly"]["position"], position)
    assert not np.allclose(drawn_info["anomaly"]["position"], position)
    np.testing.assert_array_equal(moved["machine"], drawn["machine"])
    np.testing.assert_array_equal(moved["background"], drawn["background"])
    leak = moved["anomaly"].astype(float)
    assert gcc_phat_delay(leak[2], leak[6]) == pytest.approx(geometric_delay(position, 2, 6), abs=0.05)
    assert abs(gcc_phat_delay(leak[0], leak[4])) < 0.05  # broadside to 0-4
    with pytest.raises(ValueError, match="spatial anomalies only"):
        sim.simulate_clip("fan", 2, anomaly="spectral", anomaly_position=position, seed=1, duration_s=0.5)
    with pytest.raises(ValueError, match="three finite coordinates"):
        sim.simulate_clip("fan", 2, anomaly="spatial", anomaly_position=(0.1, np.nan, 0.0), seed=1, duration_s=0.5)


# ---------------------------------------------------------------------------------------------
# mixing: SNR, anomalies
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("machine", sim.MACHINES)
@pytest.mark.parametrize("snr", [-6.0, 0.0, 6.0])
def test_measured_snr_equals_requested(machine, snr):
    audio, info, parts = sim.simulate_clip(machine, 4, snr_db=snr, seed=3, duration_s=1.0, return_sources=True)
    assert db(parts["machine"]) - db(parts["background"]) == pytest.approx(snr, abs=0.01)
    np.testing.assert_allclose(audio, parts["machine"] + parts["anomaly"] + parts["background"], atol=1e-6)
    assert 0 < info["peak"] < 1


@pytest.mark.parametrize("machine", sim.MACHINES)
@pytest.mark.parametrize("kind", sim.ANOMALY_KINDS)
def test_abnormal_clip_is_the_normal_one_plus_the_anomaly(machine, kind):
    kw = dict(snr_db=0.0, seed=11, duration_s=1.0, return_sources=True)
    normal, _, pn = sim.simulate_clip(machine, 0, **kw)
    abnormal, info, pa = sim.simulate_clip(machine, 0, anomaly=kind, **kw)
    np.testing.assert_array_equal(pa["machine"], pn["machine"])
    np.testing.assert_array_equal(pa["background"], pn["background"])  # same noise gain: the normal clip's
    assert np.sqrt(np.mean(pa["anomaly"] ** 2)) > 1e-4 * np.sqrt(np.mean(pn["machine"] ** 2))
    np.testing.assert_allclose(abnormal - normal, pa["anomaly"], atol=2e-7)
    # the anomaly is mixed at its reported level relative to the normal machine sound
    assert db(pa["anomaly"]) - db(pa["machine"]) == pytest.approx(info["anomaly"]["level_db"], abs=0.01)
    assert info["anomaly"]["type"] in sim.anomaly_types(machine, kind)


def test_anomaly_strength_scales_only_the_anomaly():
    kw = dict(anomaly="spectral", seed=5, duration_s=1.0, return_sources=True)
    _, info1, weak = sim.simulate_clip("pump", 2, anomaly_strength=-20.0, **kw)
    _, info2, strong = sim.simulate_clip("pump", 2, anomaly_strength=-10.0, **kw)
    assert info2["anomaly"]["level_db"] - info1["anomaly"]["level_db"] == pytest.approx(10.0)
    np.testing.assert_allclose(strong["anomaly"], weak["anomaly"] * np.sqrt(10.0), rtol=1e-4, atol=1e-9)
    np.testing.assert_array_equal(strong["machine"], weak["machine"])


@pytest.mark.parametrize("machine", sim.MACHINES)
def test_anomaly_positions(machine):
    for seed in range(6):
        for mid in sim.MACHINE_IDS:
            unit = sim.UNITS[machine, mid]
            spectral = sim.clip_layout(machine, mid, seed=seed, anomaly="spectral")["anomaly"]
            np.testing.assert_array_equal(spectral["position"], unit.position)
            spatial = sim.clip_layout(machine, mid, seed=seed, anomaly="spatial")["anomaly"]
            offset = np.linalg.norm(spatial["position"] - unit.position)
            assert 0.15 - 1e-9 <= offset <= 0.30 + 1e-9
            az = lambda p: np.arctan2(p[1], p[0])  # noqa: E731
            assert abs(np.angle(np.exp(1j * (az(spatial["position"]) - az(unit.position))))) > np.deg2rad(10)
            for part in unit.component_positions().values():
                assert np.linalg.norm(spatial["position"] - part) >= 0.1 - 1e-9
    _, info = sim.simulate_clip(machine, 0, anomaly="spatial", seed=2, duration_s=0.25)
    assert np.linalg.norm(info["anomaly"]["position"] - info["machine_position"]) >= 0.15 - 1e-9


def test_background_sources_are_far_and_in_several_directions():
    layout = sim.clip_layout("fan", 0, seed=9)["background"]
    assert len(layout) >= 4
    positions = np.array([b["position"] for b in layout])
    assert np.all((np.linalg.norm(positions, axis=1) >= 2.0) & (np.linalg.norm(positions, axis=1) <= 5.0))
    azimuths = np.sort(np.rad2deg(np.arctan2(positions[:, 1], positions[:, 0])) % 360)
    assert np.min(np.diff(np.r_[azimuths, azimuths[0] + 360])) > 10  # no two sources from the same side


def test_no_clipping_at_the_loudest_mimii_level():
    for machine in sim.MACHINES:
        for kind in (None, *sim.ANOMALY_KINDS):
            _, info = sim.simulate_clip(machine, 6, snr_db=-6.0, anomaly=kind, seed=1, duration_s=2.0)
            assert info["peak"] < 0.5, (machine, kind, info["peak"])


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown machine 'drill'"):
        sim.simulate_clip("drill", 0, seed=0)
    with pytest.raises(ValueError, match="machine id 3"):
        sim.simulate_clip("fan", 3, seed=0)
    with pytest.raises(ValueError, match="anomaly must be"):
        sim.simulate_clip("fan", 0, seed=0, anomaly="loud")
    with pytest.raises(ValueError, match="not a spatial anomaly of fan"):
        sim.simulate_clip("fan", 0, seed=0, anomaly="spatial", anomaly_type="imbalance")


def test_anomaly_makes_a_clip_more_anomalous_by_construction():
    """Issue 16: same seed, normal vs abnormal. The machine and background components are identical,
    the background gain comes from the normal machine power only, the anomaly is added at its
    documented level, and the mixture is exactly machine + anomaly + background."""
    for machine, kind, seed in [("pump", "spectral", 3), ("fan", "spatial", 4), ("valve", "spectral", 8), ("slider", "spatial", 9)]:
        kw = dict(snr_db=-6.0, seed=seed, duration_s=1.0, return_sources=True)
        normal, info_n, pn = sim.simulate_clip(machine, 2, **kw)
        abnormal, info_a, pa = sim.simulate_clip(machine, 2, anomaly=kind, **kw)
        np.testing.assert_array_equal(pa["machine"], pn["machine"])
        np.testing.assert_array_equal(pa["background"], pn["background"])
        assert info_a["noise_gain"] == info_n["noise_gain"]
        assert info_a["background_power"] == info_n["background_power"]
        level = info_a["anomaly"]["level_db"]
        offset = sim.ANOMALY_OFFSET_DB[machine, kind, info_a["anomaly"]["type"]]
        assert abs(level - (sim.DEFAULT_ANOMALY_STRENGTH + offset)) <= sim.ANOMALY_JITTER_DB
        assert db(pa["anomaly"]) - db(pa["machine"]) == pytest.approx(level, abs=0.01)
        assert info_a["anomaly_power"] / info_a["machine_power"] == pytest.approx(10 ** (level / 10), rel=1e-3)
        np.testing.assert_allclose(abnormal, pa["machine"] + pa["anomaly"] + pa["background"], atol=1e-6)
        assert not np.any(pn["anomaly"])
        # measured SNR of the abnormal clip's normal part is the requested one
        assert db(pa["machine"]) - db(pa["background"]) == pytest.approx(-6.0, abs=0.01)


def test_bad_anomaly_strength_is_refused_naming_the_field(tmp_path):
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match="anomaly_strength must be a finite number"):
            sim.simulate_clip("fan", 0, seed=0, anomaly="spectral", anomaly_strength=bad, duration_s=0.25)
        with pytest.raises(ValueError, match="anomaly_strength"):
            sim.clip_layout("fan", 0, seed=0, anomaly="spatial", anomaly_strength=bad)
        with pytest.raises(ValueError, match="anomaly_strength"):
            sim.simulate_dataset(tmp_path / "x", machines=("fan",), n_normal=1, n_abnormal=1, anomaly_strength=bad, progress=False)
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------------------------------------
# SNR twins (issue 15): one recording in every SNR folder, as in MIMII
# ---------------------------------------------------------------------------------------------
def test_snr_folders_of_one_recording_share_machine_and_anomaly():
    """Same (machine, id, label, index) at two SNRs: identical machine and anomaly, different background."""
    args = (4, "pump", 2, "abnormal", 3)
    seed = sim.recording_seed(*args)
    lo_bg, hi_bg = sim.clip_seed(4, "pump", 2, -6.0, "abnormal", 3), sim.clip_seed(4, "pump", 2, 6.0, "abnormal", 3)
    assert lo_bg != hi_bg and seed not in (lo_bg, hi_bg)
    assert sim.recording_seed(4, "pump", 2, "normal", 3) != seed and sim.recording_seed(4, "pump", 2, "abnormal", 4) != seed
    kw = dict(anomaly="spectral", seed=seed, duration_s=0.5, return_sources=True)
    lo, lo_info, lo_parts = sim.simulate_clip("pump", 2, snr_db=-6.0, background_seed=lo_bg, **kw)
    hi, hi_info, hi_parts = sim.simulate_clip("pump", 2, snr_db=6.0, background_seed=hi_bg, **kw)
    np.testing.assert_array_equal(lo_parts["machine"], hi_parts["machine"])
    np.testing.assert_array_equal(lo_parts["anomaly"], hi_parts["anomaly"])
    assert lo_info["anomaly"]["type"] == hi_info["anomaly"]["type"]
    # different background realisations (not just another gain): correlation far from 1
    a, b = lo_parts["background"].ravel(), hi_parts["background"].ravel()
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.5
    assert db(lo_parts["background"]) - db(hi_parts["background"]) == pytest.approx(12.0, abs=0.02)
    assert lo_info["background"][0]["position"].tolist() != hi_info["background"][0]["position"].tolist()


def test_dataset_twins_on_disk(small_set):
    """The data set's -6 and 6 dB folders hold the same recordings: same seed, other background seed, and
    the difference of the two WAVs is background only (it equals the difference of the backgrounds)."""
    root, meta = small_set
    row_lo = meta[(meta.snr_db == -6) & (meta.label == "abnormal") & (meta.machine == "fan")].iloc[0]
    twin_path = "6_dB_" + row_lo.path.split("_dB_", 1)[1]
    row_hi = meta.set_index("path").loc[twin_path]
    assert row_hi.seed == row_lo.seed and row_hi.background_seed != row_lo.background_seed
    assert row_hi.anomaly_type == row_lo.anomaly_type and row_hi.anomaly_x == row_lo.anomaly_x
    parts = {}
    for snr, row in ((-6.0, row_lo), (6.0, row_hi)):
        _, _, parts[snr] = sim.simulate_clip("fan", int(row.machine_id[3:]), snr_db=snr, anomaly=row.anomaly_kind,
                                             seed=int(row.seed), background_seed=int(row.background_seed),
                                             duration_s=0.25, return_sources=True)
    lo, _ = sf.read(str(root / row_lo.path), dtype="float32")
    hi, _ = sf.read(str(root / twin_path), dtype="float32")
    np.testing.assert_allclose(lo.T - hi.T, parts[-6.0]["background"] - parts[6.0]["background"], atol=2.0 / 32768)


# ---------------------------------------------------------------------------------------------
# the fast path (issue 13) is the same signal as a double-precision, one-source-at-a-time reference
# ---------------------------------------------------------------------------------------------
def _ref_harmonics(rng, phase, amps, f_max, sr):
    """The pre-issue-13 harmonic sum: a complex power per harmonic, double precision."""
    z = np.exp(1j * phase)
    zk = z.copy()
    out = np.zeros(phase.shape)
    for k, a in enumerate(amps, start=1):
        if k * f_max >= 0.45 * sr:
            break
        if a:
            out += a * (zk * np.exp(1j * rng.uniform(0.0, 2.0 * np.pi))).imag
        zk *= z
    return out


def _ref_noise(rng, n, sr, shape=None):
    """The pre-issue-13 shaped noise, double precision."""
    n_bins = n // 2 + 1
    spectrum = rng.standard_normal(n_bins) + 1j * rng.standard_normal(n_bins)
    if shape is not None:
        spectrum = spectrum * shape
    spectrum[0] = 0.0
    x = sfft.irfft(spectrum, n=n)
    return x / max(np.sqrt(np.mean(x**2)), 1e-12)


def _ref_noise_spectrum(rng, n, shape=None):
    """The spectrum of :func:`_ref_noise`, double precision (for the background's batched noises)."""
    n_bins = n // 2 + 1
    spectrum = rng.standard_normal(n_bins) + 1j * rng.standard_normal(n_bins)
    if shape is not None:
        spectrum = spectrum * shape
    spectrum[0] = 0.0
    return spectrum


def _ref_noises(spectra, n):
    """Each row transformed alone and normalised, double precision."""
    out = []
    for spectrum in spectra:
        x = sfft.irfft(np.asarray(spectrum, dtype=complex), n=n)
        out.append(x / max(np.sqrt(np.mean(x**2)), 1e-12))
    return out


def _ref_train(starts, amps, kernel, n):
    """Impulse train convolved by FFT (the pre-issue-13 way)."""
    from scipy.signal import fftconvolve

    n_k = kernel.size
    train = np.zeros(n + n_k)
    np.add.at(train, starts + n_k, amps)
    return fftconvolve(train, kernel)[n_k : n_k + n]


def _ref_render(signals, positions, n_total, n_out, sr):
    """Double precision, one source at a time, each delay as a direct ``exp`` over all bins."""
    from asdlib.simulate import clip

    if not signals:
        return np.zeros((8, n_out))
    w = clip._fade(n_total)
    k = np.arange(n_total // 2 + 1)
    out = np.zeros((8, k.size), dtype=complex)
    for x, p in zip(signals, positions):
        spectrum = sfft.rfft(np.asarray(x, dtype=float) * w)
        spectrum[-1] = 0.0 if n_total % 2 == 0 else spectrum[-1]
        dist = np.linalg.norm(np.asarray(p) - sim.MIC_POSITIONS, axis=1)
        delay = (dist - np.linalg.norm(p)) / sim.SPEED_OF_SOUND * sr
        out += spectrum * np.exp(-2j * np.pi * k * delay[:, None] / n_total) / dist[:, None]
    return sfft.irfft(out, n=n_total, axis=-1)[:, clip._PAD : clip._PAD + n_out]


@pytest.fixture
def reference_path(monkeypatch):
    """Swap the fast kernels for the double-precision reference ones, wherever they are looked up."""
    from asdlib.simulate import anomalies, clip, machines, signals

    def use():
        for module in (signals, machines, anomalies):
            if hasattr(module, "_harmonics"):
                monkeypatch.setattr(module, "_harmonics", _ref_harmonics)
            if hasattr(module, "_noise"):
                monkeypatch.setattr(module, "_noise", _ref_noise)
            for name, ref in (("_noise_spectrum", _ref_noise_spectrum), ("_noises", _ref_noises)):
                if hasattr(module, name):
                    monkeypatch.setattr(module, name, ref)
        monkeypatch.setattr(signals, "_impulse_train_convolve", _ref_train)
        monkeypatch.setattr(clip, "_render", lambda groups, *args: [_ref_render(s, p, *args) for s, p in groups])

    return use


@pytest.mark.parametrize("machine", sim.MACHINES)
def test_fast_path_is_the_reference_signal(machine, reference_path):
    """Every component of normal and abnormal clips agrees with the reference to ~1e-6 of its RMS
    (float32 rounding), far below the 16-bit output's quantisation; the levels agree to 1e-4 dB."""
    cases = [(None, 1), ("spectral", 2), ("spatial", 3), ("spectral", 4), ("spatial", 5)]
    fast = [sim.simulate_clip(machine, 2 * (i % 4), snr_db=0.0, anomaly=a, seed=s, duration_s=1.0, return_sources=True)
            for i, (a, s) in enumerate(cases)]
    reference_path()
    for i, (a, s) in enumerate(cases):
        _, info_f, parts_f = fast[i]
        _, info_r, parts_r = sim.simulate_clip(machine, 2 * (i % 4), snr_db=0.0, anomaly=a, seed=s, duration_s=1.0,
                                               return_sources=True)
        assert info_f["anomaly"]["type"] == info_r["anomaly"]["type"]
        for name, ref in parts_r.items():
            ref = np.asarray(ref, dtype=float)
            rms = np.sqrt(np.mean(ref**2))
            if rms == 0:
                assert not np.any(parts_f[name]), name
                continue
            err = np.sqrt(np.mean((parts_f[name] - ref) ** 2)) / rms
            assert err < 1e-5, (machine, a, s, name, err)
        assert info_f["noise_gain"] == pytest.approx(info_r["noise_gain"], rel=1e-5)


def test_background_noises_in_one_batch_are_the_signals_drawn_one_at_a_time():
    """simulate_clip transforms the noises of all background sources in one irfft; each source's signal
    (and the generator's state after them) is what drawing and transforming it alone gives."""
    from asdlib.simulate import machines, signals

    def background(kinds, rng, t):
        return [signal() for signal in machines._background_draws(kinds, rng, t, sim.SR, signals._NoiseBatch(t.size))]

    kinds = [kind for kind, *_ in machines.BACKGROUND_SOURCES]
    t = (np.arange(8000) - 256) / sim.SR
    batch_rng, alone_rng = np.random.default_rng(7), np.random.default_rng(7)
    batch = background(kinds, batch_rng, t)
    alone = [background([kind], alone_rng, t)[0] for kind in kinds]
    for kind, x, y in zip(kinds, batch, alone):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6 * np.sqrt(np.mean(y**2)), err_msg=kind)
    assert batch_rng.random() == alone_rng.random()


def test_noise_spectrum_is_its_real_then_imaginary_draws():
    """One draw of 2 x n_bins normals is the two draws of n_bins each (real parts, then imaginary)."""
    from asdlib.simulate import signals

    shape = np.linspace(0.0, 2.0, 2001)
    got_rng, ref_rng = np.random.default_rng(9), np.random.default_rng(9)
    got = signals._noise_spectrum(got_rng, 4000, shape)
    real, imag = ref_rng.standard_normal(2001), ref_rng.standard_normal(2001)
    ref = (real.astype(np.float32) + 1j * imag.astype(np.float32)).astype(np.complex64) * shape.astype(np.float32)
    ref[0] = 0.0
    assert got.dtype == np.complex64 and np.array_equal(got, ref)
    assert got_rng.random() == ref_rng.random()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_padded_for_simd_transform_to_the_spectra_of_each_row_alone(dtype):
    """_rfft_rows pads 2 or 3 trailing rows to 4 (pocketfft's SIMD width): every row's spectrum is
    bit for bit the one a transform of that row alone gives, so padding changes no clip."""
    from asdlib.simulate.propagation import _rfft_rows

    x = np.random.default_rng(3).standard_normal((9, 1620)).astype(dtype)
    alone = np.stack([sfft.rfft(row) for row in x])
    for n_rows in range(1, 10):
        batch = _rfft_rows(x[:n_rows])
        assert batch.shape == (n_rows, 811)
        assert np.array_equal(batch, alone[:n_rows]), n_rows


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_inverse_rows_padded_for_simd_transform_to_the_signals_of_each_row_alone(dtype):
    """_irfft_rows pads as _rfft_rows does: every row's signal is bit for bit the one an inverse
    transform of that row alone gives, for even and odd lengths."""
    from asdlib.simulate.propagation import _irfft_rows

    rng = np.random.default_rng(4)
    for n in (1620, 1621):
        spectra = (rng.standard_normal((9, n // 2 + 1)) + 1j * rng.standard_normal((9, n // 2 + 1))).astype(dtype)
        alone = np.stack([sfft.irfft(row, n=n) for row in spectra])
        for n_rows in range(1, 10):
            batch = _irfft_rows(spectra[:n_rows].copy(), n)
            assert batch.shape == (n_rows, n)
            assert np.array_equal(batch, alone[:n_rows]), (n, n_rows)


def test_noise_batch_gives_each_noise_as_drawn_and_transformed_alone():
    """_NoiseBatch: queued spectra and the next noise drawn through it come out bit for bit as
    _noises of each row alone and as _noise; the generator is where _noise leaves it."""
    from asdlib.simulate import signals

    n, sr = 3000, sim.SR
    f = signals._freqs(n, sr)
    shapes = [signals._pink(f), signals._band(f, 100.0, 2000.0), None]
    queued = [signals._noise_spectrum(np.random.default_rng(i), n, shape) for i, shape in enumerate(shapes)]
    alone = [signals._noises(x[None, :].copy(), n)[0] for x in queued]
    batch = signals._NoiseBatch(n)
    handles = [batch.add(x.copy()) for x in queued]
    rng_batch, rng_alone = np.random.default_rng(9), np.random.default_rng(9)
    first = batch.noise(rng_batch, n, sr, shapes[1])
    assert np.array_equal(first, signals._noise(rng_alone, n, sr, shapes[1]))
    for handle, expected in zip(handles, alone):
        assert np.array_equal(batch.signal(handle), expected)
    second = batch.noise(rng_batch, n, sr)  # nothing queued any more: transformed alone
    assert np.array_equal(second, signals._noise(rng_alone, n, sr))
    assert rng_batch.random() == rng_alone.random()


@pytest.mark.parametrize("machine", sim.MACHINES)
def test_machine_noise_batched_with_the_background_is_the_models_own(machine):
    """simulate_clip hands the machine model a _NoiseBatch's noise (its first noise is transformed
    with the background's): the model's parts are bit for bit those it makes with plain _noise."""
    from asdlib.simulate import clip, machines, signals

    u = machines._unit(machine, 2)
    t = (np.arange(4000) - 256) / sim.SR
    plain = machines.MODELS[machine](u, clip._stream(5, 0), t, sim.SR)
    batch = signals._NoiseBatch(t.size)
    draws = machines._background_draws([kind for kind, *_ in machines.BACKGROUND_SOURCES], np.random.default_rng(1), t, sim.SR, batch)
    batched = machines.MODELS[machine](u, clip._stream(5, 0), t, sim.SR, noise=batch.noise)
    assert plain.parts.keys() == batched.parts.keys()
    for name in plain.parts:
        assert np.array_equal(plain.parts[name], batched.parts[name]), name
    assert all(x is not None for x in batch._signals), "the background's queued noises were transformed with the machine's"
    assert len(draws) == len(machines.BACKGROUND_SOURCES)


def test_propagate_spectra_single_precision_matches_double():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4000))
    pos = np.array([[0.4, 0.1, 0.0], [-2.0, 3.0, 1.0], [0.05, -0.08, 0.01]])
    double = sim.propagate_spectra(x, pos)
    single = sim.propagate_spectra(x.astype(np.float32), pos)
    assert single.dtype == np.complex64 and double.dtype == np.complex128
    assert np.max(np.abs(single - double)) < 1e-5 * np.max(np.abs(double))


def _numpy_mix_at_mics(spectra, delays, dist, n):
    """The propagation's sum over sources as NumPy passes (the code before the compiled kernel)."""
    from asdlib.simulate.propagation import _BLOCK, _ramp_factors

    n_src, n_bins = spectra.shape
    n_blocks = -(-n_bins // _BLOCK)
    padded = np.zeros((n_src, n_blocks * _BLOCK), dtype=spectra.dtype)
    padded[:, :n_bins] = spectra
    if n % 2 == 0:
        padded[:, n_bins - 1] = 0.0
    padded = padded.reshape(n_src, n_blocks, _BLOCK)
    out = np.empty((dist.shape[1], n_blocks, _BLOCK), dtype=spectra.dtype)
    tmp = np.empty_like(out)
    for s in range(n_src):
        fine, coarse = _ramp_factors(delays[s], n)
        fine = fine.astype(spectra.dtype)[:, None, :]
        coarse = (coarse / dist[s][:, None]).astype(spectra.dtype)[:, :, None]
        np.multiply(fine, padded[s, None], out=tmp if s else out)
        (tmp if s else out)[...] *= coarse
        if s:
            out += tmp
    return out.reshape(dist.shape[1], -1)[:, :n_bins]


def _numpy_multiplies_complex_with_fma() -> bool:
    x = np.random.default_rng(1).standard_normal((4, 4096)).astype(np.float32)
    a, b = (x[0] + 1j * x[1]).astype(np.complex64), (x[2] + 1j * x[3]).astype(np.complex64)
    fma_real = (a.real.astype(float) * b.real - (a.imag * b.imag).astype(float)).astype(np.float32)
    return bool(np.array_equal((a * b).real, fma_real))


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
@pytest.mark.parametrize("n", [16200, 16201])
def test_mix_at_mics_is_numpys_arithmetic(dtype, n):
    """The compiled sum over sources (asdlib.simulate.kernels) is NumPy's multiply, multiply, add,
    bin by bin: bit for bit where NumPy multiplies complex numbers with FMA (x86-64 with AVX2, which
    our machines have), to rounding elsewhere. A last partial block and the Nyquist bin included."""
    from asdlib.simulate.propagation import _delays_and_distances, _mix_at_mics

    rng = np.random.default_rng(5)
    exact = _numpy_multiplies_complex_with_fma()
    for n_src in (1, 3, 6):
        n_bins = n // 2 + 1
        spectra = (rng.standard_normal((n_src, n_bins)) + 1j * rng.standard_normal((n_src, n_bins))).astype(dtype)
        positions = rng.uniform(-4.0, 4.0, (n_src, 3))
        delays, dist = _delays_and_distances(positions, sim.MIC_POSITIONS, sim.SR, 343.0)
        fast, reference = _mix_at_mics(spectra, delays, dist, n), _numpy_mix_at_mics(spectra, delays, dist, n)
        assert fast.shape == reference.shape == (8, n_bins) and fast.dtype == dtype
        if exact:
            assert np.array_equal(fast, reference), n_src
        else:
            np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-5 * np.abs(reference).max())


def _numpy_harmonic_sum(phase, coefs):
    """The harmonic sum as NumPy passes over the whole signal (before asdlib.simulate.kernels.harmonic_sum)."""
    turns = np.rint(phase * (1.0 / (2.0 * np.pi)))
    turns *= 2.0 * np.pi
    reduced = (phase - turns).astype(np.float32)
    z = np.empty(phase.shape, dtype=np.complex64)
    z.real, z.imag = np.cos(reduced), np.sin(reduced)
    acc = np.full(phase.shape, coefs[-1], dtype=np.complex64)
    for c in reversed(coefs[:-1]):
        acc *= z
        if c:
            acc += np.complex64(c)
    acc *= z
    return acc.imag.astype(float)


@pytest.mark.parametrize("n_coefs", [1, 2, 7, 40])
@pytest.mark.parametrize("n", [2, 255, 257, 16_001])
def test_harmonic_sum_is_numpys_horner_recursion(n_coefs, n):
    """signals._harmonics (kernels.wrap_phase and kernels.harmonic_sum) gives what NumPy's passes give:
    bit for bit where NumPy multiplies complex numbers with FMA, to rounding elsewhere. Zero
    amplitudes (no addition), partial last blocks and phases of thousands of turns included.
    (NumPy multiplies a one-element array without FMA; a clip has at least 513 samples.)"""
    from asdlib.simulate.signals import _harmonics

    rng = np.random.default_rng(n_coefs + n)
    phase = np.cumsum(rng.uniform(0.0, 0.5, n)) + rng.uniform(-1e4, 1e4)
    amps = list(rng.uniform(0.1, 1.0, n_coefs))
    amps[len(amps) // 2] = 0.0 if n_coefs > 2 else amps[len(amps) // 2]
    fast = _harmonics(np.random.default_rng(1), phase, amps, 10.0, 16000)
    draw = np.random.default_rng(1)
    coefs = [a * np.exp(1j * draw.uniform(0.0, 2.0 * np.pi)) if a else 0.0 for a in amps]
    reference = _numpy_harmonic_sum(phase, coefs)
    assert fast.dtype == np.float64 and fast.shape == (n,)
    if _numpy_multiplies_complex_with_fma():
        assert np.array_equal(fast, reference)
    else:
        np.testing.assert_allclose(fast, reference, rtol=0, atol=1e-5 * sum(amps))


def test_interp_kernel_is_numpys_interp():
    """kernels.interp gives np.interp's numbers for ascending points: before the first knot, on knots,
    between them, on and after the last one."""
    from asdlib.simulate.kernels import interp

    rng = np.random.default_rng(3)
    for trial in range(50):
        xp = np.arange(rng.uniform(-2, 0), rng.uniform(0.5, 12), rng.uniform(0.05, 1.0))
        fp = rng.standard_normal(xp.size)
        x = np.sort(np.r_[rng.uniform(xp[0] - 1.0, xp[-1] + 1.0, rng.integers(1, 3000)), xp[:: 1 + trial % 3]])
        out = np.empty(x.size)
        interp(x, xp, fp, out)
        assert np.array_equal(out, np.interp(x, xp, fp)), trial
    out = np.empty(4)
    interp(np.array([-1.0, 0.0, 0.5, 2.0]), np.array([0.0]), np.array([3.0]), out)  # one knot
    assert np.array_equal(out, np.interp([-1.0, 0.0, 0.5, 2.0], [0.0], [3.0]))


def test_a_non_finite_clip_is_an_error_not_a_file(tmp_path, monkeypatch):
    """A clip with a NaN sample stops the data set with the clip's path; no WAV is written for it."""
    from asdlib.simulate import dataset

    real = dataset.simulate_clip

    def broken(*args, **kwargs):
        audio, info = real(*args, **kwargs)
        audio[3, 10] = np.nan
        return audio, {**info, "peak": float(max(audio.max(), -audio.min()))}

    monkeypatch.setattr(dataset, "simulate_clip", broken)
    with pytest.raises(FloatingPointError, match=r"id_00/normal/00000000\.wav has non-finite samples"):
        sim.simulate_dataset(tmp_path, machines=["fan"], machine_ids=[0], n_normal=1, n_abnormal=0, duration_s=0.2,
                             n_jobs=1, progress=False)
    assert not list(tmp_path.rglob("*.wav"))


def test_pcm16_kernel_is_numpys_passes():
    """kernels.pcm16 is NumPy's float32 multiply, rint (half to even), clip and cast, transposed."""
    from asdlib.simulate.dataset import _to_pcm16

    rng = np.random.default_rng(4)
    audio = (rng.standard_normal((8, 50_001)) * 0.4).astype(np.float32)
    audio[0, :6] = [0.5 / 32768, 1.5 / 32768, -2.5 / 32768, 1.0, -1.0, 2.0]
    q = np.rint(audio.T * np.float32(32768.0))
    expected = np.clip(q, -32768, 32767).astype(np.int16)
    assert np.array_equal(_to_pcm16(audio), expected)
    assert np.array_equal(_to_pcm16(audio[:, ::2]), expected[::2])  # a strided view


def _bits(x: np.ndarray) -> np.ndarray:
    return x.view(np.uint32 if x.dtype == np.float32 else np.uint64)


def test_add_scaled_kernel_is_numpys_passes():
    """kernels.add_scaled is ``x * scale`` in float64, added to float32 ``out`` and rounded once, as
    NumPy's ``np.add(out, x * scale, out=out, casting="same_kind")``: bit for bit, signed zeros included."""
    from asdlib.simulate.kernels import add_scaled

    rng = np.random.default_rng(7)
    x = rng.standard_normal(100_003)
    out = (rng.standard_normal(x.size) * 1e3).astype(np.float32)
    out[:4], x[:4] = [0.0, -0.0, 1.0, np.float32(3e-8)], [0.0, -0.0, -1.0 / 0.0137, 1e-9]
    expected = out.copy()
    np.add(expected, x * 0.0137, out=expected, casting="same_kind")
    add_scaled(out, x, 0.0137)
    assert np.array_equal(_bits(out), _bits(expected))


@pytest.mark.parametrize("with_anomaly", [False, True])
def test_mix_scaled_kernel_is_numpys_passes(with_anomaly):
    """kernels.mix_scaled gives the mixture NumPy's float32 passes give, bit for bit, leaves the parts
    as they were, and returns the peak; a NaN anywhere makes the peak NaN."""
    from asdlib.simulate.kernels import mix_scaled

    rng = np.random.default_rng(8 + with_anomaly)
    parts = [(rng.standard_normal((8, 10_300)) * 0.3).astype(np.float32)[:, 150:10_150] for _ in range(3)]  # cropped views
    parts[0][2, :3] = [-0.0, 0.0, 1e-30]
    gains = [np.float32(0.7), np.float32(0.031), np.float32(1.9)]
    m, b, a = (x.copy() for x in parts)
    m *= gains[0]
    b *= gains[1]
    a *= gains[2]
    expected = m + a if with_anomaly else m + b
    if with_anomaly:
        expected += b
    before = [x.copy() for x in parts]
    out = np.empty((8, 10_000), dtype=np.float32)
    peak = mix_scaled(parts[0], gains[0], parts[1], gains[1], parts[2], gains[2], with_anomaly, out)
    assert np.array_equal(_bits(out), _bits(expected))
    assert peak == max(expected.max(), -expected.min())
    assert all(np.array_equal(x, y) for x, y in zip(parts, before))
    parts[1][5, 9_999] = np.nan
    assert np.isnan(mix_scaled(parts[0], gains[0], parts[1], gains[1], parts[2], gains[2], with_anomaly, out))


@pytest.mark.parametrize("size", [0, 1, 1000, 1_000_003])
@pytest.mark.parametrize("kernel", ["standard_normal", "_standard_normal"])
def test_standard_normal_kernel_draws_numpys_numbers_and_leaves_its_state(size, kernel):
    """kernels.standard_normal (NumPy's raw words through a compiled ziggurat) and kernels._standard_normal
    (numba's port, its fallback) give rng.standard_normal's draws, tails beyond the ziggurat's last
    layer (|x| > 3.65) and wedge rejections included, and the generator goes on as NumPy's."""
    from asdlib.simulate import kernels

    ours, numpys = (np.random.default_rng(np.random.SeedSequence(9, spawn_key=(1,))) for _ in range(2))
    ours.uniform(size=3), numpys.uniform(size=3)
    out, expected = np.empty(size), numpys.standard_normal(size)
    getattr(kernels, kernel)(ours, out)
    assert np.array_equal(out, expected)
    assert size < 10**6 or np.abs(out).max() > 3.65
    assert np.array_equal(ours.standard_normal(5), numpys.standard_normal(5))


@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.PCG64DXSM, np.random.SFC64, np.random.Philox,
                                           np.random.MT19937])
def test_standard_normal_kernel_on_every_bit_generator(bit_generator):
    """Blocks of raw words where they are the generator's 64-bit output, numba's port where not
    (MT19937): NumPy's draws and state either way, a 2-d output filled in C order."""
    from asdlib.simulate.kernels import standard_normal

    ours, numpys = np.random.Generator(bit_generator(5)), np.random.Generator(bit_generator(5))
    out, expected = np.empty((3, 100_001)), numpys.standard_normal((3, 100_001))
    standard_normal(ours, out)
    assert np.array_equal(out, expected)
    assert np.array_equal(ours.bit_generator.random_raw(8), numpys.bit_generator.random_raw(8))


def test_standard_normal_kernel_keeps_pcg64s_buffered_half_word():
    """On PCG64 the kernel makes the words itself and sets the generator's state afterwards: the
    32-bit half-word NumPy keeps after a 32-bit draw survives, as it does through NumPy's draws."""
    from asdlib.simulate.kernels import standard_normal

    ours, numpys = np.random.default_rng(11), np.random.default_rng(11)
    ours.integers(0, 2**32, dtype=np.uint32), numpys.integers(0, 2**32, dtype=np.uint32)
    assert ours.bit_generator.state["has_uint32"] == 1
    out = np.empty(70_001)
    standard_normal(ours, out)
    assert np.array_equal(out, numpys.standard_normal(70_001))
    assert ours.bit_generator.state == numpys.bit_generator.state
    assert np.array_equal(ours.integers(0, 2**32, size=5, dtype=np.uint32), numpys.integers(0, 2**32, size=5, dtype=np.uint32))


# ---------------------------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------------------------
def test_same_seed_same_clip_other_seed_other_clip():
    a, _ = sim.simulate_clip("slider", 2, seed=21, duration_s=0.5, anomaly="spatial")
    b, _ = sim.simulate_clip("slider", 2, seed=21, duration_s=0.5, anomaly="spatial")
    c, _ = sim.simulate_clip("slider", 2, seed=22, duration_s=0.5, anomaly="spatial")
    np.testing.assert_array_equal(a, b)
    assert np.max(np.abs(a - c)) > 0.1 * np.max(np.abs(a))


def test_clip_seed_is_stable_across_interpreters():
    """No dependence on Python's randomised hash(): a fresh interpreter with another hash seed agrees."""
    args = (0, "valve", 6, -6.0, "abnormal", 12)
    code = f"from asdlib.simulate import clip_seed; print(clip_seed{args!r})"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert int(out) == sim.clip_seed(*args)
    assert 0 <= sim.clip_seed(*args) < 2**63
    assert sim.clip_seed(0, "valve", 6, 0.0, "normal", 1) == sim.clip_seed(0, "valve", 6, -0.0, "normal", 1)
    others = {sim.clip_seed(1, *args[1:]), sim.clip_seed(0, "valve", 6, -6.0, "normal", 12), sim.clip_seed(0, "valve", 6, 6.0, "abnormal", 12)}
    assert sim.clip_seed(*args) not in others and len(others) == 3


# ---------------------------------------------------------------------------------------------
# data sets on disk
# ---------------------------------------------------------------------------------------------
SMALL = dict(machines=("fan", "valve"), machine_ids=(0, 2), snrs_db=(-6, 6), duration_s=0.25, seed=4, progress=False)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    meta = sim.simulate_dataset(root, n_normal=3, n_abnormal=2, n_jobs=1, **SMALL)
    return root, meta


def test_dataset_layout_and_metadata(small_set):
    root, meta = small_set
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))
    assert on_disk == sorted(meta["path"])
    assert len(meta) == 2 * 2 * (3 + 2)  # snrs x machines x (n_normal + n_abnormal)
    assert "-6_dB_fan/fan/id_00/normal/00000000.wav" in on_disk
    assert "6_dB_valve/valve/id_02/abnormal/00000000.wav" in on_disk
    # n_normal = 3 spread over two IDs: 2 + 1
    fan = meta[(meta.machine == "fan") & (meta.snr_db == -6) & (meta.label == "normal")]
    assert fan.machine_id.value_counts().to_dict() == {"id_00": 2, "id_02": 1}
    abnormal = meta[meta.label == "abnormal"]
    assert set(abnormal.anomaly_kind) == {"spectral", "spatial"} and set(meta[meta.label == "normal"].anomaly_kind) == {"none"}
    assert abnormal.anomaly_x.notna().all() and meta[meta.label == "normal"].anomaly_x.isna().all()
    assert meta.background_seed.is_unique  # every clip has its own background
    # one recording per (machine, id, label, index): the same seed in every SNR folder, distinct otherwise
    recording = meta.path.str.split("/", n=1).str[1]
    assert (meta.groupby(recording).seed.nunique() == 1).all()
    assert meta.drop_duplicates("seed").shape[0] == recording.nunique()
    written = pd.read_csv(root / "metadata.csv")
    assert list(written.columns) == list(meta.columns) and len(written) == len(meta)
    for col in ("path", "machine", "machine_id", "snr_db", "label", "anomaly_kind", "seed", "machine_x", "machine_y", "machine_z", "anomaly_z", "bg0_x"):
        assert col in written.columns
    for path in (root / p for p in meta["path"]):
        info = sf.info(str(path))
        assert (info.channels, info.samplerate, info.subtype, info.frames) == (8, 16000, "PCM_16", 4000)


def test_dataset_is_readable_by_the_data_module(small_set):
    from asdlib.data import scan_mimii

    root, meta = small_set
    manifest = scan_mimii(root)
    merged = manifest.merge(meta, left_on="relpath", right_on="path", suffixes=("", "_sim"))
    assert len(merged) == len(meta)
    assert (merged.snr_db == merged.snr_db_sim).all() and (merged.machine == merged.machine_sim).all()
    assert (merged.machine_id == merged.machine_id_sim).all() and (merged.label == merged.label_sim).all()


def test_wav_holds_the_clip_simulate_clip_gives(small_set):
    root, meta = small_set
    row = meta[(meta.label == "abnormal") & (meta.anomaly_kind == "spatial")].iloc[0]
    audio, info = sim.simulate_clip(row.machine, int(row.machine_id[3:]), snr_db=row.snr_db, anomaly="spatial",
                                    seed=int(row.seed), background_seed=int(row.background_seed), duration_s=0.25)
    stored, sr = sf.read(str(root / row.path), dtype="float32")
    assert sr == 16000
    np.testing.assert_allclose(stored.T, audio, atol=0.5 / 32768 + 1e-9)  # rounded to the nearest 16-bit step
    np.testing.assert_allclose(info["anomaly"]["position"], [row.anomaly_x, row.anomaly_y, row.anomaly_z], atol=1e-6)


def test_pcm16_conversion_rounds_and_clips():
    from asdlib.simulate.dataset import _to_pcm16

    x = np.array([[0.0, 1.0, -1.0, 1.5, -2.0, 0.49 / 32768, 0.51 / 32768, -0.51 / 32768, 100.4 / 32768]], dtype=np.float32)
    np.testing.assert_array_equal(_to_pcm16(x)[:, 0], [0, 32767, -32768, 32767, -32768, 0, 1, -1, 100])
    assert _to_pcm16(np.zeros((8, 5), np.float32)).shape == (5, 8)


def test_clips_do_not_depend_on_the_size_of_the_data_set(small_set, tmp_path):
    root, meta = small_set
    other = sim.simulate_dataset(tmp_path, n_normal=5, n_abnormal=1, n_jobs=2, **{**SMALL, "snrs_db": (6,)})
    shared = sorted(set(meta.path) & set(other.path))
    assert len(shared) >= 8
    for rel in shared:
        assert (root / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_rerun_skips_existing_files_and_repairs_missing_or_truncated(small_set):
    root, meta = small_set
    mtimes = {p: (root / p).stat().st_mtime_ns for p in meta.path}
    missing, truncated = root / meta.path.iloc[0], root / meta.path.iloc[-1]
    original = missing.read_bytes(), truncated.read_bytes()
    missing.unlink()
    truncated.write_bytes(original[1][:1000])
    again = sim.simulate_dataset(root, n_normal=3, n_abnormal=2, n_jobs=1, **SMALL)
    pd.testing.assert_frame_equal(again, meta)
    assert (missing.read_bytes(), truncated.read_bytes()) == original
    untouched = [p for p in meta.path if root / p not in (missing, truncated)]
    assert all((root / p).stat().st_mtime_ns == mtimes[p] for p in untouched)
    assert not list(root.rglob(".tmp-*"))


def test_dataset_rejects_bad_requests(tmp_path):
    with pytest.raises(ValueError, match="unknown machine 'drill'"):
        sim.simulate_dataset(tmp_path, machines=("drill",), progress=False)
    with pytest.raises(ValueError, match="n_abnormal must be a whole number >= 0"):
        sim.simulate_dataset(tmp_path, n_abnormal=-1, progress=False)
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def test_cli_unknown_machine_is_a_one_line_error(tmp_path, capsys):
    assert sim.main(["--out", str(tmp_path / "x"), "--machines", "fan", "drill"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "drill" in err and "fan, pump, slider, valve" in err
    assert not (tmp_path / "x").exists()


def test_cli_negative_count_is_an_error(tmp_path, capsys):
    assert sim.main(["--out", str(tmp_path), "--n-normal", "-3"]) == 2
    assert "--n-normal must be a whole number >= 0" in capsys.readouterr().err


def test_cli_writes_a_data_set(tmp_path, capsys):
    argv = ["--out", str(tmp_path), "--machines", "pump", "--ids", "id_04", "--snr", "-6", "--snr", "0",
            "--n-normal", "1", "--n-abnormal", "1", "--duration", "0.25", "--seed", "3",
            "--anomaly-kinds", "spatial", "--anomaly-strength", "-12", "--jobs", "1", "--quiet"]
    assert sim.main(argv) == 0
    meta = pd.read_csv(tmp_path / "metadata.csv")
    assert sorted(meta.path) == [
        "-6_dB_pump/pump/id_04/abnormal/00000000.wav", "-6_dB_pump/pump/id_04/normal/00000000.wav",
        "0_dB_pump/pump/id_04/abnormal/00000000.wav", "0_dB_pump/pump/id_04/normal/00000000.wav",
    ]
    assert set(meta[meta.label == "abnormal"].anomaly_kind) == {"spatial"}
    assert "simulated" in capsys.readouterr().out


def test_cli_refuses_nan_strength_and_out_as_a_file(tmp_path, capsys):
    assert sim.main(["--out", str(tmp_path / "x"), "--anomaly-strength", "nan"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--anomaly-strength" in err and "finite" in err
    assert not (tmp_path / "x").exists()
    a_file = tmp_path / "data.wav"
    a_file.write_bytes(b"not a folder")
    assert sim.main(["--out", str(a_file), "--n-normal", "1", "--n-abnormal", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "existing file" in err and str(a_file) in err
    assert a_file.read_bytes() == b"not a folder"
    with pytest.raises(ValueError, match="existing file"):
        sim.simulate_dataset(a_file, machines=("fan",), n_normal=1, n_abnormal=0, progress=False)


def test_cli_as_a_subcommand(tmp_path, capsys):
    """What asdlib.cli calls: add_arguments on a sub-parser, then run(args)."""
    import argparse

    parser = argparse.ArgumentParser(prog="asdlib")
    sub = parser.add_subparsers(dest="command")
    sim.add_arguments(sub.add_parser("simulate"))
    args = parser.parse_args(["simulate", "--out", str(tmp_path), "--machines", "valve", "--ids", "2", "--n-normal", "1",
                              "--n-abnormal", "0", "--duration", "0.25", "--jobs", "1", "--quiet"])
    assert sim.run(args) == 0
    assert (tmp_path / "0_dB_valve/valve/id_02/normal/00000000.wav").is_file()
    args = parser.parse_args(["simulate", "--out", str(tmp_path), "--machines", "drill"])
    assert sim.run(args) == 2 and "drill" in capsys.readouterr().err


def test_a_run_on_some_machine_types_keeps_the_others_metadata(tmp_path):
    """One root serves runs on all machine types and on one (a book build's grids): simulating fan
    alone into it must keep valve's rows, or valve's cells lose their anomaly kinds."""
    both = sim.simulate_dataset(tmp_path, n_normal=2, n_abnormal=2, n_jobs=1, **SMALL)
    fan = sim.simulate_dataset(tmp_path, n_normal=2, n_abnormal=2, n_jobs=1, **{**SMALL, "machines": ("fan",)})
    assert set(fan["machine"]) == {"fan"}
    on_disk = pd.read_csv(tmp_path / "metadata.csv", dtype={"machine_id": str})
    assert sorted(on_disk["path"]) == sorted(both["path"])
    pd.testing.assert_frame_equal(on_disk.set_index("path").sort_index(), both.set_index("path").sort_index(), check_dtype=False)


def _disk_with_free_bytes(monkeypatch, free: int) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - free, free))


def test_a_disk_too_small_for_the_data_set_is_one_line_before_any_clip(tmp_path, capsys, monkeypatch):
    """What CI once met: a disk that fills after 224 of 1,520 clips. Refuse up front, saying how much."""
    from asdlib.cli import main

    _disk_with_free_bytes(monkeypatch, 10**6)
    out = tmp_path / "sim"
    code = main(["simulate", "--out", str(out), "--machines", "fan", "--n-normal", "100", "--n-abnormal", "100",
                 "--duration", "10", "--jobs", "1", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err == (f"asdlib simulate: error: not enough disk space in {out} for simulating 200 clips of 10 s: "
                   f"{200 * sim.dataset._wav_size(160000) / 1e6:.1f} MB needed, 1.0 MB free; "
                   "free some space, or set ASDLIB_DATA (or --out) to a folder on a larger disk")
    assert not list(out.rglob("*.wav"))


def test_a_disk_that_fills_while_writing_names_the_clip(tmp_path, monkeypatch):
    """libsndfile reports a full disk as "System error." with no errno: the error must say it is the disk."""
    from asdlib.simulate.dataset import _write_wav_atomic

    def full(*args, **kwargs):
        raise sf.LibsndfileError(2, "Error writing: ")  # what soundfile raised in CI (code 2: "System error.")

    monkeypatch.setattr(sf, "write", full)
    audio = np.zeros((8, 1600), np.float32)
    path = tmp_path / "fan" / "00000000.wav"
    path.parent.mkdir()
    _disk_with_free_bytes(monkeypatch, 100)
    with pytest.raises(OSError, match="No space left on device") as caught:
        _write_wav_atomic(path, audio, 16000)
    assert caught.value.filename == str(path) and not list(tmp_path.rglob("*.wav"))
    _disk_with_free_bytes(monkeypatch, 10**9)  # with room to spare, the writer's own error stands
    with pytest.raises(sf.LibsndfileError):
        _write_wav_atomic(path, audio, 16000)


# ---------------------------------------------------------------------------------------------
# audit of the command line (F2, F5, F6)
# ---------------------------------------------------------------------------------------------
TINY = dict(machines=("fan",), machine_ids=(0,), snrs_db=(0,), n_normal=1, n_abnormal=1, duration_s=0.1, seed=4,
            n_jobs=1, progress=False)


def test_a_killed_runs_temporaries_are_removed_but_not_a_running_writers(tmp_path):
    """Audit F2: a SIGKILLed writer leaves ``.tmp-*.wav``; the next run removes it. One just written (a
    run beside this one, writing into the same folder) is left alone."""
    import time

    from asdlib.fileio import TMP_PREFIX

    folder = tmp_path / "0_dB_fan" / "fan" / "id_00" / "abnormal"
    folder.mkdir(parents=True)
    stale, fresh = folder / f"{TMP_PREFIX}killed.wav", folder / f"{TMP_PREFIX}writing.wav"
    stale.write_bytes(b"RIFF half a clip")
    fresh.write_bytes(b"RIFF half a clip")
    old = time.time() - 2 * sim.dataset.STALE_TEMPORARY_S
    os.utime(stale, (old, old))
    meta = sim.simulate_dataset(tmp_path, **TINY)
    assert not stale.exists() and fresh.exists()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.wav") if p != fresh) == sorted(meta["path"])


@pytest.mark.parametrize("change, setting", [
    ({"seed": 5}, "seed"),
    ({"anomaly_strength": 5.0}, "anomaly strength"),
    ({"duration_s": 0.2}, "duration (its clips are 0.1 s, now 0.2 s)"),
    ({"anomaly_kinds": ("spatial",)}, "anomaly kinds"),
])
def test_a_folder_of_other_settings_is_refused(tmp_path, change, setting):
    """Audit F5: resuming keeps existing clips, so a folder simulated with other settings must be refused,
    not given a metadata.csv that describes clips it does not hold."""
    sim.simulate_dataset(tmp_path, **TINY)
    before = {p: p.read_bytes() for p in [*tmp_path.rglob("*.wav"), tmp_path / "metadata.csv"]}
    with pytest.raises(sim.dataset.SettingsMismatchError) as info:
        sim.simulate_dataset(tmp_path, **{**TINY, **change})
    assert str(info.value) == (
        f"{tmp_path} holds clips simulated with another {setting}, and one folder holds clips of one set of settings: "
        f"simulate into a new folder, or delete {tmp_path} to start again")
    assert {p: p.read_bytes() for p in before} == before


def test_same_settings_resume_and_add_machine_types(tmp_path, capsys):
    first = sim.simulate_dataset(tmp_path, **TINY)
    again = sim.simulate_dataset(tmp_path, **TINY)  # resuming: the same settings
    pd.testing.assert_frame_equal(again, first)
    pump = sim.simulate_dataset(tmp_path, **{**TINY, "machines": ("pump",), "n_normal": 2})  # another type, same settings
    on_disk = pd.read_csv(tmp_path / "metadata.csv")
    assert sorted(on_disk["path"]) == sorted([*first["path"], *pump["path"]])
    # through the command line: one line, exit 2, naming the folder and the setting
    argv = ["--out", str(tmp_path), "--machines", "fan", "--ids", "0", "--n-normal", "1", "--n-abnormal", "1",
            "--duration", "0.1", "--seed", "5", "--jobs", "1", "--quiet"]
    assert sim.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"asdlib simulate: error: {tmp_path} holds clips simulated with another seed, and")
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("options, message", [
    (["--n-normal", "0", "--n-abnormal", "0"], "--n-normal and --n-abnormal are both 0: nothing to simulate"),
    (["--snr", "1e308"], "--snr 1e+308 dB is outside -100 to 100 dB"),
    (["--snr", "-4000"], "--snr -4000.0 dB is outside -100 to 100 dB"),
    (["--anomaly-strength", "1e308"], "--anomaly-strength must be a finite number of dB from -100 to 100"),
    (["--anomaly-strength", "-101"], "--anomaly-strength must be a finite number of dB from -100 to 100"),
    (["--duration", "1e-9"], "--duration 1e-09 s is too short: a clip needs at least 1024 samples (0.064 s at 16000 Hz)"),
    (["--jobs", "100000"], "--jobs 100000 is more than 4 x the"),
])
def test_cli_refuses_numbers_out_of_range_in_one_line(tmp_path, capsys, options, message):
    """Audit F4, F6: one line and exit 2 naming the option and its range, before any folder is made."""
    from asdlib.cli import main

    out = tmp_path / "x"
    code = main(["simulate", "--out", str(out), "--machines", "fan", "--n-normal", "2", "--n-abnormal", "1",
                 "--duration", "1", "--quiet", *options])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert err.startswith(f"asdlib simulate: error: {message}"), err
    assert not out.exists()


def test_the_shortest_clip_allowed_can_be_loaded(tmp_path):
    """The duration floor is what later commands need: a clip of MIN_DURATION_S loads; one shorter is refused."""
    from asdlib.data import load_clip

    meta = sim.simulate_dataset(tmp_path, **{**TINY, "n_abnormal": 0, "duration_s": sim.dataset.MIN_DURATION_S})
    assert load_clip(tmp_path / meta["path"].iloc[0]).shape == (8, 1024)
    with pytest.raises(ValueError, match="duration_s 0.0639 s is too short"):
        sim.simulate_dataset(tmp_path / "short", **{**TINY, "duration_s": 0.0639})


def _simulate_tiny_folder(root: str) -> int:
    """One of two runs at once (a process-pool task): how many clips this run simulated."""
    return sim.simulate_dataset(root, **{**TINY, "n_normal": 20, "n_abnormal": 4}).attrs["simulated"]


def test_two_runs_at_once_share_the_clips(tmp_path):
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        counts = list(pool.map(_simulate_tiny_folder, [str(tmp_path / "both")] * 2))
    # whichever way the two interleave, every clip is simulated once, by one of them
    assert sum(counts) == 24, counts
    alone = sim.simulate_dataset(tmp_path / "alone", **{**TINY, "n_normal": 20, "n_abnormal": 4})
    assert alone.attrs["simulated"] == 24
    both = pd.read_csv(tmp_path / "both" / "metadata.csv")
    assert sorted(both["path"]) == sorted(alone["path"])
    for path in alone["path"]:
        assert (tmp_path / "both" / path).read_bytes() == (tmp_path / "alone" / path).read_bytes()
    again = sim.simulate_dataset(tmp_path / "alone", **{**TINY, "n_normal": 20, "n_abnormal": 4, "n_jobs": 2})
    assert again.attrs["simulated"] == 0


def test_a_clip_another_run_holds_is_left_for_later(tmp_path):
    from filelock import FileLock

    from asdlib.simulate import dataset

    job = dataset._plan(["fan"], [0], [0.0], 10, 0, 4, ["spectral"])[7]
    assert dataset._lock_name(job) == "0_dB_fan~fan~id_00~normal~00000007.wav.lock"
    locks = tmp_path / dataset.LOCK_FOLDER
    locks.mkdir()
    size = dataset._wav_size(int(round(0.1 * sim.SR)))
    task = (str(tmp_path), job, 0.1, 0.0, size, False)
    with FileLock(str(locks / dataset._lock_name(job))):  # another run is on this clip
        assert dataset._make_clip(task) == (False, job["path"], None)
    assert not (tmp_path / job["path"]).exists()
    done, path, peak = dataset._make_clip(task)
    assert (done, path) == (True, job["path"]) and peak > 0
    assert (tmp_path / path).stat().st_size == size
    assert list(locks.iterdir()) == []  # the lock file goes once the clip is written
    written = (tmp_path / path).stat().st_mtime_ns
    # coming back to a clip another run wrote: nothing is simulated again
    assert dataset._make_clip(task[:-1] + (True,)) == (True, job["path"], None)
    assert (tmp_path / path).stat().st_mtime_ns == written
