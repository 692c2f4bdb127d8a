"""``python -m leaderboard ...``: the same commands as ``nuwa-eval leaderboard``."""

import sys

from .cli import main

sys.exit(main())
