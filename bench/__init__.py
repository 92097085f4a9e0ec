"""Benchmark harness: ladle versus `mlflow models serve` (run `python -m bench.run`)."""
