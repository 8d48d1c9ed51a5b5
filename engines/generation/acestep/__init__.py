"""acestep engine package."""
