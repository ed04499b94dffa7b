"""Measurements of sealbox against baselines run in the same session (see README.md)."""
