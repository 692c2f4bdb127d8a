"""leaderboard package of nuwa-infinity."""
