"""Nodes of the 'ensemble' pipeline: the offline vote, the LLM merge and the cascade.

Each takes every ``predictions_<engine>`` table (an empty one means the engine did not run) and
use the engines listed in ``ensemble.inputs`` ([] = every engine that produced output). The work
is in :mod:`handwriting_pipeline.ensemble`; the calibration of trained engines and its
precedence in :mod:`handwriting_pipeline.methods`. The vote and the cascade read the run's form
spec (``params:form``): its fields, validated per field type, the gazetteer across its us_city /
us_state / us_zip fields (:mod:`handwriting_pipeline.ensemble.spec`). The LLM merge's prompt asks
for the HSF top section's fields: on a form of another layout it gives an empty table with the
form's fields and says so in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.ensemble import cascade, llm
from handwriting_pipeline.ensemble import vote as voting
from handwriting_pipeline.fields.formspec import HSF_FORM, is_hsf_layout, load_form
from handwriting_pipeline.methods import (
    model_calibrations,
    model_choices,
    model_guarantees,
    model_recalibrations,
    vote_calibration,
    with_recalibrations,
)
from handwriting_pipeline.predictions import empty_predictions
from handwriting_pipeline.registry import engine_class

logger = logging.getLogger(__name__)


def _other_layout(form: str | None, method: str) -> tuple[str, ...] | None:
    """The form's fields when ``method`` cannot merge readings of it (not the HSF layout), else None."""
    spec = load_form(form or HSF_FORM)
    if is_hsf_layout(spec):
        return None
    logger.info("ensemble %s: weighs the '%s' layout's fields only; skipped on form '%s' (empty predictions)",
                method, HSF_FORM, spec.name)
    return spec.keys


def engine_calibrations(**models: Any) -> dict[str, Any]:
    """``{engine: calibration}`` that trained engines carry with their models (catalog inputs
    keyed by dataset name, e.g. ``fieldreader_model``)."""
    return model_calibrations(models)


def engine_choices(**models: Any) -> dict[str, Any]:
    """``{engine: [choice, ...]}``: what trained engines chose on forms they never trained on
    (catalog inputs keyed by dataset name), for the report."""
    return model_choices(models)


def engine_recalibrations(**models: Any) -> dict[str, Any]:
    """``{engine set: recalibration}`` of the vote's confidence that trained engines carry (catalog
    inputs keyed by dataset name); they win over ``ensemble.vote.recalibration``."""
    return model_recalibrations(models)


def engine_guarantees(**models: Any) -> dict[str, Any]:
    """``{"<method>:<engines>": {level: entry}}``: the digitize guarantees trained engines carry
    (catalog inputs keyed by dataset name), checked on the evaluated forms by the report."""
    return model_guarantees(models)


def vote_predictions(params: dict[str, Any], calibrations: dict[str, Any], form: str | None = None,
                     recalibrations: dict[str, Any] | None = None,
                     **predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Offline vote over the engines' predictions of the form ``form`` (None: the HSF form;
    :func:`handwriting_pipeline.ensemble.vote.vote_predictions`); ``calibrations`` and
    ``recalibrations`` (from the trained models) win over ``ensemble.vote``'s.

    Returns ``predictions_vote`` and ``review_queue`` (fields below ``vote.review_threshold``).
    """
    spec = load_form(form or HSF_FORM)
    calibration = vote_calibration((params.get("vote") or {}).get("calibration"), calibrations, spec)
    return voting.vote_predictions(with_recalibrations(params, recalibrations, spec), calibration, predictions, spec)


def llm_predictions(forms: LabelledForms, cache: ResponseCache, params: dict[str, Any],
                    prompts: Mapping[str, Callable[[], str]] | Callable[[], Mapping] | None = None,
                    hint_forms: Callable[[], LabelledForms] | None = None,
                    hint_readings: Callable[[], pd.DataFrame] | None = None,
                    credentials: dict[str, Any] | None = None, form: str | None = None,
                    **predictions: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """LLM merge of the engines' readings (:func:`handwriting_pipeline.ensemble.llm.llm_predictions`).

    Returns ``predictions_llm`` and the repeat-variability report.
    """
    if keys := _other_layout(form, "llm"):
        return empty_predictions(keys), {"status": f"not run: form '{form}' is not the '{HSF_FORM}' layout"}
    return llm.llm_predictions(forms, cache, params, prompts, hint_forms, hint_readings, credentials, **predictions)


def cascade_predictions(params: dict[str, Any], calibrations: dict[str, Any], form: str | None = None,
                        recalibrations: dict[str, Any] | None = None,
                        **predictions: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The cascade (``digitize.method``'s default) replayed over the engines' predictions
    (:func:`handwriting_pipeline.ensemble.cascade.cascade_predictions`): the fast engines
    (``fast = True``) read every form, the others only the forms they escalate, the vote merges
    with the calibration of :func:`vote_predictions`, on the form ``form`` (None: the HSF form).

    Returns ``predictions_cascade`` and ``cascade_escalation`` (which engines read which share).
    """
    spec = load_form(form or HSF_FORM)
    calibration = vote_calibration((params.get("vote") or {}).get("calibration"), calibrations, spec)
    return cascade.cascade_predictions(with_recalibrations(params, recalibrations, spec), calibration, predictions,
                                       lambda engine: engine_class(engine).fast, spec)
