"""The model card: Markdown, four PNG plots and curves.json (the same points, for plotly)."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

from models_ml.candidates import DESCRIPTIONS
from models_ml.decision import BANDS_RULE
from models_ml.runs import RunRecord

COLUMNS = ("auc_pr", "roc_auc", "precision", "recall", "f1", "precision_at_top10", "brier",
           "weighted_f1", "accuracy", "train_seconds")
HEADERS = ("model", "val AUC-PR", "AUC-PR", "ROC-AUC", "precision", "recall", "F1", "P@top10%",
           "Brier", "weighted F1", "accuracy", "fit s", "")


def _num(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def comparison_rows(record: RunRecord) -> list[list[str]]:
    rows = []
    for m in record.metrics:
        val = _num(m.get("validation_auc_pr"))
        if m.get("validation_se"):
            val += f"±{m['validation_se']:.3f}"
        rows.append([m["model"], val] + [_num(m.get(c)) for c in COLUMNS]
                    + ["selected" if m["is_selected"] else ""])
    return rows


def comparison_table(record: RunRecord) -> str:
    """Fixed-width table for the log."""
    rows = [list(HEADERS)] + comparison_rows(record)
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)) for r in rows)


def _markdown_table(record: RunRecord) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in comparison_rows(record)]
    return "\n".join(lines)


def _plots(curves: dict, selected: str, prevalence: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = curves["models"]

    def style(name):
        return {"linewidth": 2.5 if name == selected else 1.2, "alpha": 1.0 if name == selected else 0.7}

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, c in models.items():
        ax.step(c["pr"]["recall"], c["pr"]["precision"], where="post",
                label=f"{name} (AP {c['auc_pr']:.3f})", **style(name))
    ax.axhline(prevalence, color="grey", linestyle="--", label=f"prevalence {prevalence:.3f}")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall on the test date", ylim=(0, 1.02))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "pr_curve.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, c in models.items():
        ax.plot(c["roc"]["fpr"], c["roc"]["tpr"], label=f"{name} (AUC {c['roc_auc']:.3f})", **style(name))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC on the test date")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "roc_curve.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, c in models.items():
        ax.plot(c["calibration"]["predicted"], c["calibration"]["observed"], marker="o", label=name, **style(name))
    top = max([0.05] + [max(c["calibration"]["predicted"] + c["calibration"]["observed"]) for c in models.values()])
    ax.plot([0, top], [0, top], color="grey", linestyle="--", label="perfect calibration")
    ax.set(xlabel="mean predicted probability (decile)", ylabel="observed churn rate",
           title="Calibration on the test date")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=110)
    plt.close(fig)

    importance = models[selected]["feature_importance"]
    names = sorted(importance, key=importance.get)
    fig, ax = plt.subplots(figsize=(6, max(2.5, 0.28 * len(names) + 1)))
    ax.barh(names, [importance[n] for n in names])
    ax.set(xlabel="share of importance", title=f"Feature importance: {selected}")
    fig.tight_layout()
    fig.savefig(out / "feature_importance.png", dpi=110)
    plt.close(fig)


def backtest_markdown(rows: list[dict]) -> str:
    """The pooled figures with their intervals, then one line per scored snapshot."""
    def ci(row, name):
        return f"{_num(row[name])} [{_num(row.get(name + '_lo'))}, {_num(row.get(name + '_hi'))}]"

    pooled = next(r for r in rows if r["scope"] == "pooled")
    lines = [
        f"Pooled over {len(rows) - 1} snapshots ({pooled['rows']} user-weeks, {pooled['positives']} churners, "
        f"prevalence {_num(pooled['prevalence'])}), 95% intervals from a bootstrap over users:",
        "",
        f"- ROC-AUC {ci(pooled, 'roc_auc')}",
        f"- average precision {ci(pooled, 'average_precision')} = {pooled['ap_lift']:.2f}× prevalence",
        f"- precision in the top 10% {ci(pooled, 'precision_top10')} (fractional credit for ties)",
        f"- Brier {ci(pooled, 'brier')}",
        "",
        "| as_of | trained on | rows | churners | ROC-AUC | AP | AP × prevalence | P@top10% | Brier |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["scope"] != "snapshot":
            continue
        trained = f"{r['train_as_of_first']}..{r['train_as_of_last']}" if r.get("train_as_of_first") else "–"
        lines.append(f"| {r['as_of_date']} | {trained} | {r['rows']} | {r['positives']} | {_num(r['roc_auc'])} | "
                     f"{_num(r['average_precision'])} | {_num(r['ap_lift'])} | {_num(r['precision_top10'])} | "
                     f"{_num(r['brier'])} |")
    return "\n".join(lines)


def backtest_plot(rows: list[dict], out: Path) -> None:
    """ROC-AUC and average-precision lift per scored snapshot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snaps = [r for r in rows if r["scope"] == "snapshot"]
    dates = [dt.date.fromisoformat(str(r["as_of_date"])[:10]) for r in snaps]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(dates, [r["roc_auc"] for r in snaps], marker="o", label="ROC-AUC")
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.set_ylabel("ROC-AUC")
    ax2 = ax.twinx()
    ax2.plot(dates, [r["ap_lift"] for r in snaps], marker="s", color="tab:orange", label="AP × prevalence")
    ax2.set_ylabel("average precision / prevalence")
    ax.set_title("Rolling backtest per snapshot")
    ax.tick_params(axis="x", rotation=45)
    fig.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "backtest.png", dpi=110)
    plt.close(fig)


def training_set(record) -> str:
    """Where the rows this run read can be read back: a Delta version of user_features, by time travel."""
    version = record.user_features_version
    if version is None:
        return "user_features as it was (Parquet keeps no versions; Delta's time travel would)"
    return (f"user_features at Delta version {version}; read it back with "
            f"`select * from sparkify.user_features version as of {version}`")


def write(out: Path, record: RunRecord, curves: dict, split_text: str, selection_rule: str = "",
          backtest: list[dict] | None = None) -> Path:
    """Write model_card.md, the PNGs and curves.json into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    if backtest:
        backtest_plot(backtest, out)
    (out / "curves.json").write_text(json.dumps(curves, indent=1, allow_nan=False, default=str))
    _plots(curves, record.selected_model, record.prevalence, out)
    lifetime = record.protocol == "lifetime"
    caveat = (
        "**Optimistic on purpose.** The lifetime protocol computes features over each user's whole "
        "history and splits users at random, as the public Sparkify projects do. A churner's history "
        "stops at the cancellation, so tenure and activity counts carry the label: these numbers "
        "show leakage, not skill, and this run saved no model."
        if lifetime else
        "Honest, time-based evaluation: features use only events before each as_of date, the model "
        "is chosen and calibrated on earlier dates, and the test date's labels never reach training. "
        "On eventsim data, expect ROC-AUC about 0.65–0.72; above ~0.80 suggests leakage."
    )
    bands = record.risk_bands
    backtest_section = "" if not backtest else (
        "\n## Rolling-origin backtest\n\nEvery label-complete snapshot scored by the selected configuration "
        "trained only on snapshots whose label horizon had ended by then; probabilities calibrated on "
        "earlier folds' out-of-time scores. This is the figure to compare across retrains.\n\n"
        + backtest_markdown(backtest) + "\n\n![Backtest](backtest.png)\n")
    text = f"""# Churn model card — run {record.run_id}

{caveat}

- **Protocol:** {record.protocol}; label: cancels within the churn horizon after the as_of date
- **Data:** {record.data_start} .. {record.data_end}; git commit {record.git_commit or "unknown"}
- **Training set:** {training_set(record)}
- **Rows:** train {record.train_rows}, validation {record.validation_rows}, test {record.test_rows}
  ({record.test_positives} churners, prevalence {record.prevalence:.3f})
- **Features ({len(record.features)}):** {", ".join(record.features)}

## Split

```
{split_text}
```

## Models (test metrics at each model's own calibrated threshold)

Selection: {selection_rule}. "val AUC-PR" is the pooled out-of-time average precision over the
selection folds, ± the paired bootstrap standard error of its gap to the best model.

{_markdown_table(record)}

`prevalence` is the reference that predicts the validation churn rate for everyone: its Brier
score is the bar a calibrated model should reach.

## Selected model: {record.selected_model}

- {DESCRIPTIONS.get(record.selected_model, record.selected_model)}
- **Parameters:** `{next((m["params"] for m in record.metrics if m["is_selected"]), "{}")}`
- **Calibration:** {record.calibration}
- **Threshold:** {_num(record.threshold)} — rule: {record.threshold_rule}
- **Risk bands:** high >= {_num(bands.get("high"))}, medium >= {_num(bands.get("medium"))}, else low ({BANDS_RULE})
- **Saved model:** {record.model_path or "not saved (lifetime protocol)"}

![PR curve](pr_curve.png) ![ROC curve](roc_curve.png)
![Calibration](calibration.png) ![Feature importance](feature_importance.png)

Reasons given with each score: the features whose move to the median of the population scored
at the same as_of lowers that customer's probability the most (largest first).
{backtest_section}"""
    (out / "model_card.md").write_text(text)
    return out
