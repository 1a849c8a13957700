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
