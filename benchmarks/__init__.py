"""Runnable benchmarks and the data sets they need (see README.md)."""
