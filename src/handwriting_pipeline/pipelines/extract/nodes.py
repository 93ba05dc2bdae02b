"""Nodes of the extract pipeline: each enabled engine reads the evaluation forms.

One node per method (``extract_<method>``) so ``kedro viz`` shows them and each output
``predictions_<method>`` can be re-run alone. A disabled method outputs an empty predictions
table (downstream nodes always get their inputs) and logs why. Every node takes ``ready``, the
output of :func:`check_engines`, so that check runs before any form is read.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.engines import engine_class
from handwriting_pipeline.engines.base import Engine
from handwriting_pipeline.engines.runner import run_engine
from handwriting_pipeline.metrics import method_list
from handwriting_pipeline.predictions import empty_predictions

logger = logging.getLogger(__name__)

PAID_ENGINES = {"textract": "aws", "azure_form_recognizer": "azure_form_recognizer"}
RECORDED_ENGINES = ("recorded_textract", "recorded_azure_form_recognizer")
# engines whose failing check_ready only disables them (logged); others stop the run
OPTIONAL_ENGINES = ("tesseract", *RECORDED_ENGINES)


def enabled_engines(params: dict[str, Any]) -> list[str]:
    """``extract.engines`` as a list; from the command line a string separated by ``;``, ``+``,
    ``,`` or spaces works too: ``--params "extract.engines=rapidocr;recorded_textract"``."""
    return method_list(params.get("engines"))


def build_engine(method: str, params: dict[str, Any], credentials: dict[str, Any] | None = None) -> Engine:
    """The engine for ``method`` with its ``extract.<method>`` settings (and credentials for paid ones)."""
    settings = dict(params.get(method) or {})
    cls = engine_class(method)
    if method in PAID_ENGINES:
        settings["credentials"] = (credentials or {}).get(PAID_ENGINES[method]) or {}
    if method in RECORDED_ENGINES:
        settings["method"] = method
    return cls(**settings)


def check_engines(params: dict[str, Any], credentials: dict[str, Any]) -> dict[str, str]:
    """Before any form is read: every enabled paid engine must have credentials.

    Raises a RuntimeError naming what to set. Returns method -> "ready" / why it is skipped,
    for the log (secrets never appear).
    """
    status, problems = {}, []
    for method in enabled_engines(params):
        if method in ("donut",):
            status[method] = "checked by its node"
            continue
        try:
            build_engine(method, params, credentials).check_ready()
            status[method] = "ready"
        except KeyError as err:
            problems.append(str(err))
        except Exception as err:  # noqa: BLE001
            if method in OPTIONAL_ENGINES:
                status[method] = f"skipped: {err}"
            else:
                problems.append(f"{method}: {err}")
    if problems:
        raise RuntimeError("extract: enabled engines are not ready (nothing was read):\n  " + "\n  ".join(problems))
    logger.info("extract engines: %s", status)
    return status


def _extract(method: str, forms: LabelledForms, params: dict[str, Any], cache: Any,
             credentials: dict[str, Any] | None = None) -> pd.DataFrame:
    if method not in enabled_engines(params):
        logger.info("extract %s: not in extract.engines, empty predictions", method)
        return empty_predictions()
    engine = build_engine(method, params, credentials)
    try:
        engine.check_ready()
    except Exception as err:  # noqa: BLE001
        if method in OPTIONAL_ENGINES:
            logger.warning("extract %s skipped (empty predictions): %s", method, err)
            return empty_predictions()
        raise
    names = forms.labels["file_name"].tolist()
    if method in RECORDED_ENGINES:
        # replay only the forms the recording has; the others get no row (scored as "None")
        recorded = [n for n in names if n in engine]
        if not recorded:
            logger.warning("extract %s: none of the %d forms is in %s (empty predictions)",
                           method, len(names), engine.path)
            return empty_predictions()
        if len(recorded) < len(names):
            logger.info("extract %s: %d of %d forms are in %s", method, len(recorded), len(names), engine.path)
        names = recorded
    workers = int(params.get("workers", 1) or 1)
    return run_engine(engine, names, forms.images, cache=None if method in RECORDED_ENGINES else cache,
                      workers=workers, progress=bool(params.get("progress", True)))


def extract_rapidocr(forms: LabelledForms, params: dict[str, Any], cache: Any, ready: dict) -> pd.DataFrame:
    """RapidOCR (offline): boxes and labels found on the crop, each box read, fields split by rules."""
    return _extract("rapidocr", forms, params, cache)


def extract_tesseract(forms: LabelledForms, params: dict[str, Any], cache: Any, ready: dict) -> pd.DataFrame:
    """Tesseract (offline, optional): same layout and field rules as RapidOCR."""
    return _extract("tesseract", forms, params, cache)


def extract_textract(forms: LabelledForms, params: dict[str, Any], cache: Any, ready: dict,
                     credentials: dict[str, Any]) -> pd.DataFrame:
    """AWS Textract AnalyzeDocument FORMS (paid; cached per image)."""
    return _extract("textract", forms, params, cache, credentials)


def extract_azure_form_recognizer(forms: LabelledForms, params: dict[str, Any], cache: Any, ready: dict,
                                  credentials: dict[str, Any]) -> pd.DataFrame:
    """Azure Form Recognizer prebuilt-document (paid; cached per image)."""
    return _extract("azure_form_recognizer", forms, params, cache, credentials)


def extract_recorded_textract(forms: LabelledForms, params: dict[str, Any], ready: dict) -> pd.DataFrame:
    """Recorded Textract outputs (CSV) for the evaluation forms."""
    return _extract("recorded_textract", forms, params, None)


def extract_recorded_azure_form_recognizer(forms: LabelledForms, params: dict[str, Any], ready: dict) -> pd.DataFrame:
    """Recorded Azure Form Recognizer outputs (CSV) for the evaluation forms."""
    return _extract("recorded_azure_form_recognizer", forms, params, None)


def extract_donut(forms: LabelledForms, donut_model: Any, params: dict[str, Any], cache: Any, ready: dict) -> pd.DataFrame:
    """The trained Donut (``donut_model``) reads the forms in batches.

    Not enabled -> empty predictions (logged). Enabled but no trained model -> a clear error.
    """
    if "donut" not in enabled_engines(params):
        logger.info("extract donut: not in extract.engines, empty predictions")
        return empty_predictions()
    if donut_model is None or not getattr(donut_model, "available", False):
        reason = getattr(donut_model, "reason", "no model")
        raise RuntimeError(f"extract donut: no trained Donut model ({reason}). Train first: "
                           "kedro run --pipeline train, or remove donut from extract.engines")
    from handwriting_pipeline.engines.donut import DonutEngine

    settings = dict(params.get("donut") or {})
    engine = DonutEngine.from_model(donut_model, **settings)
    engine.check_ready()
    batch_size = int(getattr(engine, "batch_size", settings.get("batch_size", 8)) or 8)
    return run_engine(engine, forms.labels["file_name"].tolist(), forms.images, cache=cache,
                      workers=1, progress=bool(params.get("progress", True)), batch_size=batch_size)
