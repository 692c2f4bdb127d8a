"""Experiment drivers over the harness: paper tables, ablations, regression, bundle history."""
