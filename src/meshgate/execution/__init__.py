"""Run a federated plan: fragments concurrently at their sources, the residual on the
service's residual engine (DuckDB), stopped only through the run's QueryContext."""
