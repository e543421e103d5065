"""What an operator sees: Prometheus metrics, structured JSON logs, per-request timings."""
