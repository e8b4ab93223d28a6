"""Configuration that changes while the application runs: a watched file, later the console."""
