"""musicgen engine package."""
