"""Voice conversion engines (RVC v2 voice models)."""
