"""Music generation engines: ACE-Step 1.5 (diffusers) and MusicGen (transformers)."""
