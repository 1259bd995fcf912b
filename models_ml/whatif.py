"""What-if scoring for the dashboard's form, without a JVM.

`what_if({"days_since_last_activity": 9, "is_paid": 0})` fills the features it is not given
with the population medians saved with the model, and returns the calibrated probability, the
risk band and the top-3 reasons, exactly as `score` would (same calibrator, bands and reason
rule). It evaluates the model's JVM-free copy (`portable`) with numpy, so the dashboard never
starts Spark or touches the Derby metastore.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from models_ml import artifacts, portable
from models_ml.artifacts import SavedModel
from models_ml.decision import band
from models_ml.errors import UsageError
from models_ml.reasons import top_reasons


@dataclass(frozen=True)
class WhatIf:
    probability: float
    risk_band: str
    reasons: list[dict]   # feature, value, median, text, push (largest push first)
    features: dict[str, float]  # the values used, after filling medians
    model_run_id: str


@lru_cache(maxsize=8)
def _load(spec: str | None, home: str) -> SavedModel:
    return artifacts.resolve(spec, Path(home))


def load_model(model: str | None = None, home: str | Path | None = None) -> SavedModel:
    """The saved model (`latest` by default) of the lakehouse at `home` (default: SPARKIFY_HOME)."""
    if home is None:
        from sparkify.settings import load

        home = load().home
    return _load(model, str(Path(home).resolve()))


def _probabilities(saved: SavedModel, rows: np.ndarray) -> np.ndarray:
    """Calibrated probabilities for rows over `saved.features` (NaN = use the median)."""
    exported = saved.meta["portable"]
    index = {name: i for i, name in enumerate(saved.features)}
    x = rows[:, [index[name] for name in exported["inputs"]]]
    return np.clip(saved.calibrator.apply(portable.raw_scores(exported, x)), 0.0, 1.0)


def what_if(values: dict[str, float], model: str | SavedModel | None = None,
            home: str | Path | None = None) -> WhatIf:
    """Score one customer profile given as {feature: value}; unknown feature names are an error."""
    saved = model if isinstance(model, SavedModel) else load_model(model, home)
    features, medians = saved.features, saved.medians
    unknown = sorted(set(values) - set(features))
    if unknown:
        raise UsageError(f"unknown feature(s) {', '.join(unknown)}; the model uses {', '.join(features)}")
    filled = {f: float(values[f]) if values.get(f) is not None and not _isnan(values[f]) else medians[f]
              for f in features}
    base = np.array([filled[f] for f in features], float)
    rows = np.tile(base, (len(features) + 1, 1))
    for i, f in enumerate(features):
        rows[i + 1, i] = medians[f]
    p = _probabilities(saved, rows)
    pushes = {f: float(p[0] - p[i + 1]) for i, f in enumerate(features)}
    return WhatIf(
        probability=float(p[0]),
        risk_band=band(float(p[0]), saved.meta["risk_bands"]),
        reasons=top_reasons(pushes, filled, medians),
        features=filled,
        model_run_id=saved.run_id,
    )


def _isnan(v) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False
