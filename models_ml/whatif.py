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

from models_ml import artifacts
from models_ml.artifacts import SavedModel
from models_ml.decision import band
from models_ml.errors import UsageError
from models_ml.reasons import explain


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


def what_if(values: dict[str, float], model: str | SavedModel | None = None,
            home: str | Path | None = None, reference: dict[str, float] | None = None) -> WhatIf:
    """Score one customer profile given as {feature: value}; unknown feature names are an error.
    Missing values take the model's training medians; reasons compare with `reference` (the
    medians of the population scored at that as_of), or those training medians."""
    saved = model if isinstance(model, SavedModel) else load_model(model, home)
    features, medians = saved.features, saved.medians
    unknown = sorted(set(values) - set(features))
    if unknown:
        raise UsageError(f"unknown feature(s) {', '.join(unknown)}; the model uses {', '.join(features)}")
    filled = {f: float(values[f]) if values.get(f) is not None and not _isnan(values[f]) else medians[f]
              for f in features}
    base = np.array([[filled[f] for f in features]], float)
    probability = float(saved.probabilities(base)[0])
    typical = {**medians, **(reference or {})}
    reasons = explain(base, features, typical, saved.probabilities)[0]
    return WhatIf(
        probability=probability,
        risk_band=band(probability, saved.meta["risk_bands"]),
        reasons=reasons,
        features=filled,
        model_run_id=saved.run_id,
    )


def _isnan(v) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return False
