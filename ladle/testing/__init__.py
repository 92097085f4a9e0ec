"""Helpers for driving a real `ladle server` from tests and benchmarks: the process, and the
MLflow client pointed at its registry. Nothing here runs at import time."""
