"""Evaluation: datasets, scorers, run records and reports, through the same pipeline as the CLI and UI."""
