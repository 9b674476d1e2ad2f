"""Indexing, joining and splitting: X[...], take, take_along_axis, .at[...], concatenate, stack, split."""
from __future__ import annotations

__all__: list = []
