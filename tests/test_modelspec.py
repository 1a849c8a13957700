"""The baseline's input as a spec choice: microphone k or the 8-channel mean (issue 15, item 2)."""
from __future__ import annotations

import pytest

from asdlib.features import InputSpec
from asdlib.modelspec import ModelSpec, grid_inputs


def test_mean_baseline_has_its_own_name_inputs_and_dict():
    mean = ModelSpec.baseline("mean")
    assert mean.name == "baseline-mean" and mean.kind == "baseline" and mean.mic_pair == "mean"
    assert ModelSpec.baseline(0).mic_pair == ""  # metrics rows of the two baselines stay apart
    assert mean.inputs == [InputSpec.channel_mean()] and mean.weights == [1.0]
    assert mean.to_dict() == {"ref": 0, "others": [], "alphas": [], "source": "mean"}
    assert ModelSpec.from_dict(mean.to_dict()) == mean == ModelSpec.from_dict({"source": "mean"})
    assert mean != ModelSpec.baseline(0)


def test_channel_baselines_keep_their_names_and_dicts():
    """Older results stay valid: mic-k baselines are named and serialised as before."""
    assert ModelSpec.baseline(0).name == "baseline-mic0" and ModelSpec.baseline("mic3").name == "baseline-mic3"
    assert ModelSpec.baseline(0).to_dict() == {"ref": 0, "others": [], "alphas": []}
    assert ModelSpec.dual(0, 4, 0.5).to_dict() == {"ref": 0, "others": [4], "alphas": [0.5]}
    assert ModelSpec.from_dict({"ref": 2}).inputs == [InputSpec(2)]


def test_grid_inputs_include_the_mean_once():
    specs = [ModelSpec.baseline("mean"), ModelSpec.baseline(0), ModelSpec.dual(0, 4, 1.0), ModelSpec.baseline("mean")]
    assert [s.name for s in grid_inputs(specs)] == ["mean", "mic0", "mic0-mic4"]


def test_bad_sources_are_refused():
    with pytest.raises(ValueError, match="source must be one of"):
        ModelSpec(source="left")
    with pytest.raises(ValueError, match="baseline input"):
        ModelSpec(0, (4,), (1.0,), source="mean")
    with pytest.raises(ValueError, match="baseline input"):
        ModelSpec(2, source="mean")
    with pytest.raises(ValueError, match="one channel or the channel mean"):
        ModelSpec.baseline("mic0-mic4")
    with pytest.raises(ValueError, match="unknown model field"):
        ModelSpec.from_dict({"ref": 0, "input": "mean"})
