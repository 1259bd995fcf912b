"""Model: how the churn model was chosen, and how well it predicts customers it never saw."""

from __future__ import annotations

import base64
from pathlib import Path

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import html

from dashboard import figures
from dashboard.components import (GRID_THEME, chart, empty_state, fmt_date, fmt_int, fmt_num, fmt_pct,
                                  kpi_card, notes_banner, page_header, safe, section)
from dashboard.context import lakehouse
from dashboard.data import ModelRuns
from dashboard.theme import PRIMARY

dash.register_page(__name__, path="/model", name="Model", title="Model · Sparkify churn", order=3)

HONEST_SENTENCE = (
    "The time-based protocol trains on earlier weeks and tests on later ones, exactly as the model is "
    "used; the lifetime protocol of the public Sparkify projects computes features over each "
    "customer's whole history and splits customers at random, so a churner's cancellation leaks "
    "into the features and its numbers look better than any real prediction can be.")

METRIC_COLUMNS = [
    ("auc_pr", "AUC-PR", 3), ("roc_auc", "ROC-AUC", 3), ("precision", "Precision", 3),
    ("recall", "Recall", 3), ("f1", "F1", 3), ("precision_at_top10", "Precision top 10%", 3),
    ("brier", "Brier", 4), ("weighted_f1", "Weighted F1", 3), ("accuracy", "Accuracy", 3),
    ("train_seconds", "Train (s)", 1),
]


@safe
def layout(**_query) -> html.Div:
    lh = lakehouse()
    notes = notes_banner(lh.notes("model_runs"))
    runs = lh.model_runs()
    if runs is None:
        return html.Div([page_header("Model"), notes, empty_state(
            "No training run yet", "Train the churn model; its test metrics, curves and history "
            "appear here.", "make train"), _backtest(lh.backtest())])
    latest = runs.latest
    curves = lh.report_curves(latest)
    selected = latest.get("selected_model")
    return html.Div([
        page_header("Model", "How the churn model was chosen, and how well it predicts customers it "
                             "has never seen"),
        notes,
        _summary(latest),
        section("All models in this run", _comparison(runs.metrics),
                "Test metrics; the selected model is highlighted", fill=False, class_name="mb-3"),
        dbc.Row([
            dbc.Col(section("Honest numbers next to the lifetime protocol", _protocols(runs),
                            HONEST_SENTENCE), lg=5, className="mb-3"),
            dbc.Col(section(None, chart(figures.feature_importance(_importance(curves, selected)))),
                    lg=7, className="mb-3"),
        ], className="g-3"),
        _backtest(lh.backtest()),
        _curves(lh, latest, curves, selected),
        section("History of runs", dbc.Row([
            dbc.Col(chart(figures.run_history(runs.runs)), lg=4),
            dbc.Col(_history_grid(runs.runs), lg=8),
        ], className="g-3"), "Newest first; the selected model of each run", fill=False),
    ])


def _summary(run: dict) -> html.Div:
    m = run.get("selected_metrics") or {}
    prevalence = run.get("prevalence")
    lift = (f"{m['auc_pr'] / prevalence:.1f}× the {fmt_pct(prevalence)} base rate"
            if m.get("auc_pr") is not None and prevalence else None)
    cards = [
        kpi_card("Selected model", str(run.get("selected_model") or "–"),
                 f"{run.get('protocol', 'time')} protocol · calibration {run.get('calibration') or '–'}",
                 PRIMARY,
                 text=True),
        kpi_card("AUC-PR", fmt_num(m.get("auc_pr"), 3), lift, PRIMARY),
        kpi_card("ROC-AUC", fmt_num(m.get("roc_auc"), 3), "0.5 is a coin toss", PRIMARY),
        kpi_card("Precision in top 10%", fmt_pct(m.get("precision_at_top10")), "of the highest scores", PRIMARY),
        kpi_card("Recall at threshold", fmt_pct(m.get("recall")),
                 f"threshold {fmt_num(run.get('threshold'), 2)}", PRIMARY),
        kpi_card("Brier score", fmt_num(m.get("brier"), 4), "lower is better", PRIMARY),
    ]
    meta = [
        ("Run", run.get("run_id")), ("Started", fmt_date(run.get("started_at"), with_time=True)),
        ("Commit", run.get("git_commit") or "–"),
        ("Data", f"{fmt_date(run.get('data_start'))} – {fmt_date(run.get('data_end'))}"),
        ("Train as-of", _dates(run.get("train_as_of"))), ("Validation as-of", _dates(run.get("validation_as_of"))),
        ("Test as-of", _dates(run.get("test_as_of"))),
        ("Rows", f"{fmt_int(run.get('train_rows'))} train · {fmt_int(run.get('validation_rows'))} validation · "
                 f"{fmt_int(run.get('test_rows'))} test ({fmt_int(run.get('test_positives'))} churners)"),
        ("Threshold rule", run.get("threshold_rule") or "–"),
    ]
    return html.Div([
        dbc.Row([dbc.Col(c, xs=6, md=4, xl=2, className="mb-3") for c in cards], className="g-3"),
        dbc.Card(dbc.CardBody(html.Dl([x for k, v in meta for x in (html.Dt(k), html.Dd(v))],
                                      className="run-meta")), className="section-card mb-3"),
    ])


BACKTEST_SUBTITLE = (
    "Rolling origin: for every snapshot with a complete label window, a model trained only on "
    "snapshots whose horizon ended by then scores it; pooled over all of them, with bootstrap 95% "
    "intervals grouped by customer.")
FIXED_MODEL_SUBTITLE = (
    "A fixed model, trained elsewhere, scores every snapshot of this lakehouse with a complete label "
    "window: a cross-dataset check; pooled, with bootstrap 95% intervals grouped by customer.")
SNAPSHOT_COLUMNS = [
    {"field": "as_of", "headerName": "As of", "minWidth": 120},
    {"field": "rows", "headerName": "Customers", "type": "numericColumn"},
    {"field": "positives", "headerName": "Churners", "type": "numericColumn"},
    {"field": "prevalence", "headerName": "Prevalence", "type": "numericColumn"},
    {"field": "roc_auc", "headerName": "ROC-AUC", "type": "numericColumn"},
    {"field": "average_precision", "headerName": "Avg precision", "type": "numericColumn"},
    {"field": "ap_lift", "headerName": "AP ÷ prevalence", "type": "numericColumn"},
    {"field": "precision_top10", "headerName": "Precision top 10%", "type": "numericColumn"},
    {"field": "brier", "headerName": "Brier", "type": "numericColumn"},
    {"field": "train", "headerName": "Trained on", "minWidth": 190},
]


def _backtest(backtest) -> html.Div:
    if backtest is None:
        return section("Backtest", html.P(
            "No backtest yet. Run `make backtest` (python -m models_ml.backtest) to see how the model "
            "would have ranked every past snapshot.", className="text-muted mb-0", id="backtest-none"),
            fill=False, class_name="mb-3")
    p = backtest.pooled
    cards = [
        kpi_card("Pooled ROC-AUC", fmt_num(p.get("roc_auc"), 3), _ci(p, "roc_auc", 3), PRIMARY),
        kpi_card("Average precision", fmt_num(p.get("average_precision"), 3),
                 f"{fmt_num(p.get('ap_lift'), 1)}× the {fmt_pct(p.get('prevalence'))} base rate · "
                 + _ci(p, "average_precision", 3), PRIMARY),
        kpi_card("Precision in top 10%", fmt_pct(p.get("precision_top10")), _ci(p, "precision_top10", 3), PRIMARY),
        kpi_card("Brier score", fmt_num(p.get("brier"), 4), _ci(p, "brier", 4), PRIMARY),
        kpi_card("Scored", fmt_int(p.get("rows")), f"customer-weeks · {fmt_int(p.get('positives'))} churners",
                 PRIMARY),
    ]
    trained = (f"{fmt_date(p.get('train_as_of_first'))} – {fmt_date(p.get('train_as_of_last'))}"
               if p.get("train_as_of_first") else "–")
    meta = html.Div(f"{p.get('kind') or '–'} backtest {p.get('backtest_id') or ''} of {p.get('model') or '–'} "
                    f"({p.get('model_source') or '–'}), created {fmt_date(p.get('created_at'), with_time=True)}; "
                    f"training snapshots {trained}", className="text-muted small mb-2", id="backtest-meta")
    return section("Backtest", html.Div([
        dbc.Row([dbc.Col(c, xs=6, md=4, xl=True, className="mb-3") for c in cards], className="g-3",
                id="backtest-pooled"),
        meta,
        dbc.Row([
            dbc.Col(chart(figures.backtest_snapshots(backtest.snapshots)), lg=5),
            dbc.Col(_snapshot_grid(backtest.snapshots), lg=7),
        ], className="g-3"),
    ]), BACKTEST_SUBTITLE if p.get("kind") != "model" else FIXED_MODEL_SUBTITLE, fill=False, class_name="mb-3")


def _ci(row: dict, metric: str, digits: int) -> str:
    low, high = row.get(f"{metric}_lo"), row.get(f"{metric}_hi")
    if low is None or high is None:
        return "no interval"
    return f"95% CI {fmt_num(low, digits)}–{fmt_num(high, digits)}"


def _snapshot_grid(snapshots: pd.DataFrame) -> object:
    if snapshots is None or snapshots.empty:
        return html.P("No per-snapshot rows.", className="text-muted")
    records = []
    for row in snapshots.to_dict("records"):
        first, last = row.get("train_as_of_first"), row.get("train_as_of_last")
        records.append({
            "as_of": fmt_date(row.get("as_of_date")), "rows": row.get("rows"), "positives": row.get("positives"),
            "prevalence": fmt_pct(row.get("prevalence")), "roc_auc": _round(row.get("roc_auc"), 3),
            "average_precision": _round(row.get("average_precision"), 3), "ap_lift": _round(row.get("ap_lift"), 2),
            "precision_top10": _round(row.get("precision_top10"), 3), "brier": _round(row.get("brier"), 4),
            "train": f"{fmt_date(first)} – {fmt_date(last)}" if first is not None and last is not None
            and not pd.isna(last) else "–",
        })
    return dag.AgGrid(
        id="backtest-snapshots", rowData=records, columnDefs=SNAPSHOT_COLUMNS,
        defaultColDef={"sortable": True, "resizable": True, "flex": 1, "minWidth": 90},
        dashGridOptions={"domLayout": "autoHeight", "suppressCellFocus": True, "theme": GRID_THEME},
        columnSize="responsiveSizeToFit", style={"height": None})


def _round(value, digits: int):
    return None if value is None or pd.isna(value) else round(float(value), digits)


def _dates(values) -> str:
    items = list(values) if values is not None and not isinstance(values, str) else []
    if not items:
        return "–"
    stamps = sorted(pd.Timestamp(v) for v in items)
    if len(stamps) > 3:
        return f"{fmt_date(stamps[0])} … {fmt_date(stamps[-1])} ({len(stamps)} dates)"
    return ", ".join(fmt_date(s) for s in stamps)


def _protocols(runs: ModelRuns) -> html.Div:
    honest, lifetime = runs.by_protocol.get("time"), runs.by_protocol.get("lifetime")
    rows = []
    for key, label, digits in (("auc_pr", "AUC-PR", 3), ("roc_auc", "ROC-AUC", 3),
                               ("precision_at_top10", "Precision top 10%", 3), ("f1", "F1 (churn class)", 3),
                               ("weighted_f1", "Weighted F1", 3), ("brier", "Brier", 4)):
        a = (honest or {}).get("selected_metrics", {}).get(key)
        b = (lifetime or {}).get("selected_metrics", {}).get(key)
        rows.append(html.Tr([html.Td(label), html.Td(fmt_num(a, digits), className="num honest"),
                             html.Td(fmt_num(b, digits), className="num optimistic")]))
    table = dbc.Table([
        html.Thead(html.Tr([html.Th("Metric (selected model, test)"),
                            html.Th(["Time-based", html.Div("honest", className="th-sub")], className="num"),
                            html.Th(["Lifetime", html.Div("optimistic", className="th-sub")], className="num")])),
        html.Tbody(rows)], className="protocol-table", hover=True, size="sm")
    missing = None
    if lifetime is None:
        missing = html.P("No lifetime run yet: `python -m models_ml.train --protocol lifetime` adds one.",
                         className="text-muted small mb-0")
    elif honest is None:
        missing = html.P("No time-based run yet: `make train`.", className="text-muted small mb-0")
    return html.Div([table, missing])


def _comparison(metrics: pd.DataFrame) -> object:
    if metrics is None or metrics.empty:
        return html.P("This run recorded no per-model metrics.", className="text-muted")
    columns = [{"field": "model", "headerName": "Model", "pinned": "left", "minWidth": 180}]
    for key, label, digits in METRIC_COLUMNS:
        if key in metrics.columns:
            columns.append({"field": key, "headerName": label, "type": "numericColumn", "minWidth": 90,
                            "valueFormatter": {"function": f"params.value == null ? '' : "
                                                           f"d3.format('.{digits}f')(params.value)"}})
    data = metrics[[c["field"] for c in columns] + (["is_selected"] if "is_selected" in metrics.columns else [])]
    return dag.AgGrid(
        id="model-comparison", rowData=data.astype(object).where(data.notna(), None).to_dict("records"),
        columnDefs=columns, defaultColDef={"sortable": True, "resizable": True},
        columnSize="responsiveSizeToFit",
        rowClassRules={"selected-model-row": "params.data.is_selected"},
        dashGridOptions={"domLayout": "autoHeight", "theme": GRID_THEME, "suppressCellFocus": True},
        style={"height": None})


def _curves(lh, run: dict, curves: dict, selected: str | None) -> html.Div:
    if not curves:
        images = _report_images(lh, run)
        if images:
            return section("Report plots", dbc.Row([dbc.Col(img, lg=6, className="mb-3") for img in images]),
                           "From the run's model card (no curves.json to redraw them from)", class_name="mb-3")
        return section("Curves", html.P("This run's report has no curves.json or plots yet.",
                                        className="text-muted mb-0"), class_name="mb-3")
    return html.Div([
        dbc.Row([
            dbc.Col(section(None, chart(figures.pr_curves(curves, selected, run.get("prevalence")))), lg=4,
                    className="mb-3"),
            dbc.Col(section(None, chart(figures.roc_curves(curves, selected))), lg=4, className="mb-3"),
            dbc.Col(section(None, chart(figures.calibration_plot(curves, selected))), lg=4, className="mb-3"),
        ], className="g-3"),
    ])


def _importance(curves: dict, selected: str | None):
    importance = (curves.get(selected) or {}).get("importance")
    if importance is None:
        importance = next((c["importance"] for c in curves.values() if "importance" in c), None)
    return importance


def _report_images(lh, run: dict) -> list:
    folder = lh.report_folder(run)
    if folder is None:
        return []
    images = []
    for png in sorted(Path(folder).glob("*.png"))[:6]:
        if png.stat().st_size > 3_000_000:
            continue
        data = base64.b64encode(png.read_bytes()).decode()
        images.append(html.Figure([html.Img(src=f"data:image/png;base64,{data}", className="report-img"),
                                   html.Figcaption(png.stem.replace("_", " "))]))
    return images


def _history_grid(runs: pd.DataFrame) -> object:
    frame = pd.DataFrame({
        "run_id": runs["run_id"],
        "started": pd.to_datetime(runs["started_at"]).dt.strftime("%d %b %Y %H:%M"),
        "protocol": runs.get("protocol"),
        "selected_model": runs.get("selected_model"),
        "auc_pr": runs.get("selected_auc_pr"),
        "roc_auc": runs.get("selected_roc_auc"),
        "test_rows": runs.get("test_rows"),
    })
    fmt3 = {"function": "params.value == null ? '' : d3.format('.3f')(params.value)"}
    columns = [
        {"field": "run_id", "headerName": "Run", "minWidth": 210},
        {"field": "started", "headerName": "Started", "minWidth": 150},
        {"field": "protocol", "headerName": "Protocol", "minWidth": 100},
        {"field": "selected_model", "headerName": "Selected", "minWidth": 170},
        {"field": "auc_pr", "headerName": "AUC-PR", "type": "numericColumn", "valueFormatter": fmt3},
        {"field": "roc_auc", "headerName": "ROC-AUC", "type": "numericColumn", "valueFormatter": fmt3},
        {"field": "test_rows", "headerName": "Test rows", "type": "numericColumn"},
    ]
    return dag.AgGrid(
        id="model-history", rowData=frame.astype(object).where(frame.notna(), None).to_dict("records"),
        columnDefs=columns, defaultColDef={"sortable": True, "resizable": True, "flex": 1},
        dashGridOptions={"domLayout": "autoHeight", "theme": GRID_THEME, "suppressCellFocus": True,
                         "pagination": len(frame) > 10, "paginationPageSize": 10,
                         "paginationPageSizeSelector": False},
        style={"height": None})
