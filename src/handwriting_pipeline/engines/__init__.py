"""Extraction engines: one interface (:mod:`.base`), one module per engine.

The list of engines is :data:`handwriting_pipeline.registry.ENGINES` (re-exported here).

Floor 5. May import: floors 0-4 (``datasets``, ``donut``, ``fieldreader``, ``forms``,
``fields``, ``config``, ``registry``, ``predictions``, ``recorded_csv``) — not ``ensemble`` (same
floor), never ``methods``, ``digitize`` or ``pipelines``.
"""

from __future__ import annotations

from handwriting_pipeline.engines.base import Engine, EngineResult, image_sha256
from handwriting_pipeline.registry import ENGINES, engine_class

__all__ = ["ENGINES", "Engine", "EngineResult", "engine_class", "image_sha256"]
