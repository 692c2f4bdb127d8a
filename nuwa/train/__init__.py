"""Training entry point (``nuwa-train``) and its stages; see nuwa/train/cli.py."""
