"""Pure clinical logic: facts in, findings out. No Flask, no HTTP, no I/O beyond loading data tables."""
