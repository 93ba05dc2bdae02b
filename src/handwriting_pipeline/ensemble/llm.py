"""LLM merge: an OpenAI-compatible chat model combines the engines' JSON into one answer.

Works with OpenAI and with any server that speaks the same API (vLLM, llama.cpp server,
Ollama): set ``ensemble.llm.model`` and ``ensemble.llm.base_url``; the key comes from
``conf/local/credentials.yml`` (``openai: api_key:``) or the environment variable named by
``ensemble.llm.api_key_env`` (local servers need none).

* prompt templates are files (``conf/base/prompts/<version>.txt``, ``string.Template`` with
  ``$readings`` and ``$hints``) the pipeline reads through the catalog (``llm_prompts``), like
  the hint sources (``llm_hint_forms``, ``llm_hint_readings``);
* temperature 0 and JSON output constrained to the answer's JSON schema (four string keys)
  where the server supports it (``constrained: auto`` tries OpenAI's
  ``{"type": "json_schema", ...}``, then the ``{"type": "json_object", "schema": ...}`` of
  llama.cpp / llama-cpp-python, then plain ``{"type": "json_object"}``; the first format the
  server accepts is kept for the run); ``json_mode: false`` sends no ``response_format`` at
  all for servers without it. The answer is validated in every mode;
* the answer must be a JSON object with exactly the keys DATE, CITY, STATE, ZIP and string
  values, else the model is asked once more, then the form falls back to a configured engine's
  output with the reason in ``error``;
* 429s, timeouts and connection errors are retried by the ``openai`` client itself
  (``max_retries``, ``timeout``);
* every valid answer is cached (:class:`~handwriting_pipeline.datasets.cache.ResponseCache`)
  under a hash of model + base_url + prompt + temperature + repeat index, so a re-run makes
  no paid call; tokens are recorded for cost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import statistics
import time
from collections import Counter
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from string import Template
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.ensemble.settings import CONSTRAINED_MODES, EnsembleSettings, LLMSettings
from handwriting_pipeline.ensemble.vote import available_inputs
from handwriting_pipeline.fields import KEYS, NONE, clean_fields, clean_value
from handwriting_pipeline.metrics import aggregate, score_forms
from handwriting_pipeline.predictions import empty_predictions, predictions_from_records, readings_by_form
from handwriting_pipeline.registry import method_list

logger = logging.getLogger(__name__)

RETRY_MESSAGE = (
    'That was not valid. Answer with only a JSON object with exactly the keys "DATE", "CITY", '
    '"STATE" and "ZIP", each with a string value ("None" when there is no value).'
)


# --------------------------------------------------------------------------- output formats
#: The answer's JSON schema: an object with exactly the four string keys, in this order.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {k: {"type": "string"} for k in KEYS},
    "required": list(KEYS),
    "additionalProperties": False,
}

#: ``response_format`` per format name. ``json_schema``: OpenAI structured outputs (OpenAI,
#: vLLM, Ollama, llama.cpp ``llama-server``); ``json_object_schema``: the schema inside JSON mode
#: (llama-cpp-python's server, llama.cpp ``llama-server``); ``json_object``: JSON mode only.
RESPONSE_FORMATS: dict[str, dict[str, Any] | None] = {
    "json_schema": {"type": "json_schema",
                    "json_schema": {"name": "form_fields", "strict": True, "schema": ANSWER_SCHEMA}},
    "json_object_schema": {"type": "json_object", "schema": ANSWER_SCHEMA},
    "json_object": {"type": "json_object"},
    "none": None,
}

def format_candidates(settings: LLMSettings) -> list[str]:
    """The ``response_format`` names to try, in order (``["none"]`` when ``json_mode`` is off)."""
    if not settings.json_mode:
        return ["none"]
    return list(CONSTRAINED_MODES[settings.constrained])


# --------------------------------------------------------------------------- prompts
def prompt_template(prompts: Mapping[str, str | Callable[[], str]], version: str) -> Template:
    """The template ``version`` among ``prompts`` (``{version: text or loader}``, e.g. the
    catalog's ``llm_prompts`` partitions); placeholders ``$readings`` and ``$hints``."""
    if version not in prompts:
        raise KeyError(f"prompt template '{version}' not found; available versions: {sorted(prompts)}")
    text = prompts[version]
    return Template(text() if callable(text) else text)


def prompt_files(prompt_dir: str | Path = "conf/base/prompts") -> dict[str, Callable[[], str]]:
    """``{version: loader}`` of the templates ``<prompt_dir>/<version>.txt``, like the catalog's
    ``llm_prompts`` partitions (for scripts and tests; the pipeline reads them through the catalog)."""
    return {p.stem: partial(p.read_text, encoding="utf-8") for p in sorted(Path(prompt_dir).glob("*.txt"))}


def load_prompt(version: str, prompt_dir: str | Path = "conf/base/prompts") -> Template:
    """The prompt template ``<prompt_dir>/<version>.txt`` (scripts and tests)."""
    return prompt_template(prompt_files(prompt_dir), version)


def reading_json(fields: Mapping[str, str], confidence: Mapping[str, float] | None = None) -> str:
    """One engine's reading as compact JSON (values, and confidences when given)."""
    out: dict[str, Any] = dict(clean_fields(fields))
    if confidence is not None:
        out["confidence"] = {k: round(float(confidence[k]), 2) for k in KEYS if not math.isnan(float(confidence[k]))}
    return json.dumps(out, ensure_ascii=False)


def render_prompt(template: Template, readings: list[tuple[Mapping[str, str], Mapping[str, float] | None]],
                  hints: list[tuple[Mapping[str, str], Mapping[str, str]]] | None = None) -> str:
    """Fill a template with numbered readings and optional labelled look-alike forms."""
    lines = [f"Reading {i}: {reading_json(f, c)}" for i, (f, c) in enumerate(readings, start=1)]
    hint_text = ""
    if hints:
        rows = [f"Reading: {reading_json(r)}\nAnswer: {json.dumps(clean_fields(a), ensure_ascii=False)}"
                for r, a in hints]
        hint_text = "\nSimilar forms from the labelled training set:\n" + "\n".join(rows) + "\n"
    return template.substitute(readings="\n".join(lines), hints=hint_text)


def parse_answer(text: str | None) -> dict[str, str] | None:
    """The four fields if ``text`` is a JSON object with exactly the keys DATE, CITY, STATE,
    ZIP and string values (a ```json fence is tolerated); None otherwise."""
    if not text:
        return None
    text = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", text.strip())
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or set(data) != set(KEYS) or not all(isinstance(v, str) for v in data.values()):
        return None
    return {k: clean_value(data[k]) for k in KEYS}


def cache_key(model: str, base_url: str | None, prompt: str, temperature: float, repeat: int,
              output: str = "json_object") -> str:
    """Cache key of one call: hash of model, server, prompt text, temperature, repeat index and,
    unless it is plain JSON mode (the keys of earlier runs stay valid), the output constraint."""
    parts: list[Any] = [model, base_url or "", prompt, float(temperature), int(repeat)]
    if output != "json_object":
        parts.append(output)
    text = json.dumps(parts, ensure_ascii=False)
    return "llm-" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def format_rejected(err: Exception) -> bool:
    """True when a server error says the request's ``response_format`` is not supported: 400 or
    422 (OpenAI, vLLM, Ollama), or a 500 naming ``response_format`` (llama-cpp-python's server
    answers its request-validation errors with 500)."""
    status = getattr(err, "status_code", None)
    if status in (400, 422):
        return True
    text = f"{err} {json.dumps(getattr(err, 'body', None), default=str)}"
    return status == 500 and "response_format" in text


# --------------------------------------------------------------------------- client
class LLMMerger:
    """Calls the chat model for one prompt, with validation, one re-ask and the cache."""

    def __init__(self, settings: LLMSettings, cache: ResponseCache | None = None, client: Any = None,
                 api_key: str | None = None) -> None:
        self.settings = settings
        self.cache = cache
        self._api_key = api_key or None  # from conf/local/credentials.yml (openai.api_key)
        self._client = client
        self.calls = 0
        self._formats = format_candidates(settings)
        self._format_fixed = len(self._formats) == 1  # auto: fixed once the server accepted one
        self.rejected_formats: list[str] = []

    @property
    def response_format(self) -> str:
        """The ``response_format`` name in use (under ``auto``: the first one not rejected yet)."""
        return self._formats[0]

    @property
    def output_key(self) -> str:
        """The output constraint as configured, for the cache key."""
        if not self.settings.json_mode:
            return "none"
        return "json_object" if self.settings.constrained == "off" else f"constrained-{self.settings.constrained}"

    @property
    def client(self):
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(
                api_key=self.api_key(), base_url=self.settings.base_url,
                timeout=float(self.settings.timeout), max_retries=int(self.settings.max_retries),
            )
        return self._client

    def api_key(self) -> str:
        """credentials.yml ``openai.api_key``, else the environment variable ``api_key_env``."""
        key = self._api_key or os.environ.get(self.settings.api_key_env, "")
        if not key:
            if self.settings.base_url:  # local servers ignore the key but the client needs one
                return "not-needed"
            raise RuntimeError(
                f"ensemble.llm is enabled but no API key is set: put it in conf/local/credentials.yml "
                f"(openai: api_key: sk-...) or export {self.settings.api_key_env}=sk-..., or point "
                "ensemble.llm.base_url at a local OpenAI-compatible server, or remove 'llm' from ensemble.methods."
            )
        return key

    def check_ready(self) -> None:
        """Fail before any work when the key is missing or the server does not answer."""
        self.api_key()
        if not self.settings.check_server:
            return
        try:
            self.client.with_options(max_retries=0, timeout=min(10.0, float(self.settings.timeout))).models.list()
        except Exception as err:  # noqa: BLE001 - any failure here means: do not start
            where = self.settings.base_url or "https://api.openai.com/v1"
            raise RuntimeError(
                f"ensemble.llm cannot reach an OpenAI-compatible server at {where} "
                f"({type(err).__name__}: {err}). Start the server (vLLM, llama.cpp server, Ollama) or fix "
                "ensemble.llm.base_url / the API key, or remove 'llm' from ensemble.methods."
            ) from err

    def _create(self, messages: list[dict[str, str]]):
        """One chat completion. Under ``constrained: auto`` a rejection (:func:`format_rejected`)
        before the server has accepted any format moves on to the next format (logged once); once
        one is accepted it is kept, so a later 400 (e.g. a too long prompt) is an error of that
        form only."""
        import openai

        while True:
            kwargs: dict[str, Any] = {
                "model": self.settings.model, "messages": messages,
                "temperature": float(self.settings.temperature), "max_tokens": int(self.settings.max_tokens),
            }
            response_format = RESPONSE_FORMATS[self.response_format]
            if response_format is not None:
                kwargs["response_format"] = response_format
            self.calls += 1
            try:
                response = self.client.chat.completions.create(**kwargs)
            except openai.APIStatusError as err:
                if self._format_fixed or len(self._formats) == 1 or not format_rejected(err):
                    raise
                rejected = self._formats.pop(0)
                self.rejected_formats.append(rejected)
                logger.warning("ensemble llm: the server rejected response_format %s (%s); trying %s",
                               rejected, type(err).__name__, self.response_format)
                continue
            self._format_fixed = True
            return response

    def merge(self, prompt: str, repeat: int = 0) -> dict[str, Any]:
        """Answer one prompt: ``{"fields", "usage", "error", "seconds", "cached"}``.

        ``fields`` is None when the model failed (the caller falls back); failures are not
        cached, so a re-run tries again.
        """
        import openai

        key = cache_key(self.settings.model, self.settings.base_url, prompt, self.settings.temperature, repeat,
                        self.output_key)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return {**hit, "cached": True}
        start = time.perf_counter()
        messages = [{"role": "user", "content": prompt}]
        usage = {"input_tokens": 0, "output_tokens": 0}
        error = None
        for attempt in range(2):  # the answer, then one re-ask when it is not the right JSON
            try:
                response = self._create(messages)
            except openai.OpenAIError as err:  # the client already retried 429 / timeouts
                error = f"{type(err).__name__}: {err}"
                if isinstance(err, openai.APIStatusError) and format_rejected(err) and self.settings.json_mode:
                    error += " (if the server lacks response_format, set ensemble.llm.json_mode: false)"
                break
            if response.usage is not None:
                usage["input_tokens"] += int(response.usage.prompt_tokens or 0)
                usage["output_tokens"] += int(response.usage.completion_tokens or 0)
            text = response.choices[0].message.content if response.choices else None
            fields = parse_answer(text)
            if fields is not None:
                result = {"fields": fields, "usage": usage, "error": None, "raw": text,
                          "seconds": round(time.perf_counter() - start, 3)}
                if self.cache is not None:
                    self.cache.put(key, result)
                return {**result, "cached": False}
            error = f"invalid answer after {attempt + 1} attempt(s): {str(text)[:200]!r}"
            messages = messages + [{"role": "assistant", "content": text or ""},
                                   {"role": "user", "content": RETRY_MESSAGE}]
        return {"fields": None, "usage": usage, "error": error, "raw": None,
                "seconds": round(time.perf_counter() - start, 3), "cached": False}


# --------------------------------------------------------------------------- hints
class HintIndex:
    """k nearest labelled training forms by OCR-text similarity (rapidfuzz token_set_ratio)."""

    def __init__(self, readings: list[dict[str, str]], answers: list[dict[str, str]]) -> None:
        self.readings, self.answers = readings, answers
        self.texts = [self._text(r) for r in readings]

    @staticmethod
    def _text(fields: Mapping[str, str]) -> str:
        return " ".join(v for v in clean_fields(fields).values() if v != NONE)

    def nearest(self, fields: Mapping[str, str], k: int) -> list[tuple[dict[str, str], dict[str, str]]]:
        from rapidfuzz import fuzz, process

        if k <= 0 or not self.texts:
            return []
        found = process.extract(self._text(fields), self.texts, scorer=fuzz.token_set_ratio, limit=k)
        return [(self.readings[i], self.answers[i]) for _, _, i in found]

    @classmethod
    def from_tables(cls, labels: pd.DataFrame, readings: pd.DataFrame) -> "HintIndex":
        """Labelled forms (``file_name`` + KEYS, e.g. the catalog's ``llm_hint_forms``) and one
        engine's readings of them (a predictions table, e.g. ``llm_hint_readings``), paired by
        file name in the readings' order."""
        gold = {r["file_name"]: clean_fields({k: r[k] for k in KEYS}) for r in labels.to_dict("records")}
        pairs = [(clean_fields({k: r[k] for k in KEYS}), gold[r["file_name"]])
                 for r in readings.to_dict("records") if r["file_name"] in gold]
        if not pairs:
            raise ValueError("no hint readings (ensemble.llm.hints: llm_hint_readings) match the labelled "
                             "hint forms (llm_hint_forms)")
        return cls([r for r, _ in pairs], [a for _, a in pairs])


# --------------------------------------------------------------------------- variability
def variability_report(repeats: list[pd.DataFrame], labels: pd.DataFrame | None) -> dict[str, Any]:
    """Per-field agreement across R repeats and the spread of FLA/CBA between repeats.

    ``agreement[KEY]`` is the share of forms for which all repeats gave the same value.
    """
    report: dict[str, Any] = {"repeats": len(repeats)}
    if not repeats or repeats[0].empty:
        return report
    merged = [r.set_index("file_name") for r in repeats]
    names = merged[0].index
    report["forms"] = int(len(names))
    report["agreement"] = {
        k: round(100.0 * sum(len({m.at[n, k] for m in merged if n in m.index}) == 1 for n in names) / len(names), 2)
        for k in KEYS
    }
    report["all_fields_agree"] = round(100.0 * sum(
        all(len({m.at[n, k] for m in merged if n in m.index}) == 1 for k in KEYS) for n in names) / len(names), 2)
    if labels is not None and len(labels):
        scores = [aggregate(score_forms(labels[labels.file_name.isin(names)], r)) for r in repeats]
        fla = [s["FLA"] for s in scores]
        cba = [s["CBA"] for s in scores]
        report["FLA_per_repeat"] = [round(x, 2) for x in fla]
        report["CBA_per_repeat"] = [round(x, 2) for x in cba]
        report["FLA_spread"] = round(max(fla) - min(fla), 2)
        report["FLA_std"] = round(statistics.pstdev(fla), 3)
    return report


# --------------------------------------------------------------------------- one form, many repeats
def majority(values: list[str]) -> tuple[str, float]:
    """The most frequent value (ties: the earliest) and its share."""
    counts = Counter(values)
    best = max(counts.items(), key=lambda kv: (kv[1], -values.index(kv[0])))[0]
    return best, counts[best] / len(values)


def merge_form(merger: LLMMerger, prompt: str, repeats: int, fallback: tuple[str, Mapping[str, str]]
               ) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Ask ``repeats`` times; per field the majority answer (confidence: its share when
    ``repeats > 1``). A failed answer counts as the fallback engine's reading, with the reason.

    Returns the predictions record (without ``file_name``) and the answer of each repeat.
    """
    answers, errors, seconds = [], [], 0.0
    usage = {"input_tokens": 0, "output_tokens": 0}
    for r in range(repeats):
        result = merger.merge(prompt, repeat=r)
        if not result.get("cached"):
            seconds += float(result.get("seconds") or 0.0)
            for key in usage:
                usage[key] += int(result["usage"].get(key, 0))
        fields = result["fields"]
        if fields is None:
            fields = clean_fields(fallback[1])
            errors.append(f"repeat {r}: {result['error']}; fell back to {fallback[0]}")
        answers.append(fields)
    chosen = {k: majority([a[k] for a in answers]) for k in KEYS}
    record = {**{k: chosen[k][0] for k in KEYS},
              **{f"{k}_conf": chosen[k][1] if repeats > 1 else math.nan for k in KEYS},
              "seconds": seconds, **usage, "error": " | ".join(errors) or None}
    return record, answers


# --------------------------------------------------------------------------- the merge over all forms
def llm_report(merger: LLMMerger, settings: LLMSettings, table: pd.DataFrame, per_repeat: list[list[dict]],
               forms: Any, inputs: list[str], cache: ResponseCache | None) -> dict[str, Any]:
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


def hint_index(settings: LLMSettings, hint_forms: Callable[[], Any] | None,
               hint_readings: Callable[[], pd.DataFrame] | None) -> HintIndex | None:
    """The hint index from the catalog's lazy hint sources, read only when hints are on."""
    if int(settings.hints.get("k", 0) or 0) <= 0:
        return None
    if hint_forms is None or hint_readings is None:
        raise ValueError("ensemble.llm.hints.k > 0 needs the hint sources (catalog: llm_hint_forms, llm_hint_readings)")
    return HintIndex.from_tables(hint_forms().labels, hint_readings())


def merge_forms(merger: LLMMerger, settings: LLMSettings, tables: dict[str, pd.DataFrame], fallback: str,
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


def llm_predictions(forms: Any, cache: ResponseCache, params: Mapping[str, Any] | EnsembleSettings,
                    prompts: Mapping[str, Callable[[], str]] | Callable[[], Mapping] | None = None,
                    hint_forms: Callable[[], Any] | None = None,
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
    ensemble = EnsembleSettings.from_params(params)
    if "llm" not in method_list(ensemble.methods):
        logger.info("ensemble: 'llm' not in ensemble.methods; predictions_llm is empty")
        return empty_predictions(), {"status": "disabled (add 'llm' to ensemble.methods)"}
    settings = ensemble.llm
    tables = available_inputs(predictions, method_list(settings.inputs) or method_list(ensemble.inputs))
    if not tables:
        logger.warning("ensemble llm: no engine produced predictions; nothing to merge")
        return empty_predictions(), {"status": "no inputs"}
    fallback = settings.fallback or next(iter(tables))
    if fallback not in tables:
        raise ValueError(f"ensemble.llm.fallback '{fallback}' has no predictions; available: {sorted(tables)}")
    merger = LLMMerger(settings, cache, api_key=((credentials or {}).get("openai") or {}).get("api_key"))
    template = prompt_template((prompts() if callable(prompts) else prompts) or {}, settings.prompt)
    hints = hint_index(settings, hint_forms, hint_readings)
    merger.check_ready()  # before any work: key present, server answering
    table, per_repeat = merge_forms(merger, settings, tables, fallback, template, hints)
    report = llm_report(merger, settings, table, per_repeat, forms, list(tables), cache)
    logger.info("ensemble llm: %d forms, %d API calls, %d fallbacks", len(table), merger.calls, report["fallbacks"])
    return table, report
