"""What-if: change a customer's behaviour and watch the churn probability move."""

from __future__ import annotations

import math
from dataclasses import asdict

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, callback, dcc, html, no_update

from dashboard import figures
from dashboard.components import (chart, clip_text, fmt_pct, notes_banner, page_header, risk_badge, safe,
                                  section)
from dashboard.context import lakehouse, whatif
from dashboard.data import MAX_QUERY_CHARS, risk_cutoffs
from dashboard.theme import BAND_COLORS, UNSCORED_COLOR
from dashboard.whatif import Control, WhatIfUnavailable, apply_edits, typed_values

dash.register_page(__name__, path="/what-if", name="What-if", title="What-if · Sparkify churn", order=4)


def _slider_value(features: dict, control: dict) -> float:
    """A feature value as the slider can show it: clipped to the range and rounded to a step."""
    low, high, step = control["low"], control["high"], control["step"]
    value = features.get(control["feature"])
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return low
    shown = min(max(float(value), low), high)
    return round(round(shown / step) * step, 10)


def _control(control: Control) -> html.Div:
    low, high = control.low, control.high
    return html.Div([
        html.Label(control.label, className="control-label"),
        html.Div([
            html.Div(dcc.Slider(id={"type": "whatif-slider", "feature": control.feature}, min=low, max=high,
                                step=control.step, value=low, marks={low: f"{low:g}", high: f"{high:g}"},
                                updatemode="mouseup", tooltip={"placement": "bottom", "always_visible": False}),
                     className="flex-grow-1"),
            dbc.Input(id={"type": "whatif-typed", "feature": control.feature}, type="text", debounce=True,
                      placeholder="or type", maxLength=40, size="sm", className="whatif-typed ms-2",
                      style={"width": "6.5rem"}),
        ], className="d-flex align-items-center"),
    ], className="control")


@safe
def layout(user: object = None, **_query) -> html.Div:
    whatif().start()  # first visit: load the model in the background while the page renders
    query = user[0] if isinstance(user, list) and user else user
    query = "" if query is None else str(query).strip()[:MAX_QUERY_CHARS]
    lh = lakehouse()
    notes = notes_banner(lh.notes("user_features"))
    controls_spec = lh.whatif_controls()
    sliders = [_control(c) for c in controls_spec] or [html.P(
        "No trained model yet: run `make train`. The sliders are the selected model's most important "
        "features.", className="text-muted", id="whatif-no-model")]
    start = section("Starting point", fill=False, children=html.Div([
        dbc.RadioItems(id="whatif-mode", value="customer" if query else "typical", inline=True,
                       options=[{"label": "Typical customer", "value": "typical"},
                                {"label": "A customer", "value": "customer"}], className="mb-2"),
        dbc.InputGroup([dbc.Input(id="whatif-user", value=query, placeholder="Customer number",
                                  maxLength=MAX_QUERY_CHARS, debounce=True, type="search"),
                        dbc.Button("Reset", id="whatif-reset", color="secondary", outline=True, n_clicks=0)]),
        html.Div(id="whatif-start-note", className="start-note"),
    ]), subtitle="Features from the latest scoring date")
    controls = section("Change behaviour", subtitle="The model's most important inputs; drag, or type a value",
                       fill=False, children=html.Div([
        *sliders,
        html.Div([html.Label("Level", className="control-label"),
                  dbc.RadioItems(id="whatif-level", value="free", inline=True,
                                 options=[{"label": "Free", "value": "free"},
                                          {"label": "Paid", "value": "paid"}])], className="control"),
    ]))
    result = section("Predicted churn probability", dcc.Loading(html.Div(id="whatif-result"), type="dot",
                                                                delay_show=400),
                     "Next 14 days, from the trained model's what-if function")
    return html.Div([
        page_header("What-if", "Start from a customer or from typical values, change a few behaviours, "
                               "and see how the churn probability moves"),
        notes,
        dbc.Row([
            dbc.Col([start, html.Div(className="mb-3"), controls], lg=5, className="mb-3"),
            dbc.Col(result, lg=7, className="mb-3"),
        ], className="g-3"),
        dcc.Store(id="whatif-base"),
        dcc.Store(id="whatif-controls", data=[asdict(c) for c in controls_spec]),
        dcc.Interval(id="whatif-poll", interval=700, disabled=False, max_intervals=400),
    ])


@callback(
    Output("whatif-base", "data"),
    Output({"type": "whatif-slider", "feature": ALL}, "value"),
    Output("whatif-level", "value"),
    Output({"type": "whatif-typed", "feature": ALL}, "value"),
    Output("whatif-start-note", "children"),
    Input("whatif-mode", "value"), Input("whatif-user", "value"), Input("whatif-reset", "n_clicks"),
    State({"type": "whatif-slider", "feature": ALL}, "id"),
    State("whatif-controls", "data"),
)
def load_start(mode, user, _reset, slider_ids, controls):
    """Fill the controls from a customer's latest features, or from the population medians."""
    lh = lakehouse()
    typical = lh.typical_features() or {}
    features, note = dict(typical), "Typical values: the median active customer."
    text = "" if user is None else str(user).strip()[:MAX_QUERY_CHARS]
    if mode == "customer" and text:
        row = lh.feature_row(text) if lh.lookup(text).status == "found" else None
        if row is None:
            note = f"No features for customer “{clip_text(text, 40)}”; showing typical values."
        else:
            features = {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            note = f"Customer #{clip_text(text, 40)}, as of their latest scoring date."
    elif mode == "customer":
        note = "Type a customer number to start from their features."
    if not typical and not features:
        note = "No user_features table yet: run `make build`."
    spec = {c["feature"]: c for c in controls or []}
    values = [_slider_value(features, spec[i["feature"]]) for i in slider_ids]
    level = "paid" if (features.get("is_paid") or 0) >= 0.5 else "free"
    # The starting point is what the controls show (rounded to their steps), so that an untouched
    # form answers "+0.0 points".
    start = _edits(values, level, slider_ids)
    return {"features": features, "start": start}, values, level, [""] * len(slider_ids), note


def _edits(values: list, level: str, slider_ids: list[dict]) -> dict[str, float | None]:
    edits = {i["feature"]: (float(v) if v is not None else None) for i, v in zip(slider_ids, values)}
    edits["is_paid"] = 1.0 if level == "paid" else 0.0
    return edits


@callback(
    Output("whatif-result", "children"),
    Output("whatif-poll", "disabled"),
    Input({"type": "whatif-slider", "feature": ALL}, "value"),
    Input({"type": "whatif-typed", "feature": ALL}, "value"),
    Input("whatif-level", "value"),
    Input("whatif-base", "data"),
    Input("whatif-poll", "n_intervals"),
    State({"type": "whatif-slider", "feature": ALL}, "id"),
    State("whatif-controls", "data"),
)
def predict(values, typed, level, base, _tick, slider_ids, controls):
    adapter = whatif()
    status = adapter.start()
    if status == "starting":
        return _starting(), False
    if status != "ready":
        return dbc.Alert(adapter.message, color="warning", className="calm-note", id="whatif-unavailable"), True
    if not base or "features" not in base:
        return no_update, True
    values, problems = typed_values(values, typed, slider_ids, controls)
    if problems:
        return dbc.Alert([html.Div("Not scored: fix the typed value to see a probability."),
                          html.Ul([html.Li(p) for p in problems], className="mb-0")],
                         color="warning", className="calm-note", id="whatif-invalid"), True
    try:
        before = adapter.predict(apply_edits(base["features"], base["start"]))
        after = adapter.predict(apply_edits(base["features"], _edits(values, level, slider_ids)))
    except WhatIfUnavailable as exc:
        return dbc.Alert(str(exc), color="warning", className="calm-note"), True
    except Exception:
        return dbc.Alert("The model could not score these values; try others.", color="warning",
                         className="calm-note"), True
    runs = lakehouse().model_runs()
    return _result(after, before, risk_cutoffs(runs.latest if runs else None)), True


def _starting() -> html.Div:
    return html.Div([dbc.Spinner(color="primary", size="sm"),
                     html.Span(" Starting the model — the first answer can take a few seconds; "
                               "later ones are instant.", className="ms-2")],
                    className="whatif-starting", id="whatif-starting")


def _result(after, before, cutoffs: dict) -> html.Div:
    color = BAND_COLORS.get(after.band or "", UNSCORED_COLOR)
    delta = (after.probability - before.probability) * 100
    arrow = "▲" if delta > 0.05 else "▼" if delta < -0.05 else "●"
    delta_class = "delta-up" if delta > 0.05 else "delta-down" if delta < -0.05 else "delta-flat"
    return html.Div([
        html.Div([
            html.Div(fmt_pct(after.probability), className="risk-number", style={"color": color},
                     id="whatif-probability"),
            html.Div([risk_badge(after.band, large=True),
                      html.Div([html.Span(f"{arrow} {delta:+.1f} points", className=delta_class),
                                html.Span(f" vs {fmt_pct(before.probability)} at the starting point",
                                          className="text-muted")], className="whatif-delta")],
                     className="ms-4"),
        ], className="d-flex align-items-center"),
        chart(figures.probability_gauge(after.probability, before.probability, cutoffs)),
        html.Div("What drives it", className="kpi-label mt-2"),
        html.Ol([html.Li(r) for r in after.reasons], className="reasons") if after.reasons else
        html.P("No single behaviour stands out.", className="text-muted"),
    ])
