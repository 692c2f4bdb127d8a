"""The evaluation harness: a task plus a model in, results and leaderboard rows out."""
