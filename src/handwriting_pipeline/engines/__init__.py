"""Extraction engines: one interface (:mod:`.base`), one module per engine.

``ENGINES`` maps a method name to ``"module:Class"``; :func:`engine_class` imports it only when
asked, so a missing optional dependency (boto3, Azure SDK, pytesseract, torch) breaks only the
engine that needs it.
"""

from __future__ import annotations

import importlib

from handwriting_pipeline.engines.base import Engine, EngineResult, image_sha256

ENGINES: dict[str, str] = {
    "rapidocr": "handwriting_pipeline.engines.rapidocr_engine:RapidOCREngine",
    "tesseract": "handwriting_pipeline.engines.tesseract_engine:TesseractEngine",
    "textract": "handwriting_pipeline.engines.textract:TextractEngine",
    "azure_form_recognizer": "handwriting_pipeline.engines.azure:AzureFormRecognizerEngine",
    "recorded_textract": "handwriting_pipeline.engines.recorded:RecordedEngine",
    "recorded_azure_form_recognizer": "handwriting_pipeline.engines.recorded:RecordedEngine",
    "donut": "handwriting_pipeline.engines.donut:DonutEngine",
}


def engine_class(name: str) -> type[Engine]:
    """The engine class registered under ``name`` (imported now)."""
    if name not in ENGINES:
        raise KeyError(f"Unknown engine '{name}'. Known engines: {', '.join(ENGINES)}")
    module, cls = ENGINES[name].split(":")
    return getattr(importlib.import_module(module), cls)


__all__ = ["ENGINES", "Engine", "EngineResult", "engine_class", "image_sha256"]
