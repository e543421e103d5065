"""`make bench`: patient-view latency and memory, measured in-process against a floor app."""
