"""ACE-Step 1.5 engine package (diffusers ``AceStepPipeline``; our own sampling loop).

* ``manifest``: engine entries and model records (torch-free).
* ``engine``: :class:`~engines.generation.acestep.engine.AceStepEngine` (generate, extend,
  inpaint, add_stem, restyle) and ``AceStepExtractEngine`` (separate one stem).
* ``sampler``: conditioning, the flow-matching loop, repaint re-injection and border
  blending (ACE-Step 1.5 PR #816), and the per-step hook for control guidance.
* ``vae``: tiled VAE encode/decode with overlap (long songs in bounded memory).
* ``audio``: resampling (soxr), exact lengths, crossfades, loudness (BS.1770, pyloudnorm).
* ``prompting``: tempo, meter, key and instrument names in the model's vocabulary.
* ``loading``: ``AceStepPipeline.from_pretrained`` and model-file hashes.
"""
