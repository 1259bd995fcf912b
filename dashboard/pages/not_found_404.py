"""A friendly page for addresses the dashboard does not have."""

from __future__ import annotations

import dash
from dash import html

from dashboard.components import empty_state, page_header

dash.register_page(__name__, path="/404", name="Not found", title="Not found · Sparkify churn")


def layout(**_query) -> html.Div:
    return html.Div([
        page_header("Page not found"),
        empty_state("There is no page at this address",
                    "Use the menu above: Overview, Customer, At-risk, Model or What-if."),
    ])
