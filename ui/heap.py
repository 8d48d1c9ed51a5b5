"""Keeping Python's cyclic garbage collector out of the window's frame time.

A full (generation 2) collection walks every tracked object: in the studio process
that is the project model (a note is an object), the undo history and every loaded
module, so one pass costs tens of milliseconds on a modest project, at moments the
interpreter picks. :func:`settle` collects once at a moment the musician expects a
pause (a project was just opened or saved) and then moves every live object into the
permanent generation with :func:`gc.freeze` (Python >= 3.7; the technique Python's
``gc`` documentation describes for long-lived servers), so later automatic
collections only walk objects created since.
"""
from __future__ import annotations

import gc


def settle(full: bool = True) -> int:
    """Collect garbage, then freeze every surviving object.

    Args:
        full: unfreeze and collect all generations first (after a project is opened or
            closed, so that the previous project's objects are freed); otherwise only
            the young generations are collected before freezing (cheap: after a save).

    Returns:
        The number of objects now in the permanent generation.
    """
    if full:
        gc.unfreeze()
        gc.collect()
    else:
        gc.collect(1)
    gc.freeze()
    return gc.get_freeze_count()
