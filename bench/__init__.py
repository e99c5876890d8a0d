"""Benchmarks (not tests): each prints a table and appends its figures to bench/README.md."""
