"""Sparkify churn lakehouse: shared settings, the embedded Spark session and the demo data generator."""
