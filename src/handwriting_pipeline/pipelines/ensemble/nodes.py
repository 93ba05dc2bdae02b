"""Nodes of the 'ensemble' pipeline: the offline vote and the LLM merge.

Both take every ``predictions_<engine>`` table (an empty one means the engine did not run) and
use the engines listed in ``ensemble.inputs`` ([] = every engine that produced output).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.ensemble.llm import HintIndex, LLMMerger, LLMSettings, load_prompt, render_prompt, variability_report
from handwriting_pipeline.ensemble.vote import available_inputs, review_queue, row_fields, vote
from handwriting_pipeline.fields import KEYS, clean_fields
from handwriting_pipeline.metrics import method_list
from handwriting_pipeline.predictions import empty_predictions, predictions_from_records

logger = logging.getLogger(__name__)


def _methods(params: dict[str, Any]) -> list[str]:
    return method_list(params.get("methods"))


def vote_predictions(params: dict[str, Any], **predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Offline vote over the engines' predictions (see :mod:`handwriting_pipeline.ensemble.vote`).

    Args:
        params: ``ensemble`` parameters (``methods``, ``inputs``, ``vote``).
        **predictions: ``{engine: predictions table}``.

    Returns:
        ``predictions_vote`` and ``review_queue`` (fields below ``vote.review_threshold``).
    """
    vote_params = params.get("vote") or {}
    if "vote" not in _methods(params):
        logger.info("ensemble: 'vote' not in ensemble.methods; predictions_vote is empty")
        return empty_predictions(), review_queue([], vote_params.get("review_threshold", 0.6))
    tables = available_inputs(predictions, method_list(params.get("inputs")))
    if not tables:
        logger.warning("ensemble vote: no engine produced predictions (all inputs empty); nothing to vote")
        return empty_predictions(), review_queue([], vote_params.get("review_threshold", 0.6))
    logger.info("ensemble vote over %s", ", ".join(f"{e} ({len(t)} forms)" for e, t in tables.items()))
    table, queue = vote(tables, vote_params)
    logger.info("ensemble vote: %d forms, %d fields sent to review", len(table), len(queue))
    return table, queue


def _majority(values: list[str]) -> tuple[str, float]:
    counts = Counter(values)
    best = max(counts.items(), key=lambda kv: (kv[1], -values.index(kv[0])))[0]  # ties: earliest repeat
    return best, counts[best] / len(values)


def llm_predictions(forms: LabelledForms, cache: ResponseCache, params: dict[str, Any],
                    credentials: dict[str, Any] | None = None,
                    **predictions: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """LLM merge of the engines' readings (see :mod:`handwriting_pipeline.ensemble.llm`).

    Runs ``ensemble.llm.repeats`` times per form (distinct cache keys); the output value of
    each field is the majority over repeats (ties: the first repeat) and its confidence the
    share of repeats that gave it. Forms the model fails on fall back to ``llm.fallback``'s
    output (default: the first input) with the reason in ``error``.

    ``credentials`` is ``{"openai": {"api_key": ...}}`` from conf/local/credentials.yml ({} when
    absent: the environment variable ``llm.api_key_env`` is used).

    Returns:
        ``predictions_llm`` and the repeat-variability report (per-field agreement, FLA per
        repeat and spread, tokens, cache hits).
    """
    if "llm" not in _methods(params):
        logger.info("ensemble: 'llm' not in ensemble.methods; predictions_llm is empty")
        return empty_predictions(), {"status": "disabled (add 'llm' to ensemble.methods)"}
    settings = LLMSettings.from_params(params.get("llm"))
    tables = available_inputs(predictions, method_list(settings.inputs) or method_list(params.get("inputs")))
    if not tables:
        logger.warning("ensemble llm: no engine produced predictions; nothing to merge")
        return empty_predictions(), {"status": "no inputs"}
    template = load_prompt(settings.prompt, settings.prompt_dir)
    api_key = ((credentials or {}).get("openai") or {}).get("api_key")
    merger = LLMMerger(settings, cache, api_key=api_key)
    merger.check_ready()  # before any work: key present, server answering
    hints = None
    k = int(settings.hints.get("k", 0) or 0)
    if k > 0:
        hints = HintIndex.from_files(settings.hints["train_dir"], settings.hints["ocr_csv"])
    fallback = settings.fallback or next(iter(tables))
    if fallback not in tables:
        raise ValueError(f"ensemble.llm.fallback '{fallback}' has no predictions; available: {sorted(tables)}")
    rows = {e: {r["file_name"]: r for r in t.to_dict("records")} for e, t in tables.items()}
    names = list(dict.fromkeys(n for t in tables.values() for n in t["file_name"]))
    repeats = max(1, int(settings.repeats))
    per_repeat: list[list[dict]] = [[] for _ in range(repeats)]
    records = []
    for name in tqdm(names, desc=f"llm {settings.model}", mininterval=5):
        readings = []
        for engine in tables:
            row = rows[engine].get(name)
            if row is None:
                continue
            conf = {k: row[f"{k}_conf"] for k in KEYS} if settings.include_confidence else None
            readings.append((row_fields(row), conf))
        near = hints.nearest(readings[0][0], k) if hints is not None and readings else None
        prompt = render_prompt(template, readings, near)
        answers, usage, seconds, errors = [], {"input_tokens": 0, "output_tokens": 0}, 0.0, []
        for r in range(repeats):
            result = merger.merge(prompt, repeat=r)
            seconds += float(result.get("seconds") or 0.0) if not result.get("cached") else 0.0
            for key in usage:
                usage[key] += 0 if result.get("cached") else int(result["usage"].get(key, 0))
            fields = result["fields"]
            if fields is None:
                back = rows[fallback].get(name)
                fields = row_fields(back) if back is not None else clean_fields({})
                errors.append(f"repeat {r}: {result['error']}; fell back to {fallback}")
            answers.append(fields)
            per_repeat[r].append({"file_name": name, **fields})
        chosen, conf = {}, {}
        for key in KEYS:
            chosen[key], conf[key] = _majority([a[key] for a in answers])
        records.append({
            "file_name": name, **chosen, **{f"{k}_conf": conf[k] if repeats > 1 else math.nan for k in KEYS},
            "seconds": seconds, **usage, "error": " | ".join(errors) or None,
        })
    table = predictions_from_records(records)
    labels = forms.labels if forms is not None else None
    report = variability_report([predictions_from_records(r) for r in per_repeat], labels)
    report.update({
        "model": settings.model, "base_url": settings.base_url or "https://api.openai.com/v1",
        "prompt": settings.prompt, "inputs": list(tables), "hints_k": k,
        "api_calls": merger.calls, "cache_hits": cache.hits if cache is not None else 0,
        "input_tokens": int(table["input_tokens"].sum()), "output_tokens": int(table["output_tokens"].sum()),
        "fallbacks": int(table["error"].notna().sum()),
    })
    logger.info("ensemble llm: %d forms, %d API calls, %d fallbacks", len(table), merger.calls, report["fallbacks"])
    return table, report
