"""The one model interface: every autoencoder is ``encoders``/``decoders`` and maps a list to a list."""
from __future__ import annotations

import pytest
import torch

from asdlib.config import Config
from asdlib.models import BaselineAE, DualAE, MultiChannelAE, build_model, upgrade_state_dict


@pytest.mark.parametrize("n_inputs, cls", [(1, BaselineAE), (2, DualAE), (3, MultiChannelAE)])
def test_every_model_has_one_interface(n_inputs, cls):
    torch.manual_seed(0)
    model = build_model(n_inputs).eval()
    assert type(model) is cls and isinstance(model, MultiChannelAE)
    assert len(model.encoders) == len(model.decoders) == n_inputs
    assert all(dec[0].in_features == 8 * n_inputs for dec in model.decoders)
    xs = [torch.randn(5, 640) - 40 * k for k in range(n_inputs)]
    outs = model(xs)
    assert isinstance(outs, list) and [o.shape for o in outs] == [(5, 640)] * n_inputs
    for a, b in zip(outs, model.reconstruct(xs)):
        assert torch.equal(a, b)
    one_by_one = model(*xs)  # tensors given one by one: unpacked outputs
    for a, b in zip(outs, [one_by_one] if n_inputs == 1 else one_by_one):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match=f"takes {n_inputs} input"):
        model(xs + [xs[0]])


def test_dual_ae_is_multichannel_ae_of_two():
    torch.manual_seed(3)
    dual = DualAE()
    torch.manual_seed(3)
    multi = MultiChannelAE(2)
    assert dual.state_dict().keys() == multi.state_dict().keys()
    for key, value in dual.state_dict().items():
        assert torch.equal(value, multi.state_dict()[key]), key
    assert dual.encoder_dif is dual.encoders[1] and dual.decoder_ref is dual.decoders[0]


def _legacy(state: dict, names: dict[str, str]) -> dict:
    """A state dict in the layout before the one interface (``encoder_ref.0.weight``, ...)."""
    out = {}
    for key, value in state.items():
        for new, old in names.items():
            if key.startswith(new):
                key = old + key[len(new):]
                break
        out[key] = value
    return out


@pytest.mark.parametrize("model_cls, names", [
    (BaselineAE, {"encoders.0.": "encoder.", "decoders.0.": "decoder."}),
    (DualAE, {"encoders.0.": "encoder_ref.", "encoders.1.": "encoder_dif.", "decoders.0.": "decoder_ref.", "decoders.1.": "decoder_dif."}),
])
def test_checkpoints_of_the_old_layout_still_load(model_cls, names):
    torch.manual_seed(1)
    saved = model_cls()
    old = _legacy(saved.state_dict(), names)
    assert not any(k.startswith(("encoders.", "decoders.")) for k in old)
    assert upgrade_state_dict(old).keys() == saved.state_dict().keys()
    torch.manual_seed(2)
    loaded = model_cls()
    loaded.load_state_dict(old)
    for key, value in saved.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_upgrade_leaves_current_keys_and_config_alone():
    model = BaselineAE(Config(hidden_dim=16))
    state = model.state_dict()
    assert list(upgrade_state_dict(state)) == list(state)
