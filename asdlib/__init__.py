"""asdlib: anomalous sound detection with spatial information.

The reproducible companion of C. Luzón-Álvarez, A. M. Torres-Aranda, M. Cobos, F. J. Ferri,
"Exploiting spatial information for anomaly detection in industrial machines using autoencoders",
Forum Acusticum Euronoise 2025.

Modules, one job each: :mod:`~asdlib.data` (MIMII layout, splits, loading),
:mod:`~asdlib.download` (the real dataset), :mod:`~asdlib.simulate` (the embedded default data),
:mod:`~asdlib.features` (log-mel, 640-d vectors, the difference channel), :mod:`~asdlib.cache`,
:mod:`~asdlib.models` (baseline and dual AE), :mod:`~asdlib.train`, :mod:`~asdlib.fused` (the grid
trained as one stacked computation), :mod:`~asdlib.scoring` (MSE, Mahalanobis, α-combination),
:mod:`~asdlib.threshold` (gamma), :mod:`~asdlib.metrics` (AUC, pAUC, DeLong),
:mod:`~asdlib.detector` (scikit-learn-style API), :mod:`~asdlib.experiments`,
:mod:`~asdlib.runner`, :mod:`~asdlib.results`, :mod:`~asdlib.cli`.
"""
from importlib import import_module
from importlib.metadata import version

__version__ = version("asdlib")

_LAZY = {
    "Config": "config",
    "AutoencoderDetector": "detector",
    "ExperimentSpec": "experiments",
    "profile": "experiments",
    "run_experiment": "runner",
    "ResultsStore": "results",
    "scan_mimii": "data",
    "split_machine": "data",
    "load_clip": "data",
    "ModelSpec": "modelspec",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):  # lazy: `import asdlib` stays fast (torch loads on first use)
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'asdlib' has no attribute {name!r}")
