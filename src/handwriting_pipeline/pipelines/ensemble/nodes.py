"""Nodes of the 'ensemble' pipeline: the offline vote and the LLM merge.

Both take every ``predictions_<engine>`` table (an empty one means the engine did not run) and
use the engines listed in ``ensemble.inputs`` ([] = every engine that produced output).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from string import Template
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.ensemble.llm import (
    HintIndex,
    LLMMerger,
    LLMSettings,
    merge_form,
    prompt_template,
    render_prompt,
    variability_report,
)
from handwriting_pipeline.ensemble.vote import available_inputs, calibration_for, review_queue, vote
from handwriting_pipeline.fields import clean_fields
from handwriting_pipeline.predictions import empty_predictions, predictions_from_records, readings_by_form
from handwriting_pipeline.registry import engine_class, engine_methods, method_list

logger = logging.getLogger(__name__)


def _methods(params: dict[str, Any]) -> list[str]:
    return method_list(params.get("methods"))


def engine_calibrations(**models: Any) -> dict[str, Any]:
    """``{engine: calibration}`` that trained engines carry with their models (catalog inputs
    keyed by dataset name, e.g. ``fieldreader_model``)."""
    out = {}
    for method in engine_methods():
        cls = engine_class(method)
        if cls.catalog_inputs:
            calibration = cls.vote_calibration(**{k: models.get(v) for k, v in cls.catalog_inputs.items()})
            if calibration:
                out[method] = calibration
    return out


def _default_inputs(tables: dict[str, pd.DataFrame], calibration: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Without ``ensemble.inputs`` the vote takes the engines it has a calibration for (an
    uncalibrated engine's raw confidence would outvote calibrated ones)."""
    left_out = [e for e in tables if calibration_for(calibration, e) is None]
    if left_out:
        logger.info("ensemble vote: %s left out (no calibration; name them in ensemble.inputs to force)",
                    ", ".join(left_out))
    kept = {e: t for e, t in tables.items() if e not in left_out}
    return kept or tables


def vote_predictions(params: dict[str, Any], calibrations: dict[str, Any],
                     **predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Offline vote over the engines' predictions (see :mod:`handwriting_pipeline.ensemble.vote`).

    Args:
        params: ``ensemble`` parameters (``methods``, ``inputs``, ``vote``).
        calibrations: calibrations that came with trained engines' models (:func:`engine_calibrations`);
            they take precedence over ``vote.calibration``.
        **predictions: ``{engine: predictions table}``.

    Returns:
        ``predictions_vote`` and ``review_queue`` (fields below ``vote.review_threshold``).
    """
    vote_params = dict(params.get("vote") or {})
    vote_params["calibration"] = {**(vote_params.get("calibration") or {}), **(calibrations or {})}
    if "vote" not in _methods(params):
        logger.info("ensemble: 'vote' not in ensemble.methods; predictions_vote is empty")
        return empty_predictions(), review_queue([], vote_params.get("review_threshold", 0.6))
    wanted = method_list(params.get("inputs"))
    tables = available_inputs(predictions, wanted)
    if not tables:
        logger.warning("ensemble vote: no engine produced predictions (all inputs empty); nothing to vote")
        return empty_predictions(), review_queue([], vote_params.get("review_threshold", 0.6))
    if not wanted:
        tables = _default_inputs(tables, vote_params["calibration"])
    logger.info("ensemble vote over %s", ", ".join(f"{e} ({len(t)} forms)" for e, t in tables.items()))
    table, queue = vote(tables, vote_params)
    logger.info("ensemble vote: %d forms, %d fields sent to review", len(table), len(queue))
    return table, queue


def _llm_report(merger: LLMMerger, settings: LLMSettings, table: pd.DataFrame, per_repeat: list[list[dict]],
                forms: LabelledForms | None, inputs: list[str], cache: ResponseCache | None) -> dict[str, Any]:
    report = variability_report([predictions_from_records(r) for r in per_repeat],
                                forms.labels if forms is not None else None)
    report.update({
        "model": settings.model, "base_url": settings.base_url or "https://api.openai.com/v1",
        "prompt": settings.prompt, "inputs": inputs, "hints_k": int(settings.hints.get("k", 0) or 0),
        "response_format": merger.response_format, "rejected_response_formats": merger.rejected_formats,
        "api_calls": merger.calls, "cache_hits": cache.hits if cache is not None else 0,
        "input_tokens": int(table["input_tokens"].sum()), "output_tokens": int(table["output_tokens"].sum()),
        "fallbacks": int(table["error"].notna().sum()),
    })
    return report


def _hint_index(settings: LLMSettings, hint_forms: Callable[[], LabelledForms] | None,
                hint_readings: Callable[[], pd.DataFrame] | None) -> HintIndex | None:
    """The hint index from the catalog's lazy hint sources, read only when hints are on."""
    if int(settings.hints.get("k", 0) or 0) <= 0:
        return None
    if hint_forms is None or hint_readings is None:
        raise ValueError("ensemble.llm.hints.k > 0 needs the hint sources (catalog: llm_hint_forms, llm_hint_readings)")
    return HintIndex.from_tables(hint_forms().labels, hint_readings())


def _merge_forms(merger: LLMMerger, settings: LLMSettings, tables: dict[str, pd.DataFrame], fallback: str,
                 template: Template, hints: HintIndex | None) -> tuple[pd.DataFrame, list[list[dict]]]:
    k = int(settings.hints.get("k", 0) or 0)
    repeats = max(1, int(settings.repeats))
    records, per_repeat = [], [[] for _ in range(repeats)]
    for name, readings in tqdm(readings_by_form(tables).items(), desc=f"llm {settings.model}", mininterval=5):
        if not readings:
            records.append({"file_name": name, "error": "no engine read this form"})
            continue
        shown = [(f, c if settings.include_confidence else None) for f, c in readings.values()]
        near = hints.nearest(shown[0][0], k) if hints is not None else None
        back = readings.get(fallback, (clean_fields({}), None))[0]
        record, answers = merge_form(merger, render_prompt(template, shown, near), repeats, (fallback, back))
        records.append({"file_name": name, **record})
        for r, fields in enumerate(answers):
            per_repeat[r].append({"file_name": name, **fields})
    return predictions_from_records(records), per_repeat


def llm_predictions(forms: LabelledForms, cache: ResponseCache, params: dict[str, Any],
                    prompts: Mapping[str, Callable[[], str]] | Callable[[], Mapping] | None = None,
                    hint_forms: Callable[[], LabelledForms] | None = None,
                    hint_readings: Callable[[], pd.DataFrame] | None = None,
                    credentials: dict[str, Any] | None = None,
                    **predictions: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """LLM merge of the engines' readings (see :mod:`handwriting_pipeline.ensemble.llm`).

    Same readings as the vote (:func:`~handwriting_pipeline.predictions.readings_by_form`).
    Runs ``ensemble.llm.repeats`` times per form; each field is the majority over repeats and
    its confidence the share of repeats that gave it. Forms the model fails on fall back to
    ``llm.fallback``'s reading (default: the first input) with the reason in ``error``.
    ``credentials`` is ``{"openai": {"api_key": ...}}`` ({} when absent: ``llm.api_key_env``).
    ``prompts``, ``hint_forms`` and ``hint_readings`` are the catalog's lazy loaders
    (``llm_prompts``: ``{version: text loader}``; the hint sources are read only when
    ``llm.hints.k > 0``).

    Returns:
        ``predictions_llm`` and the repeat-variability report.
    """
    if "llm" not in _methods(params):
        logger.info("ensemble: 'llm' not in ensemble.methods; predictions_llm is empty")
        return empty_predictions(), {"status": "disabled (add 'llm' to ensemble.methods)"}
    settings = LLMSettings.from_params(params.get("llm"))
    tables = available_inputs(predictions, method_list(settings.inputs) or method_list(params.get("inputs")))
    if not tables:
        logger.warning("ensemble llm: no engine produced predictions; nothing to merge")
        return empty_predictions(), {"status": "no inputs"}
    fallback = settings.fallback or next(iter(tables))
    if fallback not in tables:
        raise ValueError(f"ensemble.llm.fallback '{fallback}' has no predictions; available: {sorted(tables)}")
    merger = LLMMerger(settings, cache, api_key=((credentials or {}).get("openai") or {}).get("api_key"))
    template = prompt_template((prompts() if callable(prompts) else prompts) or {}, settings.prompt)
    hints = _hint_index(settings, hint_forms, hint_readings)
    merger.check_ready()  # before any work: key present, server answering
    table, per_repeat = _merge_forms(merger, settings, tables, fallback, template, hints)
    report = _llm_report(merger, settings, table, per_repeat, forms, list(tables), cache)
    logger.info("ensemble llm: %d forms, %d API calls, %d fallbacks", len(table), merger.calls, report["fallbacks"])
    return table, report
