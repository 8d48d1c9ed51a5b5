"""What a level meter shows between readings: peak and RMS in dBFS that jump up at once
and fall back at a fixed rate, and the highest peak held since a reset. Shared by the
mixer's meters and the meters in the track headers (Qt-free)."""
from __future__ import annotations

import math

from studio.audio.levels import gain_to_db

METER_MIN_DB = -60.0
"""Bottom of the meter scale, dBFS (below it a meter is empty)."""
METER_MAX_DB = 6.0
"""Top of the meter scale, dBFS (above 0 is the red zone)."""
DECAY_DB_PER_TICK = 1.2
"""Meter fall-back per update (about 36 dB/s at 30 updates a second)."""


class MeterBallistics:
    """Peak and RMS as a meter draws them, plus the held peak.

    Attributes:
        peak_db, rms_db: what is drawn now (dBFS; ``-inf`` = empty).
        hold_db: the highest peak read since :meth:`reset_hold` (dBFS).
    """

    def __init__(self) -> None:
        self.peak_db = -math.inf
        self.rms_db = -math.inf
        self.hold_db = -math.inf

    def feed(self, peak: float, rms: float) -> None:
        """A new reading, linear full-scale units (1.0 = 0 dBFS): jumps up, falls back slowly."""
        p, r = gain_to_db(peak), gain_to_db(rms)
        self.peak_db = max(p, self.peak_db - DECAY_DB_PER_TICK)
        self.rms_db = max(r, self.rms_db - DECAY_DB_PER_TICK)
        self.hold_db = max(self.hold_db, p)

    def fall(self) -> bool:
        """No reading this tick: fall back by :data:`DECAY_DB_PER_TICK` (empty below the
        scale). Returns False when the meter was already empty (nothing to redraw)."""
        if self.peak_db == -math.inf and self.rms_db == -math.inf:
            return False
        self.peak_db = self.peak_db - DECAY_DB_PER_TICK if self.peak_db > METER_MIN_DB else -math.inf
        self.rms_db = self.rms_db - DECAY_DB_PER_TICK if self.rms_db > METER_MIN_DB else -math.inf
        return True

    def reset_hold(self) -> None:
        """Forget the held peak."""
        self.hold_db = -math.inf

    @staticmethod
    def fraction(db: float) -> float:
        """Position of ``db`` on the scale, 0 (:data:`METER_MIN_DB`) .. 1 (:data:`METER_MAX_DB`)."""
        return (min(METER_MAX_DB, max(METER_MIN_DB, db)) - METER_MIN_DB) / (METER_MAX_DB - METER_MIN_DB)
