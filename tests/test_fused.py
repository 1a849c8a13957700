"""Fused grid training gives what training each model alone with autograd gives.

The reference is ``train_model_autograd`` (``train_model`` is itself the fused trainer with one
model). The exact comparison runs in float64: training with Adam is chaotic at float32 rounding (a
1e-7 relative nudge of the initial weights moves some weights by ~1e-2 within 20 steps, for the
autograd loop alone), so float32 parameters of two mathematically identical runs cannot be
compared to 1e-4. In float64 the rounding is 1e-16 and the fused and separate runs agree to ~1e-9.
In float32 the test compares what the models compute: clip scores and losses.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import asdlib.fused as fused_module
from asdlib.train_kernels import bn_relu_forward as BN_RELU_FORWARD
from asdlib.config import Config
from asdlib.fused import StackedAutoencoders, train_fused
from asdlib.models import BaselineAE, DualAE, MultiChannelAE
from asdlib.modelspec import ModelSpec
from asdlib.scoring import clip_score_parts, fit_inverse_covariances, residual_stats, weighted_scores
from asdlib.train import TrainingDivergedError, init_model, train_model_autograd

SPECS = [ModelSpec.baseline(0), ModelSpec.dual(0, 4, 0.5), ModelSpec.dual(2, 6, 2.0), ModelSpec.dual(0, 4, 10.0)]
SEEDS = [0, 1, 2, 0]
CLIP_LEN = 50


def make_features(n: int, dtype: torch.dtype, seed: int = 0, names=("mic0", "mic0-mic4", "mic2", "mic2-mic6")) -> dict[str, torch.Tensor]:
    """Inputs sharing a rank-16 structure, plus independent noise: (n, 640) each."""
    gen = torch.Generator().manual_seed(seed)
    shared = torch.randn(n, 16, generator=gen) @ torch.randn(16, 640, generator=gen)
    return {name: (0.5 * shared + 0.3 * torch.randn(n, 640, generator=gen) + i).to(dtype) for i, name in enumerate(names)}


def clip_scores(model, spec: ModelSpec, features, config: Config) -> dict[str, np.ndarray]:
    inputs = [features[s.name] for s in spec.inputs]
    n = len(inputs[0])
    stats = residual_stats(model, inputs, np.arange(n) // CLIP_LEN, -(-n // CLIP_LEN), config.n_mels, with_covariance=True)
    inv_covs, _ = fit_inverse_covariances(stats, config)
    return weighted_scores(clip_score_parts(stats, inv_covs), spec.weights)


def train_separately(features, config: Config, specs=SPECS, seeds=SEEDS):
    out = []
    for spec, seed in zip(specs, seeds):
        model = init_model(spec, config, seed).to(next(iter(features.values())).dtype)
        history = train_model_autograd(model, [features[s.name] for s in spec.inputs], spec.weights, config, seed=seed, progress=False)
        out.append((model, history))
    return out


@pytest.fixture(scope="module")
def float64_runs():
    # n = 997: 100 held out, 897 = 7 * 128 + 1 trained, so the final batch of 1 is dropped
    features = make_features(997, torch.float64)
    config = Config(epochs=2, batch_size=128)
    return features, config, train_fused(SPECS, SEEDS, features, config, progress=False), train_separately(features, config)


def assert_same_models(specs, fused, separate, n_steps: int) -> None:
    """Fused and separately trained models: same classes and keys, every tensor within 1e-7 of its scale."""
    for spec, (f_model, _), (s_model, _) in zip(specs, fused, separate):
        assert type(f_model) is type(s_model)
        f_state, s_state = f_model.state_dict(), s_model.state_dict()
        assert f_state.keys() == s_state.keys()
        for key, ref in s_state.items():
            got = f_state[key]
            if key.endswith("num_batches_tracked"):
                assert int(got) == int(ref) == n_steps, (spec.name, key)
                continue
            scale = ref.abs().max().item()
            err = (got - ref).abs().max().item()
            assert err <= 1e-7 * max(scale, 1e-3), f"{spec.name} {key}: max |fused - separate| = {err:.2e} (scale {scale:.2e})"


def test_fused_parameters_equal_separate_training(float64_runs):
    _, _, fused, separate = float64_runs
    assert_same_models(SPECS, fused, separate, n_steps=2 * 7)


def test_fused_histories_equal_separate_training(float64_runs):
    _, config, fused, separate = float64_runs
    for (_, f_hist), (_, s_hist) in zip(fused, separate):
        assert len(f_hist.train_loss) == len(f_hist.val_loss) == config.epochs
        np.testing.assert_allclose(f_hist.train_loss, s_hist.train_loss, rtol=1e-10)
        np.testing.assert_allclose(f_hist.val_loss, s_hist.val_loss, rtol=1e-10)
        assert f_hist.train_loss[-1] < f_hist.train_loss[0]  # it learns
        assert f_hist.seconds > 0
    n_models = len(fused)
    for hist in [h for _, h in fused] + [h for _, h in separate]:  # each epoch's wall time, set-up excluded
        assert len(hist.epoch_seconds) == config.epochs and min(hist.epoch_seconds) > 0
    assert sum(fused[0][1].epoch_seconds) <= fused[0][1].seconds * n_models  # one stack: the same epochs for all
    assert all(h.epoch_seconds == fused[0][1].epoch_seconds for _, h in fused)
    assert sum(separate[0][1].epoch_seconds) <= separate[0][1].seconds


def test_fused_clip_scores_equal_separate_training(float64_runs):
    features, config, fused, separate = float64_runs
    for spec, (f_model, _), (s_model, _) in zip(SPECS, fused, separate):
        assert not f_model.training
        f_scores, s_scores = clip_scores(f_model, spec, features, config), clip_scores(s_model, spec, features, config)
        for kind in ("mse", "mahalanobis"):
            np.testing.assert_allclose(f_scores[kind], s_scores[kind], rtol=1e-7, err_msg=f"{spec.name} {kind}")


def test_fused_multichannel_model_in_a_mixed_stack():
    """A 3-input model widens the decoders' input to 24 latent slots; the others are padded."""
    features = make_features(400, torch.float64, names=("mic2", "mic0", "mic0-mic2", "mic0-mic4"))
    specs = [ModelSpec.baseline(2), ModelSpec(0, (2, 4), (0.5, 1.0)), ModelSpec.dual(0, 4, 2.0)]
    config = Config(epochs=1, batch_size=64)
    fused = train_fused(specs, [3, 4, 5], features, config, progress=False)
    separate = train_separately(features, config, specs, [3, 4, 5])
    assert isinstance(fused[1][0], MultiChannelAE)
    for spec, (f_model, f_hist), (s_model, s_hist) in zip(specs, fused, separate):
        for key, ref in s_model.state_dict().items():
            err = (f_model.state_dict()[key] - ref).abs().max().item()
            assert err <= 1e-7 * max(ref.abs().max().item(), 1e-3), f"{spec.name} {key}: {err:.2e}"
        np.testing.assert_allclose(f_hist.val_loss, s_hist.val_loss, rtol=1e-10)


def relative_score_gap(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.max(np.abs(a[k] - b[k]) / np.abs(b[k]))) for k in b)


def test_fused_float32_scores_match_separate_training_to_rounding():
    """In float32, fused and separate clip scores differ no more than rounding noise moves them.

    The yardstick is the reference itself: ``train_model_autograd`` started from initial weights nudged by
    a relative 1e-7 (float32 rounding) moves the clip scores by some amount; the fused run must
    stay within a few times that.
    """
    features = make_features(1000, torch.float32, seed=1)  # 900 trained: 14 batches of 64 and one of 4
    config = Config(epochs=1, batch_size=64)
    fused = train_fused(SPECS, SEEDS, features, config, progress=False)
    separate = train_separately(features, config)
    fused_gap = rounding_gap = 0.0
    for spec, seed, (f_model, f_hist), (s_model, s_hist) in zip(SPECS, SEEDS, fused, separate):
        assert isinstance(f_model, BaselineAE if spec.kind == "baseline" else DualAE)
        assert next(f_model.parameters()).dtype == torch.float32
        np.testing.assert_allclose(f_hist.train_loss, s_hist.train_loss, rtol=5e-3)
        np.testing.assert_allclose(f_hist.val_loss, s_hist.val_loss, rtol=5e-3)
        nudged = init_model(spec, config, seed)
        gen = torch.Generator().manual_seed(99)
        with torch.no_grad():
            for p in nudged.parameters():
                p.mul_(1 + 1e-7 * torch.randn(p.shape, generator=gen))
        train_model_autograd(nudged, [features[s.name] for s in spec.inputs], spec.weights, config, seed=seed, progress=False)
        s_scores = clip_scores(s_model, spec, features, config)
        fused_gap = max(fused_gap, relative_score_gap(clip_scores(f_model, spec, features, config), s_scores))
        rounding_gap = max(rounding_gap, relative_score_gap(clip_scores(nudged, spec, features, config), s_scores))
    assert fused_gap <= max(3 * rounding_gap, 1e-4), f"fused {fused_gap:.1e} vs rounding {rounding_gap:.1e}"
    assert fused_gap < 2e-2


def test_fused_training_is_deterministic():
    """The runner retrains a whole group on resume and relies on getting the same bits back."""
    features = make_features(300, torch.float32)
    config = Config(epochs=1, batch_size=32)
    first, again = (train_fused(SPECS, SEEDS, features, config, progress=False) for _ in range(2))
    for (a, _), (b, _) in zip(first, again):
        for key, value in a.state_dict().items():
            assert torch.equal(value, b.state_dict()[key]), key


def test_padded_decoder_weights_stay_zero():
    """A baseline stacked with a dual AE gets 8 zero latent slots; their weights never move."""
    config = Config()
    specs = [ModelSpec.baseline(0), ModelSpec.dual(0, 4, 1.0)]
    stack = StackedAutoencoders([init_model(s, config, 0) for s in specs], [s.weights for s in specs], config)
    assert stack.dec0_weight.shape == (3, config.hidden_dim, 2 * config.latent_dim)
    optimizer = torch.optim.Adam(stack.parameters(), lr=1e-2)
    x = torch.randn(3, 32, config.input_dim)
    first = stack.dec0_weight.detach().clone()
    for _ in range(3):
        stack.train_step(x)
        optimizer.step()
    pad = stack.dec0_weight[0, :, config.latent_dim :]
    assert torch.count_nonzero(pad) == 0
    assert not torch.equal(stack.dec0_weight[0, :, : config.latent_dim], first[0, :, : config.latent_dim])


def test_nan_input_raises_naming_the_model_and_stays_in_it():
    features = make_features(300, torch.float32)
    features["mic2-mic6"][::7] = float("nan")
    specs = [ModelSpec.baseline(0), ModelSpec.dual(2, 6, 1.0), ModelSpec.dual(0, 4, 1.0)]
    # the baseline is checked first: it must not be contaminated by the dual AE next to it
    with pytest.raises(TrainingDivergedError, match="dual-2-6-a1"):
        train_fused(specs, [0, 0, 0], features, Config(epochs=1, batch_size=32), progress=False)


def test_bad_inputs_are_refused_with_a_reason():
    features = make_features(200, torch.float32)
    config = Config(epochs=1, batch_size=32)
    with pytest.raises(ValueError, match="mic1-mic5"):
        train_fused([ModelSpec.dual(1, 5, 1.0)], [0], features, config, progress=False)
    with pytest.raises(ValueError, match="one seed per model"):
        train_fused(SPECS, [0], features, config, progress=False)
    short = {**features, "mic0-mic4": features["mic0-mic4"][:100]}
    with pytest.raises(ValueError, match="mic0-mic4"):
        train_fused(SPECS, SEEDS, short, config, progress=False)
    with pytest.raises(ValueError, match="float32"):
        train_fused(SPECS, SEEDS, {**features, "mic0": features["mic0"].half()}, config, progress=False)


def _one_step(stack: StackedAutoencoders, x: torch.Tensor):
    losses = stack.train_step(x)
    state = {name: p.grad.clone() for name, p in stack.named_parameters()}
    state.update({name: b.clone() for name, b in stack.named_buffers() if "running" in name})
    return losses, state


def test_compiled_kernels_do_the_same_step():
    """compile=True: the BatchNorm/ReLU passes as torch.compile'd kernels, same gradients and statistics."""
    config = Config(batch_size=32)
    models = [init_model(s, config, 0).double() for s in SPECS]
    weights = [s.weights for s in SPECS]
    eager = StackedAutoencoders(models, weights, config)
    compiled = StackedAutoencoders(models, weights, config, compile=True)
    x = make_features(32, torch.float64)["mic0"].expand(eager.n_networks, 32, 640).contiguous()
    got_losses, got = _one_step(compiled, x)
    if not compiled.compile:
        pytest.skip("torch.compile is unavailable here (the fallback warning says why)")
    assert compiled.compile_seconds > 0
    ref_losses, ref = _one_step(eager, x)
    torch.testing.assert_close(got_losses, ref_losses, rtol=1e-12, atol=0)
    for name, value in ref.items():
        torch.testing.assert_close(got[name], value, rtol=1e-9, atol=1e-12, msg=name)


@pytest.fixture
def torch_threads():
    """``torch.set_num_threads`` for the test; the thread count is restored afterwards."""
    threads = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread(torch_threads):
    """Train on one torch thread, as the runner's grid workers do (restored afterwards)."""
    torch_threads(1)


@pytest.mark.parametrize("dtype, batch", [(torch.float64, 32), (torch.float64, 23), (torch.float32, 32)])
def test_cpu_kernels_do_the_same_step(one_torch_thread, monkeypatch, dtype, batch):
    """On one thread the BatchNorm/ReLU layers run as asdlib.train_kernels' loops: the PyTorch
    passes' losses, gradients and running statistics, to rounding (in the arrays' own precision)."""
    import asdlib.fused as fused

    calls = {"forward": 0, "backward": 0}

    def counted(name, fn):
        def wrapper(*args):
            calls[name] += 1
            return fn(*args)
        return wrapper

    monkeypatch.setattr(fused, "bn_relu_forward", counted("forward", fused.bn_relu_forward))
    monkeypatch.setattr(fused, "bn_relu_backward", counted("backward", fused.bn_relu_backward))
    config = Config(batch_size=batch)
    models = [init_model(s, config, 0).to(dtype) for s in SPECS]
    weights = [s.weights for s in SPECS]
    passes = StackedAutoencoders(models, weights, config, cpu_kernels=False)
    loops = StackedAutoencoders(models, weights, config, cpu_kernels=True, numpy_matmul=False)
    x = make_features(batch, dtype)["mic0"].expand(passes.n_networks, batch, 640).contiguous()
    for _ in range(2):  # the second step starts from the running statistics the first one left
        ref_losses, ref = _one_step(passes, x)
        got_losses, got = _one_step(loops, x)
    n_bn = sum(layer.gamma is not None for layer in loops.layers())
    assert calls == {"forward": 2 * n_bn, "backward": 2 * n_bn}
    rtol, atol = (1e-9, 1e-12) if dtype == torch.float64 else (1e-4, 1e-5)
    torch.testing.assert_close(got_losses, ref_losses, rtol=rtol, atol=0)
    for name, value in ref.items():
        # a Linear bias before a BatchNorm has a gradient of exactly 0 in exact arithmetic: both
        # ways give rounding noise there (1e-16 in float64, 1e-7 in float32), so only atol applies
        torch.testing.assert_close(got[name], value, rtol=rtol, atol=atol, msg=name)


def _torch_and_numpy_stacks(monkeypatch, dtype):
    """The grid stacked twice, products by torch and by NumPy, a batch of 32 for them, and a count of
    the products each library computed (``{numpy: n}``) with the BLAS thread counts NumPy's ran on."""
    import asdlib.fused as fused

    calls, blas_threads = {True: 0, False: 0}, set()
    bmm = fused._bmm

    def counted(a, b, out, numpy):
        calls[numpy] += 1
        if numpy:
            blas_threads.update(lib["num_threads"] for lib in fused.blas_threads().info() if lib["user_api"] == "blas")
        return bmm(a, b, out, numpy)

    monkeypatch.setattr(fused, "_bmm", counted)
    config = Config(batch_size=32)
    models = [init_model(s, config, 0).to(dtype) for s in SPECS]
    weights = [s.weights for s in SPECS]
    by_torch = StackedAutoencoders(models, weights, config, numpy_matmul=False)
    by_numpy = StackedAutoencoders(models, weights, config, numpy_matmul=True)
    x = make_features(32, dtype)["mic0"].expand(by_torch.n_networks, 32, 640).contiguous()
    return by_torch, by_numpy, x, calls, blas_threads


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_numpy_matmul_does_the_same_validation(one_torch_thread, monkeypatch, dtype):
    """The validation pass (eval mode, running statistics) with its products on NumPy, the Linear
    biases folded into BatchNorm's shift and the output layer's residual summed by
    asdlib.train_kernels.residual_loss: torch's per-network sums of squares, to rounding, with
    NumPy's BLAS on one thread; the input is left as it was."""
    by_torch, by_numpy, x, calls, blas_threads = _torch_and_numpy_stacks(monkeypatch, dtype)
    for stack in (by_torch, by_numpy):  # running statistics away from their initial 0 and 1
        stack.train_step(x)
    calls.update({True: 0, False: 0})
    x_before = x.clone()
    want, got = by_torch.eval_sse(x), by_numpy.eval_sse(x)
    assert calls == {False: 0, True: len(by_numpy.layers())} and blas_threads == {1}
    torch.testing.assert_close(x, x_before, rtol=0, atol=0)
    rtol = 1e-10 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got, want, rtol=rtol, atol=0)
    assert bool((got > 0).all())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_numpy_matmul_does_the_same_step(one_torch_thread, monkeypatch, dtype):
    """On one thread the step's products can run as numpy.matmul on the tensors' memory: torch.bmm's
    losses, gradients and running statistics, to rounding; every product of the step goes there,
    with NumPy's BLAS held to one thread."""
    by_torch, by_numpy, x, calls, blas_threads = _torch_and_numpy_stacks(monkeypatch, dtype)
    for _ in range(2):
        ref_losses, ref = _one_step(by_torch, x)
        got_losses, got = _one_step(by_numpy, x)
    n_layers = len(by_numpy.layers())  # per step: a forward product and dW per layer, dX but the first
    assert calls == {False: 2 * (3 * n_layers - 1), True: 2 * (3 * n_layers - 1)}
    assert blas_threads == {1}
    rtol, atol = (1e-9, 1e-12) if dtype == torch.float64 else (1e-4, 1e-5)
    torch.testing.assert_close(got_losses, ref_losses, rtol=rtol, atol=0)
    for name, value in ref.items():
        torch.testing.assert_close(got[name], value, rtol=rtol, atol=atol, msg=name)


def test_numpy_matmul_only_on_one_thread(torch_threads, monkeypatch):
    """NumPy's products where the loops run and torch has one thread (OpenBLAS's threads made one
    model 9x slower on two); ASDLIB_NUMPY_MATMUL=0 or numpy_matmul=False turn them off."""
    from asdlib.fused import resolve_numpy_matmul

    config = Config(batch_size=32)
    one = StackedAutoencoders([init_model(SPECS[0], config, 0)], [SPECS[0].weights], config, numpy_matmul=True)
    x = torch.zeros(1, 32, 640)
    torch_threads(2)
    assert one.uses_cpu_kernels(x) and not one.uses_numpy_matmul(x)
    torch_threads(1)
    assert one.uses_numpy_matmul(x) and not one.uses_numpy_matmul(x.to(torch.bfloat16))  # NumPy has no bfloat16
    assert not StackedAutoencoders([init_model(SPECS[0], config, 0)], [SPECS[0].weights], config, cpu_kernels=False,
                                   numpy_matmul=True).uses_numpy_matmul(x)
    monkeypatch.delenv("ASDLIB_NUMPY_MATMUL", raising=False)
    assert resolve_numpy_matmul(None) is True  # NumPy's wheels bring OpenBLAS
    monkeypatch.setenv("ASDLIB_NUMPY_MATMUL", "0")
    assert resolve_numpy_matmul(None) is False and resolve_numpy_matmul(True) is True
    assert not StackedAutoencoders([init_model(SPECS[0], config, 0)], [SPECS[0].weights], config).uses_numpy_matmul(x)


def test_cpu_kernels_run_on_one_thread_or_for_one_model(torch_threads):
    """The loops take a grid's BatchNorm layers on one thread only, one model's on any number."""
    config = Config(batch_size=32)
    one = StackedAutoencoders([init_model(SPECS[0], config, 0)], [SPECS[0].weights], config)
    grid = StackedAutoencoders([init_model(s, config, 0) for s in SPECS], [s.weights for s in SPECS], config)
    assert one.n_networks <= fused_module.CPU_KERNELS_MAX_NETWORKS < grid.n_networks
    x = torch.zeros(1, 32, 640)
    torch_threads(2)
    assert one.uses_cpu_kernels(x) and not grid.uses_cpu_kernels(x)
    torch_threads(1)
    assert one.uses_cpu_kernels(x) and grid.uses_cpu_kernels(x)
    assert not StackedAutoencoders([init_model(SPECS[0], config, 0)], [SPECS[0].weights], config, cpu_kernels=False).uses_cpu_kernels(x)


def test_one_thread_fused_training_equals_separate_training(one_torch_thread):
    """The whole fused run on one thread (BatchNorm as compiled loops) still trains each model as
    autograd does alone, to float64 rounding."""
    features = make_features(997, torch.float64)
    config = Config(epochs=2, batch_size=128)
    fused = train_fused(SPECS[:2], SEEDS[:2], features, config, progress=False)
    separate = train_separately(features, config, SPECS[:2], SEEDS[:2])
    for (_, f_hist), (_, s_hist) in zip(fused, separate):
        np.testing.assert_allclose(f_hist.train_loss, s_hist.train_loss, rtol=1e-9)
    assert_same_models(SPECS[:2], fused, separate, n_steps=2 * 7)


@pytest.mark.parametrize("spec", SPECS[:2], ids=lambda s: s.kind)
def test_one_model_on_two_threads_trains_as_autograd_does_alone(spec, monkeypatch, torch_threads):
    """On 2 threads one model's BatchNorm layers run as the loops (a spy counts them), and the
    whole run still equals autograd's, to float64 rounding."""
    calls = []
    monkeypatch.setattr(fused_module, "bn_relu_forward", lambda *a: calls.append(1) or BN_RELU_FORWARD(*a))
    features = make_features(997, torch.float64)
    config = Config(epochs=2, batch_size=128)
    torch_threads(2)
    fused = train_fused([spec], [3], features, config, progress=False)
    separate = train_separately(features, config, [spec], [3])
    assert calls, "the one-thread loops did not run"
    np.testing.assert_allclose(fused[0][1].train_loss, separate[0][1].train_loss, rtol=1e-9)
    assert_same_models([spec], fused, separate, n_steps=2 * 7)


def test_compile_failure_falls_back_with_a_warning(monkeypatch):
    import asdlib.fused as fused

    def broken(name):
        def fail(*args):
            raise RuntimeError("no C++ compiler")
        return fail

    monkeypatch.setattr(fused, "_compiled", broken)
    features = make_features(300, torch.float64)
    config = Config(epochs=1, batch_size=32)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        fallback = train_fused(SPECS[:2], SEEDS[:2], features, config, progress=False, compile=True)
    plain = train_fused(SPECS[:2], SEEDS[:2], features, config, progress=False, compile=False)
    for (a, _), (b, _) in zip(fallback, plain):
        for key, value in a.state_dict().items():
            assert torch.equal(value, b.state_dict()[key]), key


def test_compile_setting_comes_from_the_argument_then_the_environment(monkeypatch):
    from asdlib.fused import resolve_compile

    monkeypatch.delenv("ASDLIB_COMPILE", raising=False)
    assert resolve_compile(None) is False  # off by default on a CPU: it did not pay there
    assert resolve_compile(None, "cuda") is True  # on by default on a GPU: it did
    assert resolve_compile(True) is True
    assert resolve_compile(False, torch.device("cuda")) is False
    monkeypatch.setenv("ASDLIB_COMPILE", "1")
    assert resolve_compile(None) is True
    assert resolve_compile(False) is False
    monkeypatch.setenv("ASDLIB_COMPILE", "0")
    assert resolve_compile(None) is False
    assert resolve_compile(None, "cuda") is False
    assert resolve_compile(True) is True
    monkeypatch.delenv("ASDLIB_COMPILE")
    features = make_features(300, torch.float32)
    stack = fused_module.fit_models([init_model(SPECS[0], Config(), 0)], [[features["mic0"]]], [SPECS[0].weights], [0],
                                    Config(epochs=1), names=["m"], progress=False)[1]
    assert stack.compile is False and stack.compile_seconds == 0.0


def test_cuda_graph_setting_comes_from_the_argument_then_the_environment(monkeypatch):
    from asdlib.fused import resolve_cuda_graphs

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv("ASDLIB_CUDA_GRAPHS", raising=False)
    assert resolve_cuda_graphs(None, cuda) is True  # on by default on a GPU
    assert resolve_cuda_graphs(None, cpu) is False
    assert resolve_cuda_graphs(False, cuda) is False
    monkeypatch.setenv("ASDLIB_CUDA_GRAPHS", "0")
    assert resolve_cuda_graphs(None, cuda) is False
    assert resolve_cuda_graphs(True, cuda) is True
    with pytest.raises(ValueError, match="cuda_graphs=True needs CUDA tensors; the features are on cpu"):
        train_fused(SPECS[:1], SEEDS[:1], make_features(300, torch.float32), Config(epochs=1, batch_size=32),
                    progress=False, cuda_graphs=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (CI has none; run on a GPU machine)")
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_graph_training_is_the_eager_training(compile):
    """The step replayed as a CUDA graph runs the eager step's kernels: the same models, in float64."""
    features = {k: v.cuda() for k, v in make_features(2000, torch.float64).items()}
    config = Config(epochs=2, batch_size=128)  # 14 full steps per epoch: 3 warm-up, capture, replays
    eager = train_fused(SPECS, SEEDS, features, config, progress=False, compile=compile, cuda_graphs=False)
    graphed = train_fused(SPECS, SEEDS, features, config, progress=False, compile=compile, cuda_graphs=True)
    for (a, ha), (b, hb) in zip(eager, graphed):
        np.testing.assert_allclose(hb.train_loss + hb.val_loss, ha.train_loss + ha.val_loss, rtol=1e-12)
        for key, value in a.state_dict().items():
            torch.testing.assert_close(b.state_dict()[key], value, rtol=1e-10, atol=1e-12, msg=key)
