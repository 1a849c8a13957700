"""Discovery, splits and loading (asdlib.data), on real MIMII clips and generated ones."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from asdlib.data import (
    DataError,
    SplitError,
    TruncatedAudioWarning,
    add_audio_info,
    declared_frames,
    largest_split,
    load_clip,
    manifest_hash,
    parse_snr,
    recording_key,
    scan_mimii,
    split_machine,
)

from .conftest import tone_clip, write_wav


def test_discovers_the_real_samples(mimii_samples):
    m = scan_mimii(mimii_samples)
    assert len(m) == 32
    assert sorted(m["machine"].unique()) == ["fan", "pump", "slider", "valve"]
    assert sorted(m["machine_id"].unique()) == ["id_00", "id_02", "id_04", "id_06"]
    assert sorted(m["label"].unique()) == ["abnormal", "normal"]
    assert set(m["snr_db"]) == {0.0}
    info = add_audio_info(m)
    assert set(info["channels"]) == {8} and set(info["samplerate"]) == {16000}
    assert np.allclose(info["duration_s"], 10.0)


@pytest.mark.parametrize(
    "name, snr",
    [("-6_dB_fan", -6.0), ("0_dB_fan", 0.0), ("6_dB_valve", 6.0), ("min6dB", -6.0), ("6dB", 6.0), ("m6dB", -6.0),
     ("neg6dB", -6.0), ("+6dB", 6.0), ("6_dB", 6.0), ("fan", None), ("id_00", None)],
)
def test_snr_folder_spellings(name, snr):
    assert parse_snr(name) == snr


def test_scan_accepts_other_spellings_and_ignores_stray_files(tmp_path):
    audio = np.zeros((8, 2048), np.float32)
    write_wav(tmp_path / "min6dB" / "pump" / "id_04" / "normal" / "00000001.wav", audio)
    write_wav(tmp_path / "6dB" / "pump" / "id_04" / "abnormal" / "00000002.wav", audio)
    write_wav(tmp_path / "notes" / "something.wav", audio)  # not in the layout
    m = scan_mimii(tmp_path)
    assert list(m["snr_db"]) == [-6.0, 6.0] or sorted(m["snr_db"]) == [-6.0, 6.0]
    assert set(m["machine"]) == {"pump"} and len(m) == 2


def test_scan_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*asdlib download"):
        scan_mimii(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no clip found"):
        scan_mimii(tmp_path)


def test_scan_unknown_machine(tiny_mimii):
    with pytest.raises(DataError, match="pump"):
        scan_mimii(tiny_mimii, machines=["pump"])


def test_split_is_disjoint_stratified_and_deterministic(tiny_mimii):
    m = scan_mimii(tiny_mimii)
    s1 = split_machine(m, "fan", n_train=16, n_test=8, seed=3)
    s2 = split_machine(m, "fan", n_train=16, n_test=8, seed=3)
    s3 = split_machine(m, "fan", n_train=16, n_test=8, seed=4)
    assert len(s1.train) == 16 and len(s1.test) == 8
    assert set(s1.train["relpath"]).isdisjoint(s1.test["relpath"])
    assert (s1.train["label"] == "normal").all()
    assert (s1.test["label"] == "abnormal").sum() == 4
    pd.testing.assert_frame_equal(s1.train, s2.train)
    pd.testing.assert_frame_equal(s1.test, s2.test)
    assert set(s1.train["relpath"]) != set(s3.train["relpath"])
    # 4 strata (2 IDs x 2 SNRs) of 6 normal clips each: 16 training clips -> 4 per stratum
    assert s1.train.groupby(["machine_id", "snr_db"]).size().tolist() == [4, 4, 4, 4]
    assert s1.test[s1.test.label == "abnormal"].groupby(["machine_id", "snr_db"]).size().tolist() == [1, 1, 1, 1]


def test_split_does_not_depend_on_where_the_data_lives(tiny_mimii, tmp_path):
    import shutil

    copy = tmp_path / "elsewhere"
    shutil.copytree(tiny_mimii, copy)
    a = split_machine(scan_mimii(tiny_mimii), "valve", n_train=10, n_test=6)
    b = split_machine(scan_mimii(copy), "valve", n_train=10, n_test=6)
    assert list(a.train["relpath"]) == list(b.train["relpath"])
    assert list(a.test["relpath"]) == list(b.test["relpath"])


def test_split_too_large_says_what_fits(tiny_mimii):
    m = scan_mimii(tiny_mimii)
    with pytest.raises(SplitError, match=r"24 normal and 12 abnormal.*largest valid split .*n_train=\d+, n_test=\d+"):
        split_machine(m, "fan", n_train=1000, n_test=200)
    with pytest.raises(SplitError, match="no clip of machine type 'pump'"):
        split_machine(m, "pump")


def test_split_on_real_samples_uses_every_id(mimii_samples):
    m = scan_mimii(mimii_samples)
    s = split_machine(m, "slider", n_train=2, n_test=4)
    assert len(s.train) == 2 and (s.test.label == "abnormal").sum() == 2
    with pytest.raises(SplitError, match="4 normal and 4 abnormal"):
        split_machine(m, "slider", n_train=4, n_test=4)


def test_load_selected_channels(mimii_samples):
    path = scan_mimii(mimii_samples)["path"][0]
    full = load_clip(path)
    pair = load_clip(path, [2, 6])
    assert full.shape == (8, 160000) and full.dtype == np.float32
    assert np.array_equal(pair, full[[2, 6]])
    assert np.abs(full).max() <= 1.0


def test_bad_audio_inputs(tmp_path):
    ok = write_wav(tmp_path / "ok.wav", np.zeros((8, 4096), np.float32))
    with pytest.raises(DataError, match=r"ok.wav: sample rate 16000 Hz, expected 44100"):
        load_clip(ok, sr=44100)
    stereo = write_wav(tmp_path / "stereo.wav", np.zeros((2, 4096), np.float32))
    with pytest.raises(DataError, match=r"stereo.wav: has 2 channel\(s\) but microphone 4 was requested"):
        load_clip(stereo, [0, 4])
    with pytest.raises(DataError, match="microphone index 9 is out of range"):
        load_clip(ok, [0, 9])
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")
    with pytest.raises(DataError, match="corrupt.wav: not a readable WAV"):
        load_clip(corrupt)
    short = write_wav(tmp_path / "short.wav", np.zeros((8, 100), np.float32))
    with pytest.raises(DataError, match="short.wav: 100 samples is too short"):
        load_clip(short)
    nan = np.zeros((8, 4096), np.float32)
    nan[3, 10] = np.nan
    nan_file = write_wav(tmp_path / "nan.wav", nan, subtype="FLOAT")
    with pytest.raises(DataError, match="nan.wav: contains NaN"):
        load_clip(nan_file)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        load_clip(tmp_path / "missing.wav")


def test_manifest_hash_changes_with_content(tiny_mimii):
    m = scan_mimii(tiny_mimii)
    assert manifest_hash(m) == manifest_hash(m.copy())
    assert manifest_hash(m) != manifest_hash(m.iloc[1:])


# ------------------------------------------------------------------ layouts without an SNR folder (issue 14.1)


def test_machine_folder_straight_under_the_root_is_scanned(mimii_samples):
    """``.../0_dB_fan`` used as the root: the SNR comes from the root's own name, nothing is lost."""
    m = scan_mimii(mimii_samples / "0_dB_fan")
    assert len(m) == 8 and set(m["machine"]) == {"fan"} and set(m["snr_db"]) == {0.0}
    assert m["relpath"].iloc[0] == "fan/id_00/abnormal/00000000.wav"
    s = split_machine(m, "fan", n_train=2, n_test=4)
    assert (len(s.train), len(s.test), (s.test.label == "abnormal").sum()) == (2, 4, 2)


def _tree(root, layout):
    """Write 1 s clips: ``layout`` maps a folder prefix ('' for none) to {(id, label): count}."""
    rng = np.random.default_rng(1)
    for prefix, counts in layout.items():
        for (mid, label), count in counts.items():
            for i in range(count):
                write_wav(root / prefix / "fan" / mid / label / f"{i:08d}.wav",
                          tone_clip(rng, n=2048, anomalous=label == "abnormal"))
    return root


def test_clips_without_an_snr_are_a_stratum_of_their_own(tmp_path):
    """Some clips under an SNR folder, some not: the split must use all of them (pandas drops NaN groups)."""
    root = _tree(tmp_path, {
        "": {("id_00", "normal"): 6, ("id_00", "abnormal"): 4},  # no SNR folder: snr_db NaN
        "6_dB": {("id_02", "normal"): 6, ("id_02", "abnormal"): 4},
    })
    m = scan_mimii(root)
    assert m["snr_db"].isna().sum() == 10 and (m["snr_db"] == 6.0).sum() == 10
    for groups in ("recording", "clip"):
        s = split_machine(m, "fan", n_train=8, n_test=8, groups=groups)
        assert (len(s.train), len(s.test)) == (8, 8)  # the sizes asked for, not fewer
        assert (s.test.label == "abnormal").sum() == 4
        assert s.train["snr_db"].isna().sum() == 4 and (s.train["snr_db"] == 6.0).sum() == 4
        assert s.test[s.test.label == "abnormal"]["snr_db"].isna().sum() == 2
    with pytest.raises(SplitError, match="needs 14 normal"):
        split_machine(m, "fan", n_train=10, n_test=8)


def test_a_folder_named_like_a_clip_is_refused_by_name(tmp_path):
    write_wav(tmp_path / "0_dB_fan" / "fan" / "id_00" / "normal" / "00000000.wav", np.zeros((8, 2048), np.float32))
    bad = tmp_path / "0_dB_fan" / "fan" / "id_00" / "normal" / "00000001.wav"
    bad.mkdir()
    with pytest.raises(DataError) as info:
        scan_mimii(tmp_path)
    assert str(info.value) == f"{bad}: is a folder, not a WAV file; rename it or move it out of the data folder"


# ------------------------------------------------------------------ the grouped split (issue 15.1)


@pytest.fixture(scope="module")
def twinned_mimii(tmp_path_factory):
    """MIMII's naming: the same id_XX/<label>/NNNNNNNN.wav in each of three SNR folders."""
    root = tmp_path_factory.mktemp("twinned")
    rng = np.random.default_rng(2)
    for snr in ("-6_dB_fan", "0_dB_fan", "6_dB_fan"):
        for mid in ("id_00", "id_02"):
            for label, count in (("normal", 12), ("abnormal", 4)):
                for i in range(count):
                    write_wav(root / snr / "fan" / mid / label / f"{i:08d}.wav",
                              tone_clip(rng, n=1024, anomalous=label == "abnormal", channels=1))
    return root


def _recordings(frame):
    return set(recording_key(frame))


def test_grouped_split_keeps_each_recording_on_one_side(twinned_mimii):
    m = scan_mimii(twinned_mimii)
    assert len(m) == 3 * 2 * 16 and m.groupby(["machine_id", "label", "clip"]).size().eq(3).all()
    for seed in range(10):
        s = split_machine(m, "fan", n_train=30, n_test=12, seed=seed)
        assert (len(s.train), len(s.test), (s.test.label == "abnormal").sum()) == (30, 12, 6)
        assert _recordings(s.train).isdisjoint(_recordings(s.test[s.test.label == "normal"]))
        # still the paper's mixing: every ID x SNR stratum on both sides
        assert s.train.groupby(["machine_id", "snr_db"]).size().size == 6
        assert s.test[s.test.label == "normal"].groupby(["machine_id", "snr_db"]).size().tolist() == [1] * 6
    # the same draw without grouping (the earlier default) does put recordings on both sides
    crossed = [len(_recordings(s.train) & _recordings(s.test))
               for s in (split_machine(m, "fan", n_train=30, n_test=12, seed=seed, groups="clip") for seed in range(10))]
    assert sum(crossed) > 0


def test_grouped_split_too_large_hints_a_split_that_works(twinned_mimii):
    m = scan_mimii(twinned_mimii)
    # 72 normal clips but only 24 recordings: a test set of 6 normal clips removes up to 6 recordings
    split_machine(m, "fan", n_train=60, n_test=12, groups="clip")
    with pytest.raises(SplitError, match=r"no recording on both sides.*n_train=(\d+), n_test=(\d+)") as info:
        split_machine(m, "fan", n_train=60, n_test=12)
    tr, te = map(int, re.search(r"is n_train=(\d+), n_test=(\d+)", str(info.value)).groups())
    s = split_machine(m, "fan", n_train=tr, n_test=te)  # the hint is itself valid
    assert (len(s.train), len(s.test)) == (tr, te) and tr >= 45


def test_split_hint_never_suggests_an_invalid_test_set(tiny_mimii):
    """Issue 14.9: the hint suggested n_test 1 or 0, themselves refused."""
    m = scan_mimii(tiny_mimii)
    m = m[(m["label"] == "normal") | (m["clip"] == "00000000")]  # 1 abnormal clip per ID x SNR
    for n_train, n_test in [(1000, 3), (23, 10), (100, 2), (20, 10)]:
        with pytest.raises(SplitError) as info:
            split_machine(m, "fan", n_train=n_train, n_test=n_test)
        found = re.search(r"is n_train=(\d+), n_test=(\d+)\.$", str(info.value))
        tr, te = map(int, found.groups())
        assert tr >= 1 and te >= 2
        split_machine(m, "fan", n_train=tr, n_test=te)  # accepted
    assert largest_split(5, 0, 10, 4) == (0, 0)
    with pytest.raises(SplitError, match="No valid split fits"):
        split_machine(m[m.label == "normal"], "fan", n_train=4, n_test=4)


def test_training_only_split_needs_no_abnormal_clip(tiny_mimii):
    m = scan_mimii(tiny_mimii)
    normal = m[m.label == "normal"]
    s = split_machine(normal, "fan", n_train=10, n_test=0)
    assert len(s.train) == 10 and s.test.empty and (s.train.label == "normal").all()
    with pytest.raises(SplitError, match=r"has 24 normal and 0 abnormal.*is n_train=24, n_test=0"):
        split_machine(normal, "fan", n_train=30, n_test=0)
    with pytest.raises(SplitError, match="n_test >= 2 \\(or 0: no test set\\)"):
        split_machine(normal, "fan", n_train=3, n_test=1)


# ------------------------------------------------------------------ a truncated WAV (issue 14.12)


def test_truncated_wav_is_used_with_a_warning_naming_the_file(tmp_path):
    full = write_wav(tmp_path / "full.wav", np.full((8, 4000), 0.25, np.float32))
    cut = tmp_path / "cut.wav"
    data = full.read_bytes()
    cut.write_bytes(data[: 44 + 8 * 2 * 2500 + 3])  # 2,500 whole frames and a partial one
    assert declared_frames(full) == declared_frames(cut) == 4000
    with pytest.warns(TruncatedAudioWarning) as record:
        audio = load_clip(cut)
    assert audio.shape == (8, 2500)
    assert str(record[0].message) == (f"{cut}: truncated WAV, read 2500 of the 4000 frames its header declares; "
                                      "using the frames read (replace the file to use all of it)")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_clip(full).shape == (8, 4000)  # a whole file: no warning


def test_scan_skips_temporary_files_and_staging_folders(tmp_path):
    """Audit F1/F2: a writer's ``.tmp-*.wav`` (fileio.atomic_path) and a download's ``.<name>.unpacking-*``
    folder may hold half-written files; a scan must never list them as clips."""
    from asdlib.fileio import TMP_PREFIX

    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    clip = tone_clip(rng, n=2048)
    write_wav(root / "0_dB_fan" / "fan" / "id_00" / "normal" / "00000000.wav", clip)
    write_wav(root / "0_dB_fan" / "fan" / "id_00" / "abnormal" / "00000000.wav", clip)
    write_wav(root / "0_dB_fan" / "fan" / "id_00" / "normal" / f"{TMP_PREFIX}c0j4fws_.wav", clip)
    write_wav(root / ".0_dB_pump.unpacking-1" / "pump" / "id_00" / "normal" / "00000000.wav", clip)
    write_wav(root / ".x.unpacking-1" / "fan" / "id_00" / "normal" / "00000001.wav", clip)
    m = scan_mimii(root)
    assert list(m["relpath"]) == ["0_dB_fan/fan/id_00/abnormal/00000000.wav", "0_dB_fan/fan/id_00/normal/00000000.wav"]
    assert set(m["machine"]) == {"fan"}
    # a root that is itself under a dot-folder is scanned as usual: only what lies below the root counts
    hidden_root = tmp_path / ".cache" / "mimii"
    write_wav(hidden_root / "0_dB_fan" / "fan" / "id_00" / "normal" / "00000000.wav", clip)
    assert list(scan_mimii(hidden_root)["relpath"]) == ["0_dB_fan/fan/id_00/normal/00000000.wav"]
