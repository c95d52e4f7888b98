"""Run a federated plan: fragments concurrently at their sources, the residual in DuckDB."""
