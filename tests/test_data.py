"""Discovery, splits and loading (asdlib.data), on real MIMII clips and generated ones."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from asdlib.data import DataError, SplitError, add_audio_info, load_clip, manifest_hash, parse_snr, scan_mimii, split_machine

from .conftest import write_wav


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
