"""Nodes of the extract pipeline: each enabled engine reads the evaluation forms.

``check_engines`` runs first: it decides which engines run (``extract.engines``) and stops the
run before any form is read when an enabled engine cannot work (a paid engine without
credentials, an explicitly requested engine without its trained model). Then one node per
registered engine (:func:`extract`, named ``extract_<method>``) writes ``predictions_<method>``;
an engine that does not run outputs an empty predictions table (downstream nodes always get
their inputs) and logs why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.engines.base import Engine
from handwriting_pipeline.engines.runner import run_engine
from handwriting_pipeline.predictions import empty_predictions
from handwriting_pipeline.registry import engine_class, engine_methods, method_list

logger = logging.getLogger(__name__)

READY = "ready"
DEFAULT = "default"


def default_engines() -> list[str]:
    """``extract.engines: default``: every registered engine whose class says ``default = True``."""
    return [m for m in engine_methods() if engine_class(m).default]


def enabled_engines(params: Mapping[str, Any]) -> list[str]:
    """``extract.engines`` as a list: ``default`` (or nothing) -> :func:`default_engines`; a list,
    or from the command line a string separated by ``;``, ``+``, ``,`` or spaces:
    ``--params "extract.engines=rapidocr;recorded_textract"``."""
    value = params.get("engines")
    if value is None or method_list(value) == [DEFAULT]:
        return default_engines()
    return list(dict.fromkeys(method_list(value)))


def is_default_run(params: Mapping[str, Any]) -> bool:
    value = params.get("engines")
    return value is None or method_list(value) == [DEFAULT]


def engine_inputs(cls: type[Engine], datasets: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's :attr:`~Engine.catalog_inputs` (keyword -> dataset) filled from ``datasets``."""
    return {keyword: datasets.get(dataset) for keyword, dataset in cls.catalog_inputs.items()}


def build_engine(method: str, params: Mapping[str, Any], credentials: Mapping[str, Any] | None = None,
                 **inputs: Any) -> Engine:
    """The engine for ``method`` with its ``extract.<method>`` settings, its credentials section
    and its catalog inputs (keyword arguments named as in ``catalog_inputs``)."""
    cls = engine_class(method)
    section = (credentials or {}).get(cls.credentials) if cls.credentials else None
    return cls.from_params(method, params.get(method) or {}, section or {}, **inputs)


def engine_status(method: str, params: Mapping[str, Any], credentials: Mapping[str, Any],
                  datasets: Mapping[str, Any], explicit: bool) -> str:
    """"ready" or why the engine is skipped; raises when it must stop the run."""
    cls = engine_class(method)
    missing = cls.unavailable(**engine_inputs(cls, datasets))
    if missing:
        if explicit:
            raise RuntimeError(f"{method}: no trained model ({missing}); train it first: kedro run --pipeline "
                               f"train, or remove {method} from extract.engines")
        logger.warning("extract %s: skipped, no trained model (%s); train it: kedro run --pipeline train",
                       method, missing)
        return f"skipped: no trained model ({missing})"
    if cls.requires_training():
        return READY  # its node loads the model
    try:
        build_engine(method, params, credentials).check_ready()
    except Exception as err:  # noqa: BLE001
        if cls.optional:
            logger.warning("extract %s skipped (empty predictions): %s", method, err)
            return f"skipped: {err}"
        raise RuntimeError(f"{method}: {err}") from err
    return READY


def check_engines(params: dict[str, Any], credentials: dict[str, Any], **datasets: Any) -> dict[str, str]:
    """Before any form is read: which enabled engines run.

    ``datasets`` are the catalog inputs the engines declare (``donut_model``). Raises a
    RuntimeError naming every problem (paid engine without credentials, unknown engine, an
    explicitly requested engine without its trained model). Returns method -> "ready" / why it
    is skipped, for the log (secrets never appear).
    """
    status, problems = {}, []
    explicit = not is_default_run(params)
    for method in enabled_engines(params):
        try:
            status[method] = engine_status(method, params, credentials or {}, datasets, explicit)
        except (KeyError, RuntimeError) as err:
            problems.append(str(err.args[0]) if err.args else str(err))
    if problems:
        raise RuntimeError("extract: enabled engines are not ready (nothing was read):\n  " + "\n  ".join(problems))
    logger.info("extract engines: %s", status)
    return status


def extract(forms: LabelledForms, params: dict[str, Any], status: Mapping[str, str], cache: Any = None,
            credentials: dict[str, Any] | None = None, *, method: str, **inputs: Any) -> pd.DataFrame:
    """Every form ``method`` can read (:meth:`Engine.forms_to_read`), read by the runner.

    ``status`` is the output of :func:`check_engines`: an engine that is not "ready" there gives
    empty predictions. ``inputs`` are the engine's catalog inputs (Donut: ``model``).
    """
    if status.get(method) != READY:
        logger.info("extract %s: %s; empty predictions", method, status.get(method, "not in extract.engines"))
        return empty_predictions()
    engine = build_engine(method, params, credentials, **inputs)
    engine.check_ready()
    names = engine.forms_to_read(forms.labels["file_name"].tolist())
    if not names:
        return empty_predictions()
    return run_engine(engine, names, forms.images, cache=cache, workers=int(params.get("workers", 1) or 1),
                      progress=bool(params.get("progress", True)))


def extract_node(method: str) -> Callable[..., pd.DataFrame]:
    """:func:`extract` for one method, named ``extract_<method>`` (the node's function)."""

    def run(**kwargs: Any) -> pd.DataFrame:
        return extract(method=method, **kwargs)

    run.__name__ = run.__qualname__ = f"extract_{method}"
    run.__doc__ = f"The '{method}' engine reads the evaluation forms (see :func:`extract`)."
    return run
