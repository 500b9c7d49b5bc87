"""Benchmarks: each a script printing its figures beside a baseline measured in the same run."""
