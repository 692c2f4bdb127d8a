"""Data layer: procedural landscapes (the embedded default), real LHQ/LHQC loaders, splits."""
