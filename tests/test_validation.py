"""Every field of an experiment spec and of Config is checked when it is made (issue 14.7).

Each bad value is refused at once with one line naming the field and what is allowed, before any
data is read or any model trained.
"""
from __future__ import annotations

import math

import pytest

from asdlib.config import Config
from asdlib.experiments import ExperimentSpec, SpecError, profile


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs must be an integer >= 1, got 0"),
    ("epochs", -3, "epochs must be an integer >= 1, got -3"),
    ("epochs", 2.5, "epochs must be an integer >= 1, got 2.5"),
    ("epochs", True, "epochs must be an integer >= 1, got True"),
    ("batch_size", 0, "batch_size must be an integer >= 1, got 0"),
    ("n_mels", 0, "n_mels must be an integer >= 1, got 0"),
    ("n_frames", 0, "n_frames must be an integer >= 1, got 0"),
    ("hop_length", 0, "hop_length must be an integer >= 1, got 0"),
    ("n_fft", 0, "n_fft must be an integer >= 1, got 0"),
    ("gamma_percentile", 1.0, "gamma_percentile must be a number in (0, 1), got 1.0"),
    ("gamma_percentile", 0, "gamma_percentile must be a number in (0, 1), got 0"),
    ("validation_split", 1.5, "validation_split must be a number in [0, 1), got 1.5"),
    ("validation_split", 1.0, "validation_split must be a number in [0, 1), got 1.0"),
    ("lr", 0.0, "lr must be a number > 0, got 0.0"),
    ("lr", "0.001", "lr must be a number > 0, got '0.001'"),
    ("fmax", 9000.0, "fmax must be a number in (fmin, sr/2] = (0.0, 8000.0] or null, got 9000.0"),
])
def test_config_refuses_values_outside_their_range(field, value, message):
    with pytest.raises(ValueError) as info:
        Config(**{field: value})
    assert str(info.value) == message
    with pytest.raises(SpecError) as info:  # the same through a spec's config overrides
        profile("smoke", config={field: value})
    assert str(info.value) == f"config overrides: {message}"


def test_config_accepts_the_edges_of_each_range():
    Config(epochs=1, batch_size=1, n_mels=1, n_frames=1, hop_length=1, validation_split=0.0, gamma_percentile=0.5,
           fmax=8000.0)


@pytest.mark.parametrize("field, value, message", [
    ("machines", "fan", "machines must be a list of machine types, e.g. [fan] (not a bare string), got 'fan'"),
    ("machines", [], "machines is empty; choose some of fan, pump, slider, valve"),
    ("seeds", [True], "seeds must be a list of integers, e.g. [0, 1], got [True]"),
    ("seeds", [0.5], "seeds must be a list of integers, e.g. [0, 1], got [0.5]"),
    ("seeds", 3, "seeds must be a list of integers, e.g. [0, 1], got 3"),
    ("n_train", "8", "n_train must be an integer (not a string or a boolean), got '8'"),
    ("n_test", 8.0, "n_test must be an integer (not a string or a boolean), got 8.0"),
    ("n_train", 0, "n_train (--n-train) 0 is too few: the threshold's gamma fit needs at least 3 normal training clips"),
    ("n_train", 2, "n_train (--n-train) 2 is too few: the threshold's gamma fit needs at least 3 normal training clips"),
    ("n_test", 1, "n_test (--n-test) must be >= 2, got 1"),
    ("split_seed", None, "split_seed must be an integer (not a string or a boolean), got None"),
    ("alphas", [math.inf], "alpha inf must be a finite number >= 0"),
    ("alphas", [math.nan], "alpha nan must be a finite number >= 0"),
    ("alphas", [True], "alpha True must be a finite number >= 0"),
    ("alphas", 0.5, "alphas must be a list of numbers, e.g. [0.5, 2], got 0.5"),
    ("mic_pairs", [[0, True]], "microphone True in pair [0, True] is outside 0-7"),
    ("mic_pairs", "0-4", "mic_pairs must be a list of [reference, other] pairs, e.g. [[0, 4]], got '0-4'"),
    ("baseline_mic", "0", "baseline_mic must be an integer microphone index, got '0'"),
    ("anomalous_fraction", "0.5", "anomalous_fraction must be a number in (0, 1), got '0.5'"),
    ("snrs_db", [math.nan], "snrs_db must be a list of SNRs in dB, e.g. [-6, 0, 6], or null, got [nan]"),
    ("fused", "no", "fused must be true or false, got 'no'"),
    ("n_jobs", 0, "n_jobs must be >= 1, got 0"),
    ("device", "tpu", "device must be 'auto', 'cpu' or 'cuda', got 'tpu'"),
    ("split_groups", "file", "split_groups 'file' must be one of ['recording', 'clip']"),
])
def test_spec_refuses_each_bad_field(field, value, message):
    with pytest.raises(SpecError) as info:
        profile("smoke", **{field: value})
    assert str(info.value) == message


def test_config_must_be_a_mapping():
    with pytest.raises(SpecError) as info:
        ExperimentSpec(config=[("epochs", 3)])
    assert str(info.value) == "config must be a mapping of Config overrides, e.g. {epochs: 5}, got [('epochs', 3)]"


def test_yaml_values_are_checked_as_read(tmp_path):
    f = tmp_path / "spec.yaml"
    f.write_text('profile: smoke\nn_train: "8"\n')
    with pytest.raises(SpecError, match=r"^n_train must be an integer \(not a string or a boolean\), got '8'$"):
        ExperimentSpec.from_file(f)
    f.write_text("profile: smoke\nconfig: {gamma_percentile: 1.0}\n")
    with pytest.raises(SpecError, match=r"^config overrides: gamma_percentile must be a number in \(0, 1\), got 1.0$"):
        ExperimentSpec.from_file(f)
    f.write_text("machines: [fan\n  bad: :\n")
    with pytest.raises(SpecError) as info:
        ExperimentSpec.from_file(f)
    assert str(info.value) == (f"{f}: not valid YAML (expected ',' or ']', but got ':' at line 2, column 6); "
                               "fix the file or start from `asdlib run --profile`")


def test_split_groups_default_and_digest():
    spec = profile("smoke")
    assert spec.split_groups == "recording"
    assert profile("smoke", split_groups="clip").digest() != spec.digest()  # a different split, a different run


def test_a_spec_file_with_an_unknown_profile_is_refused(tmp_path):
    """Audit F13: a typo such as ``profile: quik`` must not silently run the defaults' paper-sized grid."""
    f = tmp_path / "spec.yaml"
    f.write_text("profile: quik\nmachines: [fan]\n")
    with pytest.raises(SpecError) as info:
        ExperimentSpec.from_file(f)
    assert str(info.value) == (f"{f}: unknown profile 'quik'; choose one of ['book', 'paper', 'quick', 'smoke'], "
                               "or leave `profile` out (or write `custom`) for a grid of the fields given")
    for text in ("profile: custom\nmachines: [fan]\nn_train: 3\n", "machines: [fan]\nn_train: 3\n"):
        f.write_text(text)
        spec = ExperimentSpec.from_file(f)
        assert (spec.profile, spec.machines, spec.n_train) == ("custom", ["fan"], 3)
    f.write_text("profile: quick\nmachines: [fan]\n")
    assert ExperimentSpec.from_file(f) == profile("quick", machines=["fan"])


@pytest.mark.parametrize("section, message", [  # the first four: names and types
    ("{bogus: 3}", "simulator: unknown setting(s) ['bogus']; known: ['snrs_db', 'duration_s', 'seed', 'anomaly_kinds', "
                   "'anomaly_strength', 'machine_ids', 'n_normal', 'n_abnormal']"),
    ('{duration_s: "10"}', "simulator.duration_s must be a number of seconds, e.g. 10, got '10'"),
    ("{snrs_db: fan}", "simulator.snrs_db must be a list of SNRs in dB, e.g. [-6, 0, 6], got 'fan'"),
    ("{seed: 1.5}", "simulator.seed must be an integer, got 1.5"),
    ("{duration_s: -1}", "simulator.duration_s must be a positive number of seconds, got -1"),
    ("{machine_ids: [1]}", "unknown machine id 1 in simulator.machine_ids; choose from 0, 2, 4, 6"),
    ("{machine_ids: []}", "simulator.machine_ids is empty; give at least one value"),
    ("{anomaly_kinds: [weird]}", "unknown anomaly kind 'weird' in simulator.anomaly_kinds; choose from spectral, spatial"),
    ("{anomaly_strength: 500}", "simulator.anomaly_strength must be a finite number of dB from -100 to 100 (default -10), got 500"),
])
def test_a_spec_files_simulator_section_is_checked_as_read(tmp_path, section, message):
    """Audit F7: a bad ``simulator:`` section was a traceback (``TypeError``) or a message without its name."""
    f = tmp_path / "spec.yaml"
    f.write_text(f"profile: smoke\nsimulator: {section}\n")
    with pytest.raises(SpecError) as info:
        ExperimentSpec.from_file(f)
    assert str(info.value) == message
    # with real data the section is unused: its names and types are still checked, its ranges not
    f.write_text(f"profile: smoke\ndata_root: {tmp_path}\nsimulator: {section}\n")
    if section in ("{bogus: 3}", '{duration_s: "10"}', "{snrs_db: fan}", "{seed: 1.5}"):
        with pytest.raises(SpecError) as info:
            ExperimentSpec.from_file(f)
        assert str(info.value) == message
    else:
        assert ExperimentSpec.from_file(f).data_root == str(tmp_path)
