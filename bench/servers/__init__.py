"""Servers the benchmarks start in their own processes, so clients are measured on their own."""
