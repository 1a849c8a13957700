"""Experiment specs: what a grid run trains, on which data, with which settings.

The paper's Table 1 is a grid: machine types x {baseline, dual AE with mic pairs (0,4), (2,6) x
α ∈ {0.1, 0.5, 2, 10}} x {MSE, Mahalanobis} x {AUC, pAUC}. An :class:`ExperimentSpec` describes such a
grid plus its data source and training settings. Named profiles:

* ``paper`` -- the paper's settings: 1,000 training and 200 test clips per machine type, 50 epochs,
  batch 256, the whole grid, 5 seeds (the paper reports one run; we repeat to measure spread).
* ``book`` -- what `make book` builds by default: the whole grid (and the baseline on the mean of the
  channels) on 10 s clips, 60 training and 320 test clips per machine type, 5 epochs at batch 64,
  3 seeds; trained well enough to be evidence, with intervals a few points wide, in minutes on 2
  CPU cores.
* ``quick`` -- a labelled fast look: 5 s clips, 40 training clips, 10 epochs, 2 seeds; its
  autoencoders are undertrained (near or below chance).
* ``smoke`` -- a tiny grid for tests.

The data source is the embedded simulator (:mod:`asdlib.simulate`) unless ``data_root`` names a
real MIMII folder.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from .config import MACHINES, N_MICS, Config
from .data import SPLIT_GROUPS
from .modelspec import ModelSpec
from .scoring import SCORE_KINDS


#: Fewest training clips of a grid: the gamma threshold is fitted to at least 3 normal scores.
MIN_TRAIN = 3


class SpecError(ValueError):
    """An invalid experiment spec; the message says which field and what is allowed."""


@dataclass(frozen=True)
class ExperimentSpec:
    """A grid of models to train and evaluate.

    Parameters
    ----------
    profile : str
        Name of the profile it came from (used in the run's folder name).
    data_root : str or None
        A MIMII folder; None uses the simulator (``simulator`` settings) and says so everywhere.
    simulator : dict
        Settings for :func:`asdlib.simulate.simulate_dataset` when ``data_root`` is None
        (``snrs_db``, ``duration_s``, ``anomaly_strength``, ``anomaly_kinds``, ``seed``).
    machines : list of str
    mic_pairs : list of [int, int]
        (reference, other) pairs for the dual AE.
    alphas : list of float
        α values (loss and score weight of the difference channel).
    baseline_mic : int
        The baseline's single channel (0, as the earlier MIMII baseline).
    baseline_mean : bool
        Also train the baseline on the mean of the 8 channels (model ``baseline-mean``, ``mic_pair``
        ``"mean"`` in the tables): what the DCASE 2023 baseline's loader gives it for an 8-channel
        MIMII file. The paper does not say which input its baseline had.
    scores : list of str
        ``"mse"`` and/or ``"mahalanobis"`` (both come from the same trained models).
    seeds : list of int
        Training seeds: each seed trains every model again (initial weights, hold-out, batch order).
    split_seed : int
        Seed of the train/test split (fixed across training seeds, so seeds share test clips).
    n_train, n_test : int
        Clips per machine type (paper: 1,000 normal for training; 200 for test).
    anomalous_fraction : float
        Share of abnormal clips in the test set (the paper does not say; 0.5).
    snrs_db : list of float or None
        Keep only these SNR levels of the data (None: all, as the paper mixes noise levels).
    config : dict
        Overrides of :class:`asdlib.config.Config` (e.g. ``{"epochs": 50}``).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    fused : bool
        Train a cell's models as one stacked computation (:mod:`asdlib.fused`); False trains one
        model at a time (the same arithmetic in every step; over a run the two differ as much as
        two seeds do, because training is chaotic, and both are valid runs).
    n_jobs : int
        Processes for simulation and feature extraction.
    models : list of dict or None
        Replaces the paper's grid of models with these (``ModelSpec.to_dict()`` form, e.g.
        ``{"ref": 0, "others": [4, 2], "alphas": [1, 1]}``); None: the baseline and pairs x alphas.
    split_groups : {"recording", "clip"}
        Unit the split keeps on one side (:func:`asdlib.data.split_machine`): ``"recording"``
        (default) never puts one MIMII recording in training at one SNR and in the test at
        another; ``"clip"`` draws clips independently (the leak, for comparison).
    """

    profile: str = "custom"
    data_root: str | None = None
    simulator: dict = field(default_factory=dict)
    machines: list = field(default_factory=lambda: list(MACHINES))
    mic_pairs: list = field(default_factory=lambda: [[0, 4], [2, 6]])
    alphas: list = field(default_factory=lambda: [0.1, 0.5, 2.0, 10.0])
    baseline_mic: int = 0
    baseline_mean: bool = False
    scores: list = field(default_factory=lambda: list(SCORE_KINDS))
    seeds: list = field(default_factory=lambda: [0])
    split_seed: int = 0
    n_train: int = 1000
    n_test: int = 200
    anomalous_fraction: float = 0.5
    snrs_db: list | None = None
    config: dict = field(default_factory=dict)
    device: str = "auto"
    fused: bool = True
    n_jobs: int = 2
    models: list | None = None
    split_groups: str = "recording"

    def __post_init__(self) -> None:
        self.validate()

    # -- validation --------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`SpecError` for anything the runner could not do (types and ranges of every field)."""
        _check_types(self)
        if not self.machines:
            raise SpecError("machines is empty; choose some of " + ", ".join(MACHINES))
        unknown = [m for m in self.machines if m not in MACHINES]
        if unknown:
            raise SpecError(f"unknown machine type(s) {unknown}; MIMII has {list(MACHINES)}")
        for pair in self.mic_pairs:
            if len(pair) != 2:
                raise SpecError(f"mic pair {pair} must have two microphones, e.g. [0, 4]")
            for mic in pair:
                if not (_is_int(mic) and 0 <= mic < N_MICS):
                    raise SpecError(f"microphone {mic!r} in pair {pair} is outside 0-{N_MICS - 1}")
            if pair[0] == pair[1]:
                raise SpecError(f"mic pair {pair} uses microphone {pair[0]} twice; a difference needs two microphones")
        if not (isinstance(self.baseline_mic, int) and 0 <= self.baseline_mic < N_MICS):
            raise SpecError(f"baseline_mic {self.baseline_mic!r} is outside 0-{N_MICS - 1}")
        for a in self.alphas:
            if not (_is_number(a) and math.isfinite(a) and a >= 0):
                raise SpecError(f"alpha {a!r} must be a finite number >= 0")
        bad = [s for s in self.scores if s not in SCORE_KINDS]
        if bad or not self.scores:
            raise SpecError(f"scores {self.scores} must be a non-empty subset of {list(SCORE_KINDS)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise SpecError(f"seeds {self.seeds} must be a non-empty list of distinct integers")
        if self.n_train < MIN_TRAIN:
            raise SpecError(f"n_train (--n-train) {self.n_train} is too few: the threshold's gamma fit needs at least "
                            f"{MIN_TRAIN} normal training clips")
        if self.n_test < 2:
            raise SpecError(f"n_test (--n-test) must be >= 2, got {self.n_test}")
        if not 0 < self.anomalous_fraction < 1:
            raise SpecError(f"anomalous_fraction must be in (0, 1), got {self.anomalous_fraction}")
        if self.n_jobs < 1:
            raise SpecError(f"n_jobs must be >= 1, got {self.n_jobs}")
        if self.split_groups not in SPLIT_GROUPS:
            raise SpecError(f"split_groups {self.split_groups!r} must be one of {list(SPLIT_GROUPS)}")
        if self.device not in ("auto", "cpu", "cuda") and not str(self.device).startswith("cuda:"):
            raise SpecError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        _check_simulator(self)
        try:
            self.model_config()
        except (TypeError, ValueError) as err:
            raise SpecError(f"config overrides: {err}") from None
        try:
            names = [ms.name for ms in self.model_specs()]
        except (KeyError, TypeError, ValueError) as err:
            raise SpecError(f"models {self.models}: {err}") from None
        if len(set(names)) != len(names):
            raise SpecError(f"the grid has duplicate models: {names}")

    # -- derived objects ---------------------------------------------------------------------
    def model_config(self) -> Config:
        """:class:`Config` with this spec's overrides."""
        return Config.from_dict({**Config().to_dict(), **self.config})

    def model_specs(self) -> list[ModelSpec]:
        """The models of one (machine, seed) cell group: the baseline, then each pair x α."""
        if self.models is not None:
            return [ModelSpec.from_dict(m) for m in self.models]
        specs = [ModelSpec.baseline(self.baseline_mic)]
        if self.baseline_mean:
            specs.append(ModelSpec.baseline("mean"))
        specs += [ModelSpec.dual(r, o, a) for r, o in self.mic_pairs for a in self.alphas]
        return specs

    @property
    def simulated(self) -> bool:
        """True when the data comes from the simulator."""
        return self.data_root is None

    def simulator_settings(self) -> dict:
        """Simulator settings with defaults filled in: enough clips for the split, nothing more."""
        n_ab = round(self.n_test * self.anomalous_fraction)
        defaults = {
            "snrs_db": [0.0],
            "duration_s": 10.0,
            "seed": 0,
            "anomaly_kinds": ["spectral", "spatial"],
            "n_normal": self.n_train + self.n_test - n_ab,
            "n_abnormal": n_ab,
        }
        return {**defaults, **self.simulator}

    def n_cells(self) -> int:
        """Number of (machine, seed, model) cells."""
        return len(self.machines) * len(self.seeds) * len(self.model_specs())

    # -- identity and I/O --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def digest(self) -> str:
        """Hash of everything that changes results (not ``device``, ``fused``, ``n_jobs``, ``profile``)."""
        d = self.to_dict()
        for key in ("device", "fused", "n_jobs", "profile"):
            d.pop(key)
        if d["models"] is None:
            d.pop("models")  # keeps digests of paper-grid specs stable
        d["config"] = self.model_config().to_dict()
        if self.simulated:
            d["simulator"] = self.simulator_settings()
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]

    def run_id(self) -> str:
        """Folder name of the run: ``<profile>-<digest>``."""
        return f"{self.profile}-{self.digest()}"

    def replace(self, **changes: Any) -> "ExperimentSpec":
        """A copy with ``changes`` (validated)."""
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ExperimentSpec":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpecError(f"unknown spec field(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> "ExperimentSpec":
        """Read a YAML or JSON file (a ``profile:`` key starts from that profile; none, or ``custom``, from the defaults).

        Raises
        ------
        SpecError
            The file is missing, not YAML, not a mapping, names an unknown profile, or holds a bad field.
        """
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"spec file {str(path)!r} does not exist")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            problem = getattr(err, "problem", None) or type(err).__name__
            raise SpecError(f"{path}: not valid YAML ({problem}{where}); fix the file or start from `asdlib run --profile`") from None
        except (OSError, UnicodeDecodeError) as err:
            raise SpecError(f"{path}: cannot read the spec file ({err})") from None
        if not isinstance(values, dict):
            raise SpecError(f"{path}: expected a mapping of spec fields, got {type(values).__name__}")
        base = values.pop("profile", "custom")
        if base in PROFILES:
            return profile(base, **values)
        if base != "custom":
            raise SpecError(f"{path}: unknown profile {base!r}; choose one of {sorted(PROFILES)}, "
                            "or leave `profile` out (or write `custom`) for a grid of the fields given")
        return cls.from_dict({"profile": base, **values})


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_types(spec: "ExperimentSpec") -> None:
    """Raise :class:`SpecError` naming the first field whose type is wrong (YAML ``"8"``, ``fan``, ``true``)."""
    def need(ok: bool, name: str, what: str) -> None:
        if not ok:
            raise SpecError(f"{name} must be {what}, got {getattr(spec, name)!r}")

    need(isinstance(spec.profile, str), "profile", "a string")
    need(spec.data_root is None or isinstance(spec.data_root, str), "data_root", "a folder path (string) or null")
    need(isinstance(spec.simulator, dict), "simulator", "a mapping of simulator settings")
    need(isinstance(spec.machines, (list, tuple)) and all(isinstance(m, str) for m in spec.machines),
         "machines", "a list of machine types, e.g. [fan] (not a bare string)")
    need(isinstance(spec.mic_pairs, (list, tuple)) and all(isinstance(p, (list, tuple)) for p in spec.mic_pairs),
         "mic_pairs", "a list of [reference, other] pairs, e.g. [[0, 4]]")
    need(isinstance(spec.alphas, (list, tuple)), "alphas", "a list of numbers, e.g. [0.5, 2]")
    need(_is_int(spec.baseline_mic), "baseline_mic", "an integer microphone index")
    need(isinstance(spec.baseline_mean, bool), "baseline_mean", "true or false")
    need(isinstance(spec.scores, (list, tuple)), "scores", f"a list, a subset of {list(SCORE_KINDS)}")
    need(isinstance(spec.seeds, (list, tuple)) and all(_is_int(s) for s in spec.seeds),
         "seeds", "a list of integers, e.g. [0, 1]")
    for name in ("split_seed", "n_train", "n_test", "n_jobs"):
        need(_is_int(getattr(spec, name)), name, "an integer (not a string or a boolean)")
    need(_is_number(spec.anomalous_fraction), "anomalous_fraction", "a number in (0, 1)")
    need(spec.snrs_db is None or (isinstance(spec.snrs_db, (list, tuple)) and all(_is_number(v) and math.isfinite(v) for v in spec.snrs_db)),
         "snrs_db", "a list of SNRs in dB, e.g. [-6, 0, 6], or null")
    need(isinstance(spec.config, dict), "config", "a mapping of Config overrides, e.g. {epochs: 5}")
    need(isinstance(spec.device, str), "device", "'auto', 'cpu' or 'cuda'")
    need(isinstance(spec.fused, bool), "fused", "true or false")
    need(spec.models is None or isinstance(spec.models, (list, tuple)), "models", "a list of model specs or null")
    need(isinstance(spec.split_groups, str), "split_groups", f"one of {list(SPLIT_GROUPS)}")


def _is_list_of(check) -> Any:
    return lambda value: isinstance(value, (list, tuple)) and all(check(v) for v in value)


#: What a spec's ``simulator`` mapping may set (keyword arguments of :func:`asdlib.simulate.simulate_dataset`),
#: and what each must be.
SIMULATOR_SETTINGS: dict[str, tuple[str, Any]] = {
    "snrs_db": ("a list of SNRs in dB, e.g. [-6, 0, 6]", _is_list_of(_is_number)),
    "duration_s": ("a number of seconds, e.g. 10", _is_number),
    "seed": ("an integer", _is_int),
    "anomaly_kinds": ("a list of anomaly kinds, e.g. [spectral, spatial]", _is_list_of(lambda v: isinstance(v, str))),
    "anomaly_strength": ("a number of dB, e.g. -10", _is_number),
    "machine_ids": ("a list of unit IDs, e.g. [0, 2, 4, 6]", _is_list_of(_is_int)),
    "n_normal": ("a whole number of clips", _is_int),
    "n_abnormal": ("a whole number of clips", _is_int),
}


def _check_simulator(spec: "ExperimentSpec") -> None:
    """Raise :class:`SpecError` naming the first bad ``simulator.<setting>`` (unknown, wrong type, out of range)."""
    unknown = sorted(set(spec.simulator) - set(SIMULATOR_SETTINGS))
    if unknown:
        raise SpecError(f"simulator: unknown setting(s) {unknown}; known: {list(SIMULATOR_SETTINGS)}")
    for key, value in spec.simulator.items():
        what, ok = SIMULATOR_SETTINGS[key]
        if not ok(value):
            raise SpecError(f"simulator.{key} must be {what}, got {value!r}")
    if not spec.simulated:  # the settings are not used; their ranges are checked where they are
        return
    from .simulate.dataset import DEFAULT_ANOMALY_STRENGTH, MACHINE_IDS, _check_dataset_args  # numba: only when simulating

    settings = spec.simulator_settings()
    names = {key: f"simulator.{key}" for key in SIMULATOR_SETTINGS}
    try:
        _check_dataset_args(list(spec.machines), list(settings.get("machine_ids", MACHINE_IDS)), settings["snrs_db"],
                            settings["n_normal"], settings["n_abnormal"], settings["duration_s"], settings["anomaly_kinds"],
                            1, settings.get("anomaly_strength", DEFAULT_ANOMALY_STRENGTH), names=names)
    except ValueError as err:
        raise SpecError(str(err)) from None


# Named profiles. ``book`` is what `make book` runs: the whole grid on 2 CPU cores in minutes, sized
# so that its numbers are evidence (trained models, 3 seeds, 200 test clips per machine type, intervals
# a few points wide; the book's Choices page gives the measured trade-off). ``quick`` is a labelled
# fast look (5 s clips, 40 training clips, batch 64 for more optimizer steps per vector): its
# autoencoders are undertrained and score near or below chance. ``smoke`` is for tests.
PROFILES: dict[str, dict[str, Any]] = {
    "paper": dict(baseline_mean=True, n_train=1000, n_test=200, seeds=[0, 1, 2, 3, 4], config={"epochs": 50, "batch_size": 256}),
    "book": dict(
        baseline_mean=True,
        n_train=60,
        n_test=320,
        seeds=[0, 1, 2],
        config={"epochs": 5, "batch_size": 64},
        simulator={"duration_s": 10.0},
    ),
    "quick": dict(n_train=40, n_test=40, seeds=[0, 1], config={"epochs": 10, "batch_size": 64}, simulator={"duration_s": 5.0}),
    "smoke": dict(
        machines=["fan", "valve"],
        mic_pairs=[[0, 4]],
        alphas=[0.5, 2.0],
        n_train=6,
        n_test=6,
        seeds=[0],
        config={"epochs": 2},
        simulator={"duration_s": 2.0},
    ),
}


def profile(name: str, **overrides: Any) -> ExperimentSpec:
    """A named profile with ``overrides`` applied (e.g. ``profile("quick", machines=["fan"])``).

    ``config`` overrides are merged into the profile's (so ``config={"epochs": 5}`` keeps its other
    settings); so are ``simulator`` overrides.
    """
    if name not in PROFILES:
        raise SpecError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    base = dict(PROFILES[name])
    for key in ("config", "simulator"):
        if key in overrides:
            overrides[key] = {**base.get(key, {}), **overrides[key]}
    unknown = sorted(set(overrides) - {f.name for f in fields(ExperimentSpec)})
    if unknown:
        raise SpecError(f"unknown spec field(s) {unknown}")
    return ExperimentSpec(profile=name, **{**base, **overrides})


def spec_from_parameters(
    profile_name: str = "book",
    *,
    data_root: str | None = None,
    machines: list | None = None,
    mic_pairs: list | None = None,
    alphas: list | None = None,
    seeds: list | None = None,
    epochs: int | None = None,
    n_train: int | None = None,
    n_test: int | None = None,
    device: str = "auto",
    **more: Any,
) -> ExperimentSpec:
    """A spec from a notebook's papermill parameters: a profile, with every non-None value overriding it."""
    overrides: dict[str, Any] = {k: v for k, v in more.items() if v is not None}
    for key, value in dict(data_root=data_root, machines=machines, mic_pairs=mic_pairs, alphas=alphas, seeds=seeds,
                           n_train=n_train, n_test=n_test, device=device).items():
        if value is not None:
            overrides[key] = value
    if data_root is not None:
        overrides["data_root"] = str(Path(data_root).expanduser().resolve())
    if epochs is not None:
        overrides["config"] = {**overrides.get("config", {}), "epochs": int(epochs)}
    return profile(profile_name, **overrides)


def default_results_dir() -> Path:
    """``$ASDLIB_RESULTS``, else ``results/`` at the repository root (found upward from the cwd), else ``./results``."""
    import os

    if os.environ.get("ASDLIB_RESULTS"):
        return Path(os.environ["ASDLIB_RESULTS"])
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "_config.yml").is_file() and (folder / "asdlib").is_dir():
            return folder / "results"
    return here / "results"
