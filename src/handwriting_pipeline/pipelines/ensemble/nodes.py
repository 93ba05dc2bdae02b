"""Nodes of the 'ensemble' pipeline: the offline vote, the LLM merge and the cascade.

Each takes every ``predictions_<engine>`` table (an empty one means the engine did not run) and
use the engines listed in ``ensemble.inputs`` ([] = every engine that produced output). The work
is in :mod:`handwriting_pipeline.ensemble`; the calibration of trained engines and its
precedence in :mod:`handwriting_pipeline.methods`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.ensemble import cascade, llm
from handwriting_pipeline.ensemble import vote as voting
from handwriting_pipeline.methods import model_calibrations, model_choices, model_guarantees, vote_calibration
from handwriting_pipeline.registry import engine_class


def engine_calibrations(**models: Any) -> dict[str, Any]:
    """``{engine: calibration}`` that trained engines carry with their models (catalog inputs
    keyed by dataset name, e.g. ``fieldreader_model``)."""
    return model_calibrations(models)


def engine_choices(**models: Any) -> dict[str, Any]:
    """``{engine: [choice, ...]}``: what trained engines chose on forms they never trained on
    (catalog inputs keyed by dataset name), for the report."""
    return model_choices(models)


def engine_guarantees(**models: Any) -> dict[str, Any]:
    """``{"<method>:<engines>": {level: entry}}``: the digitize guarantees trained engines carry
    (catalog inputs keyed by dataset name), checked on the evaluated forms by the report."""
    return model_guarantees(models)


def vote_predictions(params: dict[str, Any], calibrations: dict[str, Any],
                     **predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Offline vote over the engines' predictions (:func:`handwriting_pipeline.ensemble.vote.vote_predictions`);
    ``calibrations`` (from the trained models) win over ``ensemble.vote.calibration``.

    Returns ``predictions_vote`` and ``review_queue`` (fields below ``vote.review_threshold``).
    """
    calibration = vote_calibration((params.get("vote") or {}).get("calibration"), calibrations)
    return voting.vote_predictions(params, calibration, predictions)


def llm_predictions(forms: LabelledForms, cache: ResponseCache, params: dict[str, Any],
                    prompts: Mapping[str, Callable[[], str]] | Callable[[], Mapping] | None = None,
                    hint_forms: Callable[[], LabelledForms] | None = None,
                    hint_readings: Callable[[], pd.DataFrame] | None = None,
                    credentials: dict[str, Any] | None = None,
                    **predictions: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """LLM merge of the engines' readings (:func:`handwriting_pipeline.ensemble.llm.llm_predictions`).

    Returns ``predictions_llm`` and the repeat-variability report.
    """
    return llm.llm_predictions(forms, cache, params, prompts, hint_forms, hint_readings, credentials, **predictions)


def cascade_predictions(params: dict[str, Any], calibrations: dict[str, Any],
                        **predictions: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The cascade (``digitize.method``'s default) replayed over the engines' predictions
    (:func:`handwriting_pipeline.ensemble.cascade.cascade_predictions`): the fast engines
    (``fast = True``) read every form, the others only the forms they escalate, the vote merges
    with the calibration of :func:`vote_predictions`.

    Returns ``predictions_cascade`` and ``cascade_escalation`` (which engines read which share).
    """
    calibration = vote_calibration((params.get("vote") or {}).get("calibration"), calibrations)
    return cascade.cascade_predictions(params, calibration, predictions, lambda engine: engine_class(engine).fast)
