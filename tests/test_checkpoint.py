"""Checkpoint files: round trip, and refusals that name the file before anything is built or run."""
from __future__ import annotations

import time

import pytest
import torch

from asdlib.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from asdlib.config import Config
from asdlib.modelspec import ModelSpec
from asdlib.train import init_model, train_model

FAST = Config(epochs=2, batch_size=64)


def _saved(tmp_path, name="m.pt", **extra):
    spec = ModelSpec.dual(2, 6, 10.0)
    model = init_model(spec, FAST, 3)
    train_model(model, [torch.randn(300, 640), torch.randn(300, 640)], spec.weights, FAST, seed=3, progress=False)
    save_checkpoint(tmp_path / name, model, spec, FAST, **extra)
    return model, spec


def test_checkpoint_round_trip(tmp_path):
    model, spec = _saved(tmp_path, note="x")
    loaded, spec2, cfg2, ckpt = load_checkpoint(tmp_path / "m.pt")
    assert spec2 == spec and cfg2 == FAST and ckpt["note"] == "x"
    x = torch.randn(7, 640)
    model.eval()
    for a, b in zip(model(x, x), loaded(x, x)):
        assert torch.equal(a, b)
    assert not list(tmp_path.glob(".tmp-*"))


def test_damaged_file_is_refused_with_its_name(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"nope")
    with pytest.raises(CheckpointError, match="bad.pt: not a readable asdlib checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")
    assert issubclass(CheckpointError, ValueError)  # the CLI maps ValueError to exit 2


@pytest.mark.parametrize("field, value, message", [
    ("hidden_dim", 10**15, "hidden_dim=1000000000000000 does not match the stored weights"),
    ("n_hidden_layers", 10**9, "n_hidden_layers 1000000000"),
    ("n_mels", 10**12, "n_mels=1000000000000 does not match"),
    ("hidden_dim", 64, r"do not match its model spec and config \(wrong shape"),
    ("latent_dim", 4, "wrong shape"),
])
def test_config_that_does_not_match_the_tensors_is_refused_before_building(tmp_path, field, value, message):
    """A file that passes weights_only but asks for a petabyte model is refused at once."""
    _saved(tmp_path)
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    ckpt["config"][field] = value
    torch.save(ckpt, tmp_path / "evil.pt")
    start = time.process_time()
    with pytest.raises(CheckpointError, match="evil.pt: .*" + message):
        load_checkpoint(tmp_path / "evil.pt")
    assert time.process_time() - start < 30  # nothing huge was built (a real build would not finish)


def test_spec_that_does_not_match_the_tensors_is_refused(tmp_path):
    _saved(tmp_path)
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    ckpt["spec"] = ModelSpec.baseline(0).to_dict()  # one input, but two encoders stored
    torch.save(ckpt, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt: .*unexpected"):
        load_checkpoint(tmp_path / "other.pt")
    ckpt["spec"] = {"ref": 0, "others": [9], "alphas": [1.0]}
    torch.save(ckpt, tmp_path / "mic9.pt")
    with pytest.raises(CheckpointError, match="mic9.pt: invalid model spec or config"):
        load_checkpoint(tmp_path / "mic9.pt")


class _Payload:
    """Unpickling this would create a folder (stands for arbitrary code)."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        import os

        return os.makedirs, (str(self.target),)


def test_malicious_pickle_is_refused_with_our_message(tmp_path):
    target = tmp_path / "pwned"
    torch.save({"state_dict": {}, "spec": {}, "config": {}, "x": _Payload(target)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "evil.pt")
    message = str(info.value)
    assert message.startswith(f"{tmp_path / 'evil.pt'}: refused") and "could run code" in message
    assert "weights_only=False" not in message and "\n" not in message
    assert not target.exists()  # nothing ran


def test_cli_refuses_an_unsafe_or_inconsistent_detector_with_exit_2(tmp_path, capsys):
    from asdlib.cli import main as cli

    from .conftest import tone_clip, write_wav
    import numpy as np

    wav = write_wav(tmp_path / "x.wav", tone_clip(np.random.default_rng(0)))
    torch.save({"x": _Payload(tmp_path / "pwned")}, tmp_path / "evil.pt")
    _saved(tmp_path, "plain.pt")  # a model checkpoint, not a detector
    ckpt = torch.load(tmp_path / "plain.pt", weights_only=True)
    ckpt["config"]["hidden_dim"] = 10**15
    torch.save(ckpt, tmp_path / "huge.pt")
    for name, message in (("evil.pt", "refused"), ("plain.pt", "not a detector of this asdlib version"),
                          ("huge.pt", "hidden_dim=1000000000000000 does not match")):
        capsys.readouterr()
        assert cli(["score", "--detector", str(tmp_path / name), "--device", "cpu", str(wav)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and name in err and message in err and "weights_only=False" not in err, err
    assert not (tmp_path / "pwned").exists()
