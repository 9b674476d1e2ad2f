"""Selection ops: where, maximum, minimum, clip, max, min, sort — and their tie and kink policy."""
from __future__ import annotations

__all__: list = []
