"""A small adapter between the what-if page and the model's what-if function.

`models_ml.whatif` (or the `module:function` named by SPARKIFY_WHATIF) scores a dict of feature
values. It may need Spark, so the adapter imports and warms it up once, in a background thread,
while the page shows a spinner; later answers are plain function calls. If the module or a
trained model is missing, the adapter says so in one sentence and the page still loads.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_TARGET = "models_ml.whatif"
RETRY_AFTER_S = 30.0
FUNCTION_NAMES = ("predict", "what_if", "whatif", "score_features", "predict_one", "score")


@dataclass(frozen=True)
class WhatIfResult:
    probability: float
    band: str | None = None
    reasons: list[str] = field(default_factory=list)


class WhatIfUnavailable(RuntimeError):
    """The what-if function cannot run here; the message says what to do."""


def load_function(target: str | None = None) -> Callable[..., Any]:
    """Import `module[:function]`; without a function name, take the first known one it defines.

    The function keeps a reference to the module it came from (`load_model` may live there)."""
    target = target or os.environ.get("SPARKIFY_WHATIF") or DEFAULT_TARGET
    module_name, _, function_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise WhatIfUnavailable(
            f"The what-if model ({module_name}) is not installed here: {exc}. "
            "Train one with `make train`.") from None
    names = (function_name,) if function_name else FUNCTION_NAMES
    for name in names:
        function = getattr(module, name, None)
        if callable(function):
            return _FromModule(function, module)
    raise WhatIfUnavailable(f"{module_name} has no what-if function ({', '.join(names)}).")


def normalise(result: Any) -> WhatIfResult:
    """Accept a number, a (probability, band, reasons) tuple, a dict or an object with attributes."""
    if isinstance(result, WhatIfResult):
        return result
    if isinstance(result, (int, float)):
        return WhatIfResult(float(result))
    if isinstance(result, (tuple, list)) and result and isinstance(result[0], (int, float)):
        band = result[1] if len(result) > 1 else None
        reasons = result[2] if len(result) > 2 else []
        return WhatIfResult(float(result[0]), _band(band), _reasons(reasons))
    get = result.get if isinstance(result, dict) else (lambda k, d=None: getattr(result, k, d))
    probability = next((get(k) for k in ("probability", "churn_probability", "prob", "p")
                        if get(k) is not None), None)
    if probability is None:
        raise WhatIfUnavailable("The what-if function returned no probability.")
    reasons = get("reasons")
    if reasons is None:
        reasons = [get(k) for k in ("reason_1", "reason_2", "reason_3")]
    return WhatIfResult(float(probability), _band(get("risk_band") or get("band")), _reasons(reasons))


def _band(value: Any) -> str | None:
    return str(value).lower() if value else None


def _reasons(values: Any) -> list[str]:
    out = []
    for value in values or []:
        text = value.get("text") if isinstance(value, dict) else value
        if text:
            out.append(str(text))
    return out[:3]


class _FromModule:
    """A what-if function together with the module it was found in."""

    def __init__(self, function: Callable[..., Any], module: Any) -> None:
        self.function, self.module = function, module
        self.__signature__ = inspect.signature(function)

    def __call__(self, *args, **kwargs):
        return self.function(*args, **kwargs)


class WhatIfAdapter:
    """Starts the model once in the background; then answers what-if questions synchronously."""

    def __init__(self, function: Callable[..., Any] | None = None, target: str | None = None,
                 home: str | None = None, model_path: Callable[[], str | None] | None = None,
                 warmup_features: Callable[[], dict[str, Any] | None] | None = None) -> None:
        self._function = function
        self._target = target
        self._home = home
        self._model_path = model_path
        self._warmup_features = warmup_features
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._features: set[str] | None = None  # the model's inputs, when the module tells us
        self._loaded: Callable[..., Any] | None = None
        self._bound_kwargs: dict[str, Any] = {}
        self._failed_at = -math.inf
        self.status = "idle"  # idle -> starting -> ready | unavailable
        self.message = ""
        self.started_in: float | None = None

    def start(self) -> str:
        """Begin loading (once; again a while after a failure, e.g. once a model is trained).
        Returns the status, so a page can poll it."""
        with self._lock:
            if self.status == "unavailable" and time.monotonic() - self._failed_at > RETRY_AFTER_S:
                self.status = "idle"
            if self.status == "idle":
                self.status = "starting"
                self.message = "Starting the model; the first answer can take a few seconds."
                self._thread = threading.Thread(target=self._load, name="whatif-start", daemon=True)
                self._thread.start()
        return self.status

    def wait(self, timeout: float | None = None) -> str:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            self._loaded = self._function or load_function(self._target)
            self._bind()
            features = self._warmup_features() if self._warmup_features else None
            if features:
                self.status = "ready"  # predict() below is the warm-up call
                self.predict(features)
        except WhatIfUnavailable as exc:
            self._fail(str(exc))
        except Exception as exc:  # the model raised: report it in one line, keep the page alive
            log.warning("what-if model failed to start: %s", exc)
            self._fail(f"The what-if model could not start: {_first_line(exc)}")
        else:
            self.started_in = time.perf_counter() - started
            self.status, self.message = "ready", ""
            log.info("what-if model ready in %.1fs", self.started_in)

    def _kwargs(self, function: Callable[..., Any]) -> dict[str, Any]:
        """Tell the function which lakehouse and model to use, when it asks for them."""
        try:
            params = inspect.signature(function).parameters
        except (TypeError, ValueError):
            return {}
        kwargs: dict[str, Any] = {}
        if "home" in params and self._home:
            kwargs["home"] = self._home
        path = self._model_path() if self._model_path else None
        if path and os.path.isdir(path):  # the run's saved model; else the function's own default
            for name in ("model", "model_path"):
                if name in params:
                    kwargs[name] = path
                    break
        return kwargs

    @staticmethod
    def _model_features(function: Callable[..., Any], kwargs: dict[str, Any]) -> set[str] | None:
        """The model's input names, from the module's `load_model` if it has one: passing a name
        the model does not know may be an error."""
        module = function.module if isinstance(function, _FromModule) else inspect.getmodule(function)
        loader = getattr(module, "load_model", None)
        if not callable(loader):
            return None
        try:
            params = inspect.signature(loader).parameters
            saved = loader(**{k: v for k, v in kwargs.items() if k in params})
            names = getattr(saved, "features", None)
            return set(names) if names else None
        except Exception as exc:
            raise WhatIfUnavailable(f"The what-if model could not be loaded: {_first_line(exc)}") from None

    def _fail(self, message: str) -> None:
        self.status, self.message = "unavailable", message
        self._failed_at = time.monotonic()

    def _bind(self) -> None:
        """Fix the lakehouse and model the function uses; again when a newer model appears."""
        function = self._loaded
        kwargs = self._kwargs(function)
        self._features = self._model_features(function, kwargs)
        self._bound_kwargs = kwargs
        self._call = lambda features: function(features, **kwargs)

    def predict(self, features: dict[str, Any]) -> WhatIfResult:
        if self.status != "ready":
            raise WhatIfUnavailable(self.message or "The what-if model is not ready yet.")
        if self._kwargs(self._loaded) != self._bound_kwargs:  # a new training run since start-up
            self._bind()
        clean = {k: float(v) for k, v in features.items()
                 if isinstance(v, (int, float)) and not math.isnan(float(v))
                 and (self._features is None or k in self._features)}
        return normalise(self._call(clean))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def apply_edits(base: dict[str, Any], edits: dict[str, float | None]) -> dict[str, Any]:
    """Start from `base` features, set the edited ones and keep the 28-day counts consistent.

    When a 28-day rate is edited (and its count is not), songs, thumbs down and adverts over 28
    days follow from it, so a model that reads counts as well as ratios sees one coherent customer.
    """
    out = dict(base)
    edited = {key for key, value in edits.items() if value is not None}
    for key in edited:
        out[key] = float(edits[key])
    days = out.get("active_days_28d")
    per_day = out.get("songs_per_active_day_28d")
    rates_edited = edited & {"active_days_28d", "songs_per_active_day_28d"}
    if rates_edited and "songs_28d" not in edited and days is not None and per_day is not None:
        out["songs_28d"] = float(days) * float(per_day)
    songs = out.get("songs_28d")
    for count, rate in (("thumbs_down_28d", "thumbs_down_per_song_28d"), ("adverts_28d", "adverts_per_song_28d")):
        if (rate in edited or rates_edited) and count not in edited and songs is not None \
                and out.get(rate) is not None:
            out[count] = float(songs) * float(out[rate])
    return out


# ----------------------------------------------------------------------------------------------
# The page's controls: the selected model's most important features
# ----------------------------------------------------------------------------------------------

TOP_FEATURES = 5
# is_paid has its own Free/Paid control on the page.
NOT_A_SLIDER = ("is_paid",)


@dataclass(frozen=True)
class Control:
    """One what-if slider: a model input, its label from the feature registry and its range."""

    feature: str
    label: str
    low: float
    high: float
    step: float


def model_controls(meta: dict[str, Any] | None, latest_features: Any = None,
                   top: int = TOP_FEATURES) -> list[Control]:
    """The model's `top` most important inputs as sliders, from the saved model's metadata.

    Importance orders them (`meta["importance"]`; an older model without it: `meta["features"]` in
    order), and `meta["feature_ranges"]` (1st-99th percentile of the training rows) bounds them;
    without a range, the 1st-99th percentile of `latest_features` (a DataFrame) is used."""
    if not meta or not meta.get("features"):
        return []
    features = [str(f) for f in meta["features"] if f not in NOT_A_SLIDER]
    importance = meta.get("importance") or {}
    if importance:
        position = {f: i for i, f in enumerate(features)}
        features = sorted(features, key=lambda f: (-_finite(importance.get(f), 0.0), position[f]))
    ranges = meta.get("feature_ranges") or {}
    out = []
    for feature in features:
        bounds = _range(ranges.get(feature)) or _observed_range(latest_features, feature)
        if bounds is None:
            continue
        low, high, step = nice_range(*bounds)
        out.append(Control(feature, feature_label(feature), low, high, step))
        if len(out) == top:
            break
    return out


def feature_label(name: str) -> str:
    """The registry's label of a feature column; the column name in words if the registry lacks it."""
    try:
        from sparkify import features

        return features.get(name).label
    except Exception:  # an input the registry does not define, or the registry cannot load
        return name.replace("_", " ").capitalize()


def nice_range(low: float, high: float) -> tuple[float, float, float]:
    """A slider step of about a hundredth of the range (1, 2 or 5 times a power of ten), with the
    ends rounded out to whole steps."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / 100
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    low_out = math.floor(round(low / step, 9)) * step
    high_out = math.ceil(round(high / step, 9)) * step
    digits = max(0, -math.floor(math.log10(step))) + 1
    return round(low_out, digits), round(high_out, digits), round(step, digits)


def parse_typed(text: Any, control: Control) -> tuple[float | None, str | None]:
    """A value typed for `control`: (value, None), (None, None) when blank, or (None, why not)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None, None
    try:
        value = float(str(text).strip().replace(",", ""))
    except ValueError:
        return None, f"{control.label}: “{str(text)[:40]}” is not a number."
    if not math.isfinite(value):
        return None, f"{control.label}: {str(text).strip()[:40]} is not a finite number."
    if not control.low <= value <= control.high:
        return None, (f"{control.label}: {value:g} is outside the range this model was trained on "
                      f"({control.low:g} to {control.high:g}).")
    return value, None


def typed_values(values: list, typed: list, slider_ids: list[dict], controls: list[dict]) -> tuple[list, list[str]]:
    """Slider values with any typed value in its place; the reasons a typed value was refused."""
    spec = {c["feature"]: Control(**c) for c in controls or []}
    out, problems = [], []
    for ident, value, text in zip(slider_ids, values, typed or [None] * len(values)):
        control = spec.get(ident["feature"])
        number, problem = parse_typed(text, control) if control else (None, None)
        if problem:
            problems.append(problem)
        if number is None and control and value is not None:  # a slider value, as the client sent it
            number, problem = parse_typed(value, control)
            if problem:
                problems.append(problem)
        out.append(number if number is not None or control else value)
    return out, problems


def _finite(value: Any, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _range(value: Any) -> tuple[float, float] | None:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    low, high = _finite(value[0], math.nan), _finite(value[1], math.nan)
    return (low, high) if math.isfinite(low) and math.isfinite(high) and low <= high else None


def _observed_range(frame: Any, feature: str) -> tuple[float, float] | None:
    if frame is None or feature not in getattr(frame, "columns", ()):
        return None
    import pandas as pd

    values = pd.to_numeric(frame[feature], errors="coerce").astype(float)
    values = values[values.map(math.isfinite)]
    if values.empty:
        return None
    return float(values.quantile(0.01)), float(values.quantile(0.99))
