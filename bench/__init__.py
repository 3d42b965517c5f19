"""Benchmarks: one module each, `python -m bench.NAME --json`, against a baseline measured in the same run."""
