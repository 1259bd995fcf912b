"""Churn model for the Sparkify lakehouse: train, evaluate honestly, score back into tables.

Entry points: `python -m models_ml.train`, `python -m models_ml.score` and
`models_ml.whatif.what_if(...)` for the dashboard. No module starts Spark at import time.
"""
