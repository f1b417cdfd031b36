"""Shared fixtures. Family-specific fixtures live next to their tests."""

from __future__ import annotations
