"""Diagnostics: checks of the model and the metrics that are not leaderboard tasks."""
