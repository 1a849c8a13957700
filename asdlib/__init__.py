"""asdlib: anomalous sound detection with spatial information.

The reproducible companion of C. Luzón-Álvarez, A. M. Torres-Aranda, M. Cobos, F. J. Ferri,
"Exploiting spatial information for anomaly detection in industrial machines using autoencoders",
Forum Acusticum Euronoise 2025.

Modules, one job each: :mod:`~asdlib.geometry` (the array), :mod:`~asdlib.config`,
:mod:`~asdlib.data` (MIMII layout, splits, loading), :mod:`~asdlib.datasets` (where a run's clips
come from), :mod:`~asdlib.download` (the real dataset), :mod:`~asdlib.simulate` (the embedded
default data), :mod:`~asdlib.features` (log-mel, 640-d vectors, the difference channel),
:mod:`~asdlib.cache`, :mod:`~asdlib.fileio` (atomic writes, hashes), :mod:`~asdlib.modelspec`,
:mod:`~asdlib.models` (baseline, dual and N-channel AE), :mod:`~asdlib.train`, :mod:`~asdlib.fused`
(a grid trained as one stacked computation), :mod:`~asdlib.checkpoint`, :mod:`~asdlib.scoring`
(calibration, MSE, Mahalanobis, α-combination), :mod:`~asdlib.threshold` (gamma),
:mod:`~asdlib.metrics` (AUC, pAUC, DeLong), :mod:`~asdlib.intervals` (bootstrap over clips and
seeds), :mod:`~asdlib.detector` (scikit-learn-style API), :mod:`~asdlib.experiments`,
:mod:`~asdlib.runner`, :mod:`~asdlib.distributed` (Dask), :mod:`~asdlib.results`,
:mod:`~asdlib.tables`, :mod:`~asdlib.claims`, :mod:`~asdlib.spatial`, :mod:`~asdlib.sweep`,
:mod:`~asdlib.plots`, :mod:`~asdlib.book` and :mod:`~asdlib.book_data` (what the book's pages
call), :mod:`~asdlib.cli`.
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
