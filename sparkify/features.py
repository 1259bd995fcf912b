"""The feature registry, read from `vars.features` in dbt_project.yml: the one definition of every
feature column of `user_features`.

dbt builds the columns from the same var (macros/features.sql); this module expands it into the
column list with each column's description and the wording of its reason, for the ML code, the
dashboard and the generated column docs: `python -m sparkify.features --write-docs`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from sparkify.settings import PROJECT_ROOT

DOCS_PATH = PROJECT_ROOT / "dbt_project" / "models" / "marts" / "_user_features.yml"
LIFETIME = "lifetime"
# Everything below this line of the docs file is generated; everything above it is written by hand.
MARKER = "      # Feature columns below: generated from vars.features by `python -m sparkify.features --write-docs`."


@dataclass(frozen=True)
class Feature:
    """One column of user_features: what it holds and how a reason about it reads."""

    name: str
    description: str
    reason: str  # count, rate, change, trend, days_since, tenure or paid
    noun: str  # the reason's wording, e.g. "log-outs in the last 28 days"
    window: str | None = None  # 7d, 14d, 28d, lifetime; None for a one-value feature

    @property
    def label(self) -> str:
        """A short label for a form or a table header."""
        return _cap(self.noun) if self.noun else self.name.replace("_", " ")


@lru_cache(maxsize=1)
def project_vars() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "dbt_project.yml").read_text())["vars"]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _span(window: str) -> str:
    return "from the first event up to as_of" if window == LIFETIME else f"in the {window[:-1]} days before as_of"


def _recent(window: str) -> str:
    return "so far" if window == LIFETIME else f"in the last {window[:-1]} days"


def windows() -> list[str]:
    return [f"{days}d" for days in project_vars()["feature_windows_days"]] + [LIFETIME]


@lru_cache(maxsize=1)
def columns() -> tuple[Feature, ...]:
    """Every feature column of user_features, in the table's order."""
    registry = project_vars()["features"]
    out: list[Feature] = []
    for window in windows():
        for name, metric in registry["metrics"].items():
            out.append(Feature(f"{name}_{window}", f"Number of {metric['noun']} {_span(window)}.", "count",
                               f"{metric['noun']} {_recent(window)}", window))
        for name, ratio in registry["ratios"].items():
            out.append(Feature(
                f"{name}_{window}",
                f"{_cap(ratio['noun'])} {_span(window)}; null when there were no "
                f"{registry['metrics'][ratio['denominator']]['noun']}.",
                "rate", f"{ratio['noun']} {_recent(window)}", window))
        if window == LIFETIME:
            continue
        out.append(Feature(f"observed_days_{window}",
                           f"Days of the {window[:-1]}-day window before as_of that the data covers "
                           "(fewer near the start or the end of the data).", "count",
                           f"observed days of the last {window[:-1]}", window))
        for name, metric in registry["metrics"].items():
            if metric.get("per_day"):
                out.append(Feature(
                    f"{name}_per_day_{window}",
                    f"{_cap(metric['noun'])} per observed day {_span(window)} "
                    f"({name}_{window} / observed_days_{window}).",
                    "rate", f"{metric['noun']} per day {_recent(window)}", window))
    for name, scalar in registry["scalars"].items():
        out.append(Feature(name, scalar["description"], scalar["reason"], scalar.get("noun", ""), None))
    return tuple(out)


def by_name() -> dict[str, Feature]:
    return {f.name: f for f in columns()}


def get(name: str) -> Feature:
    """The registry entry of a feature column; a clear error for a name it does not define."""
    try:
        return by_name()[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a feature of user_features (see vars.features in dbt_project.yml)") from None


def docs_yaml() -> str:
    """The dbt column docs of user_features, generated from the registry."""
    text = DOCS_PATH.read_text()
    if MARKER not in text:
        raise ValueError(f"{DOCS_PATH} lacks the line {MARKER.strip()!r} that starts the generated part")
    lines = [text[:text.index(MARKER) + len(MARKER)].rstrip("\n")]
    for feature in columns():
        lines.append(f"      - name: {feature.name}")
        lines.append(f"        description: {_quote(feature.description)}")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparkify.features",
        description="List the feature columns of user_features, or (re)write their dbt docs from the registry "
                    "in dbt_project.yml.")
    parser.add_argument("--write-docs", action="store_true", help=f"write {DOCS_PATH.relative_to(PROJECT_ROOT)}")
    parser.add_argument("--check", action="store_true", help="exit 1 when the docs file is out of date")
    args = parser.parse_args(argv)
    if args.write_docs:
        Path(DOCS_PATH).write_text(docs_yaml())
        print(f"wrote {DOCS_PATH}")
    elif args.check:
        if DOCS_PATH.read_text() != docs_yaml():
            print(f"{DOCS_PATH} is out of date: run `python -m sparkify.features --write-docs`", file=sys.stderr)
            return 1
    else:
        for feature in columns():
            print(f"{feature.name:34} {feature.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
