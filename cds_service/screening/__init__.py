"""Population screening: the hooks' own rules over a whole hospital's Bulk Data export.

Stage 1 (DuckDB, or Spark at scale) ingests NDJSON once into Parquet and keeps, by SQL whose
thresholds are the knowledge tables' most lenient, every patient a rule could flag. Stage 2 runs
the hooks' own pure functions on each of those patients. Nothing in the service imports this package.
"""
