"""evaluation package of nuwa-infinity."""
