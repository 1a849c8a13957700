"""The decision threshold: a gamma distribution fitted to normal scores, and its 90th percentile.

As the DCASE baseline does (paper, section 2), a gamma distribution (shape, location and scale
free: ``scipy.stats.gamma.fit``) is fitted to anomaly scores of normal training data, and a clip is
called anomalous when its score is strictly greater than the distribution's ``percentile`` point.

Which data: the baseline fits the scores of training *batches*; we fit the clip-level scores of the
normal *training clips* -- the same unit the test scores have. This is a documented choice
(``GammaThreshold`` fits whatever scores it is given).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class GammaThreshold:
    """Gamma fit to normal scores; ``threshold_`` is its ``percentile`` point.

    Parameters
    ----------
    percentile : float
        In (0, 1); the paper's 0.9.

    Attributes
    ----------
    shape_, loc_, scale_ : float
        Fitted gamma parameters.
    threshold_ : float
        ``gamma.ppf(percentile, shape_, loc_, scale_)``.
    """

    percentile: float = 0.9
    shape_: float = float("nan")
    loc_: float = float("nan")
    scale_: float = float("nan")
    threshold_: float = float("nan")

    def fit(self, scores) -> "GammaThreshold":
        """Fit to normal scores (at least 3, finite, not all equal)."""
        if not 0 < self.percentile < 1:
            raise ValueError(f"percentile must be in (0, 1), got {self.percentile}")
        scores = np.asarray(scores, dtype=np.float64).ravel()
        if len(scores) < 3:
            raise ValueError(f"a gamma fit needs at least 3 normal scores, got {len(scores)}")
        if not np.all(np.isfinite(scores)):
            raise ValueError("scores contain NaN or Inf; cannot fit the gamma threshold")
        if np.ptp(scores) == 0:
            raise ValueError("all normal scores are equal; a gamma distribution cannot be fitted")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            shape, loc, scale = stats.gamma.fit(scores)
        threshold = stats.gamma.ppf(self.percentile, shape, loc=loc, scale=scale)
        if not np.isfinite(threshold):  # a degenerate free fit: fall back to loc fixed below the data
            shape, loc, scale = stats.gamma.fit(scores, floc=scores.min() - np.std(scores))
            threshold = stats.gamma.ppf(self.percentile, shape, loc=loc, scale=scale)
        if not np.isfinite(threshold):
            raise ValueError(f"the gamma fit to {len(scores)} normal scores gives no finite threshold ({threshold}); "
                             "train on more (or more varied) normal clips")
        self.shape_, self.loc_, self.scale_, self.threshold_ = float(shape), float(loc), float(scale), float(threshold)
        return self

    def predict(self, scores) -> np.ndarray:
        """1 where ``score > threshold_`` (anomalous), else 0."""
        if not np.isfinite(self.threshold_):
            raise ValueError("GammaThreshold is not fitted; call fit(normal_scores) first")
        return (np.asarray(scores) > self.threshold_).astype(int)

    def to_dict(self) -> dict:
        return {"percentile": self.percentile, "shape": self.shape_, "loc": self.loc_, "scale": self.scale_, "threshold": self.threshold_}

    @classmethod
    def from_dict(cls, d: dict) -> "GammaThreshold":
        """A fitted threshold from :meth:`to_dict`'s mapping, checked.

        Raises
        ------
        KeyError
            A key is missing.
        ValueError
            A value is not a finite number, or ``percentile`` is outside (0, 1); the message names the key.
        """
        values = {}
        for key in ("percentile", "shape", "loc", "scale", "threshold"):
            value = d[key]
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
                raise ValueError(f"{key} {value!r} is not a finite number")
            values[key] = float(value)
        if not 0 < values["percentile"] < 1:
            raise ValueError(f"percentile {values['percentile']!r} is outside (0, 1)")
        return cls(values["percentile"], values["shape"], values["loc"], values["scale"], values["threshold"])
