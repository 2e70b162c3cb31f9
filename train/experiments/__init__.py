"""Experiments and reporting: variants and baselines by name, runs over folds and seeds, metrics, tables, report."""
