"""The detection engine: ddwaf 2.x rule documents in, events and actions out."""
