"""The one list of methods: every extraction engine and every ensemble.

Adding an engine is one module (an :class:`~handwriting_pipeline.engines.base.Engine` subclass
that declares its capabilities), one line in :data:`ENGINES` and one ``extract.<method>``
parameter block. Everything else is derived from here: the extract nodes (``extract_<method>``),
the ``predictions_{method}`` dataset factory, the vote's and the LLM's inputs, the evaluation
report and its method order.

``ENGINES`` maps a method name to ``"module:Class"`` (or a class); :func:`engine_class` imports
it only when asked, so a missing optional dependency (boto3, Azure SDK, pytesseract, torch)
breaks only the engine that needs it.

Floor 0 (ground). May import: nothing from this project (engine classes are named as
strings and imported only when asked; the ``Engine`` type only under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handwriting_pipeline.engines.base import Engine

#: Extraction engines (pipeline ``extract``), in report order.
ENGINES: dict[str, str | type[Engine]] = {
    "rapidocr": "handwriting_pipeline.engines.rapidocr_engine:RapidOCREngine",
    "tesseract": "handwriting_pipeline.engines.tesseract_engine:TesseractEngine",
    "textract": "handwriting_pipeline.engines.textract:TextractEngine",
    "azure_form_recognizer": "handwriting_pipeline.engines.azure:AzureFormRecognizerEngine",
    "fieldreader": "handwriting_pipeline.engines.fieldreader:FieldReaderEngine",
    "donut": "handwriting_pipeline.engines.donut:DonutEngine",
    "recorded_textract": "handwriting_pipeline.engines.recorded:RecordedEngine",
    "recorded_azure_form_recognizer": "handwriting_pipeline.engines.recorded:RecordedEngine",
}

#: Ensembles (pipeline ``ensemble``), in report order.
ENSEMBLE_METHODS: tuple[str, ...] = ("vote", "llm")


def engine_class(method: str) -> type[Engine]:
    """The engine class registered under ``method`` (imported now)."""
    if method not in ENGINES:
        raise KeyError(f"Unknown engine '{method}'. Known engines: {', '.join(ENGINES)}")
    target = ENGINES[method]
    if not isinstance(target, str):
        return target
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def engine_methods() -> tuple[str, ...]:
    """Every registered engine, in report order."""
    return tuple(ENGINES)


def all_methods() -> tuple[str, ...]:
    """Every method the evaluation reports: the engines, then the ensembles."""
    return engine_methods() + ENSEMBLE_METHODS


def predictions_dataset(method: str) -> str:
    """Catalog name of a method's predictions table (dataset factory ``predictions_{method}``)."""
    return f"predictions_{method}"


def method_list(value: Any) -> list[str]:
    """A list-of-methods parameter that may come from the command line as one string.

    Kedro splits ``--params`` at commas, so ``"rapidocr;donut"``, ``"vote+llm"``, commas or
    spaces all separate names. None or "" -> [].
    """
    if not value:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,+;]+", value) if v]
    return [str(v) for v in value]


def select_methods(value: Any, known: Sequence[str], what: str, everything: Iterable[str] | None = None,
                   noun: str = "methods") -> list[str]:
    """The methods a parameter names, checked against ``known`` (order kept, repeats dropped).

    None, "" or "all" -> ``everything`` (default: ``known``). Unknown names raise a ValueError
    that names the parameter (``what``) and the choices.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "all"}):
        return list(known if everything is None else everything)
    wanted = method_list(value)
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ValueError(f"{what} names unknown {noun} {unknown}; choose from {list(known)}")
    return list(dict.fromkeys(wanted))


def select_one(value: Any, known: Sequence[str], what: str) -> str:
    """A parameter that names exactly one of ``known`` (``curation.source``), parsed like
    :func:`method_list`; anything else raises a ValueError naming the parameter and the choices."""
    names = method_list(value)
    if len(names) != 1 or names[0] not in known:
        raise ValueError(f"{what} is '{value}'; choose one of {', '.join(known)}")
    return names[0]
