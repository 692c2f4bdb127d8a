"""``python -m nuwa.train`` and ``torchrun -m nuwa.train``: same as ``nuwa-train``."""

from nuwa.train.cli import main

if __name__ == "__main__":
    main()
