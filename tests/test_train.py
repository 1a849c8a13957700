"""One-model training and the per-step arithmetic of the fused trainer, on real features.

What "the same computation" means here: every training step of the fused trainer, started from
the state of a plain autograd model, gives that model's loss, gradients and BatchNorm statistics
to float32 rounding. Over a whole run the two trainers do not stay that close -- training is
chaotic, so rounding differences grow until the two runs differ as much as two seeds (both are
valid runs) -- which is why the comparison is made one step at a time, from identical states.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import soundfile as sf
import torch

from asdlib.config import Config
from asdlib.features import clip_vectors
from asdlib.fused import StackedAutoencoders, _layers, _networks, train_fused
from asdlib.models import reconstruction_loss
from asdlib.modelspec import ModelSpec, grid_inputs
from asdlib.train import batch_plan, init_model, train_model

SPECS = [ModelSpec.baseline(0), ModelSpec.dual(0, 4, 2.0)]


@pytest.fixture(scope="module")
def real_features(mimii_samples) -> dict[str, torch.Tensor]:
    """float32 vectors of every normal sample clip (mic 0 and mic0 - mic4), as training uses them."""
    paths = sorted(mimii_samples.rglob("normal/*.wav"))
    if not paths:
        pytest.skip(f"no normal/*.wav clips under {mimii_samples}")
    inputs = grid_inputs(SPECS)
    per_clip = [clip_vectors(sf.read(p, dtype="float32", always_2d=True)[0].T, inputs, Config()) for p in paths]
    stacked = np.concatenate(per_clip, axis=1)  # (n_inputs, n_vectors, 640)
    return {s.name: torch.from_numpy(np.ascontiguousarray(stacked[i])).float() for i, s in enumerate(inputs)}


def _gradient_pairs(stack: StackedAutoencoders, models):
    """(name, stack value, autograd value, scale) for every gradient and running statistic of ``models``.

    The scale is the autograd value's norm, except for a Linear bias followed by BatchNorm: its
    exact gradient is 0 (BatchNorm subtracts the batch mean), both sides are rounding noise, and
    they are measured against the layer's weight gradient.
    """
    g = 0
    for k, model in enumerate(models):
        for enc_dec in zip(*_networks(model)):
            for prefix, net in zip(("enc", "dec"), enc_dec):
                for i, (lin, bn) in enumerate(_layers(net)):
                    layer = stack._layer(prefix, i)
                    where = f"model {k} network {g} {prefix}{i}"
                    yield where + " weight", layer.weight.grad[g, :, : lin.in_features], lin.weight.grad, lin.weight.grad.norm()
                    bias_scale = lin.weight.grad.norm() if bn is not None else lin.bias.grad.norm()
                    yield where + " bias", layer.bias.grad[g, 0], lin.bias.grad, bias_scale
                    if bn is not None:
                        for name, got, ref in (
                            ("gamma", layer.gamma.grad[g, 0], bn.weight.grad),
                            ("beta", layer.beta.grad[g, 0], bn.bias.grad),
                            ("running_var", layer.running_var[g, 0], bn.running_var),
                            ("running_mean", layer.running_mean[g, 0], bn.running_mean),
                        ):
                            yield f"{where} {name}", got, ref, ref.norm()
            g += 1


@pytest.mark.parametrize("dtype, tolerance", [(torch.float64, 1e-10), (torch.float32, 5e-2)])
def test_every_step_of_a_real_epoch_is_the_autograd_step(real_features, dtype, tolerance):
    """A full epoch on real features: each fused step equals autograd's from the same state.

    float64 shows the arithmetic is the same (agreement to ~1e-12). float32 is what training
    uses; there the first-layer weight gradient ``Σ_b g x`` of an input whose vectors share a
    large offset (the log-mel level) is a small difference of large sums, so two correct
    summation orders already differ by up to ~2e-2 relative for a few tensors (measured 1.8e-2;
    float64: 1.8e-13).
    """
    real_features = {k: v.to(dtype) for k, v in real_features.items()}
    config = Config(epochs=1)
    seeds = [0, 1]
    models = [init_model(spec, config, seed).to(dtype) for spec, seed in zip(SPECS, seeds)]
    stack = StackedAutoencoders(copy.deepcopy(models), [s.weights for s in SPECS], config)
    optimizer = torch.optim.Adam(stack.parameters(), lr=config.lr, fused=True)
    n = len(real_features["mic0"])
    plans = [batch_plan(n, config, seed) for seed in seeds]
    epochs = [p.epoch() for p in plans]
    assert len(epochs[0]) >= 15, f"only {len(epochs[0])} steps: not a real epoch"
    worst = 0.0
    for step, batches in enumerate(zip(*epochs)):
        stack.copy_to(models, step)  # identical states: the autograd models take the stack's
        x = torch.stack([real_features[s.name][b] for spec, b in zip(SPECS, batches) for s in spec.inputs])
        losses = stack.train_step(x)
        for k, (spec, model, b) in enumerate(zip(SPECS, models, batches)):
            model.train()
            model.zero_grad(set_to_none=True)
            xs = [real_features[s.name][b] for s in spec.inputs]
            loss = reconstruction_loss(xs, model.reconstruct(xs), spec.weights)
            loss.backward()
            assert float(losses[k]) == pytest.approx(loss.item(), rel=100 * torch.finfo(dtype).eps), f"step {step} model {k} loss"
        for where, got, ref, scale in _gradient_pairs(stack, models):
            err = float((got - ref).norm() / scale.clamp_min(1e-12))
            worst = max(worst, err)
            assert err < tolerance, f"step {step} {where}: relative difference {err:.1e}"
        optimizer.step()
    print(f"{dtype}: {step + 1} steps of {len(real_features['mic0'])} real vectors: worst relative difference {worst:.1e}")
    assert worst > 0  # float32 sums in another order: rounding, not bit-equality


def test_train_model_is_the_fused_trainer_with_one_model():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(600, 640, generator=gen) * 5 - 40
    features = {"mic0": x, "mic0-mic4": 0.3 * x + torch.randn(600, 640, generator=gen)}
    config = Config(epochs=2, batch_size=64)
    for spec in SPECS:
        model = init_model(spec, config, 7)
        history = train_model(model, [features[s.name] for s in spec.inputs], spec.weights, config, seed=7, progress=False)
        ((fused, fused_history),) = train_fused([spec], [7], features, config, progress=False)
        assert not model.training
        for key, value in fused.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), key
        assert history.train_loss == fused_history.train_loss
        assert history.train_loss[-1] < history.train_loss[0]


def test_train_model_refuses_inputs_that_do_not_fit_the_model():
    model = init_model(SPECS[1], Config(), 0)
    x = torch.randn(100, 640)
    with pytest.raises(ValueError, match="takes 2 input"):
        train_model(model, [x], [1.0], Config(epochs=1), seed=0, progress=False)
    with pytest.raises(ValueError, match="shape"):
        train_model(model, [x, x[:50]], [1.0, 1.0], Config(epochs=1), seed=0, progress=False)
