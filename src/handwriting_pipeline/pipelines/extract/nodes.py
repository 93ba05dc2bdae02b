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
from handwriting_pipeline.engines.runner import run_engine
from handwriting_pipeline.fields.formspec import HSF_FORM, load_form
from handwriting_pipeline.methods import READY, ExtractSettings, build_engine, chosen_engines, ready_engines
from handwriting_pipeline.predictions import empty_predictions
from handwriting_pipeline.registry import engine_class

logger = logging.getLogger(__name__)


def check_engines(params: Mapping[str, Any] | ExtractSettings, credentials: dict[str, Any], form: str | None = None,
                  **datasets: Any) -> dict[str, str]:
    """Before any form is read: which enabled engines run (:func:`~handwriting_pipeline.methods.ready_engines`).

    ``datasets`` are the catalog inputs the engines declare (``donut_model``). Raises a
    RuntimeError naming every problem (paid engine without credentials, unknown engine, an
    explicitly requested engine without its trained model). ``form``: the run's form (``params:form``);
    an engine that cannot read it is skipped. Returns method -> "ready" / why it is skipped, for
    the log (secrets never appear).
    """
    settings = ExtractSettings.from_params(params)
    wanted, explicit = chosen_engines(settings.engines)
    specs, skipped = ready_engines(wanted, explicit, settings.blocks, credentials, datasets, where="extract",
                                   form=load_form(form or HSF_FORM))
    status = {m: READY if m in {s.method for s in specs} else f"skipped: {skipped[m]}" for m in wanted}
    logger.info("extract engines: %s", status)
    return status


def extract(forms: LabelledForms, params: Mapping[str, Any] | ExtractSettings, status: Mapping[str, str], cache: Any = None,
            credentials: dict[str, Any] | None = None, form: str | None = None, *, method: str,
            **inputs: Any) -> pd.DataFrame:
    """Every form ``method`` can read (:meth:`Engine.forms_to_read`), read by the runner.

    ``status`` is the output of :func:`check_engines`: an engine that is not "ready" there gives
    empty predictions. ``inputs`` are the engine's catalog inputs (Donut: ``model``); ``form``
    the run's form (:meth:`Engine.form_inputs`: an engine that reads any spec is built for it).
    """
    if status.get(method) != READY:
        logger.info("extract %s: %s; empty predictions", method, status.get(method, "not in extract.engines"))
        return empty_predictions(forms.keys)
    settings = ExtractSettings.from_params(params)
    engine = build_engine(method, settings.blocks, credentials,
                          **inputs, **engine_class(method).form_inputs(load_form(form or HSF_FORM)))
    engine.check_ready()
    names = engine.forms_to_read(forms.labels["file_name"].tolist())
    if not names:
        return empty_predictions(forms.keys)
    return run_engine(engine, names, forms.images, cache=cache, workers=int(settings.workers or 1),
                      progress=bool(settings.progress), keys=forms.keys)


def extract_node(method: str) -> Callable[..., pd.DataFrame]:
    """:func:`extract` for one method, named ``extract_<method>`` (the node's function)."""

    def run(**kwargs: Any) -> pd.DataFrame:
        return extract(method=method, **kwargs)

    run.__name__ = run.__qualname__ = f"extract_{method}"
    run.__doc__ = f"The '{method}' engine reads the evaluation forms (see :func:`extract`)."
    return run
