"""The arrange view: ruler, track headers, lanes, clips, takes and control lanes."""
