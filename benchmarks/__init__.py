"""benchmarks package of nuwa-infinity."""
