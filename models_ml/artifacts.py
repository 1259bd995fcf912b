"""Saved models on disk: `$SPARKIFY_HOME/models/<run_id>/` holds the Spark PipelineModel
(`pipeline/`) and `model.json` (calibrator, threshold, risk bands, feature medians and the
JVM-free copy used by what-if). `models/latest` is a text file naming the selected run."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models_ml import portable
from models_ml.calibration import Calibrator
from models_ml.errors import UsageError

META_FILE = "model.json"
PIPELINE_DIR = "pipeline"
LATEST = "latest"


def new_run_id(now: dt.datetime | None = None) -> str:
    """Sortable and unique: UTC time to the second plus 6 random hex digits."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class SavedModel:
    path: Path
    meta: dict

    @property
    def run_id(self) -> str:
        return self.meta["run_id"]

    @property
    def calibrator(self) -> Calibrator:
        return Calibrator.from_dict(self.meta["calibrator"])

    @property
    def features(self) -> list[str]:
        return list(self.meta["features"])

    @property
    def medians(self) -> dict[str, float]:
        return dict(self.meta["medians"])

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for rows over `features` (NaN = the imputer's median), by the
        model's numpy copy: no JVM, and the same numbers as the Spark pipeline."""
        exported = self.meta["portable"]
        index = {name: i for i, name in enumerate(self.features)}
        x = np.atleast_2d(np.asarray(rows, float))[:, [index[name] for name in exported["inputs"]]]
        return np.clip(self.calibrator.apply(portable.raw_scores(exported, x)), 0.0, 1.0)

    def load_pipeline(self):
        from pyspark.ml import PipelineModel

        return PipelineModel.load(str(self.path / PIPELINE_DIR))


def models_dir(home: Path) -> Path:
    return home / "models"


def save(home: Path, run_id: str, pipeline, meta: dict) -> Path:
    """Write the model directory, model.json last and by rename (never half-written). `latest`
    is moved separately, once the run is recorded (`point_latest`)."""
    target = models_dir(home) / run_id
    pipeline.write().overwrite().save(str(target / PIPELINE_DIR))
    _write_atomically(target / META_FILE, json.dumps(meta, indent=1, default=str))
    return target


def point_latest(home: Path, run_id: str) -> None:
    """Make `models/latest` name this run (a rename, so readers never see half a name)."""
    _write_atomically(models_dir(home) / LATEST, run_id + "\n")


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def resolve(spec: str | None, home: Path) -> SavedModel:
    """`--model`: a model directory (from any lakehouse), a run id here, or None for `latest`."""
    if spec is None:
        pointer = models_dir(home) / LATEST
        if not pointer.is_file():
            raise UsageError(f"no trained model under {models_dir(home)}: run `make train` first "
                             "or pass --model PATH_OR_RUN_ID")
        spec = pointer.read_text().strip()
    candidates = [Path(spec).expanduser(), models_dir(home) / spec]
    for path in candidates:
        if (path / META_FILE).is_file():
            return SavedModel(path.resolve(), json.loads((path / META_FILE).read_text()))
    raise UsageError(f"--model {spec}: neither a model directory (with {META_FILE}) nor a run id "
                     f"under {models_dir(home)}")
