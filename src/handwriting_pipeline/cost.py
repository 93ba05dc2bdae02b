"""The cost model: estimated USD per predicted form and per method, from list prices.

* page-priced APIs (``method_page_price``: method -> key of ``page_price_usd``): ``pages`` x price;
  a form without recorded pages and without error counts ``default_pages_per_form`` pages
  (recorded engines cost what the original call cost);
* LLMs (``method_llm_model``: method -> key of ``token_price_usd_per_1m``): input/output tokens x
  price per 1M tokens;
* local compute (``method_compute``: method -> key of ``compute_usd_per_hour``): ``seconds`` x
  $/hour / 3600.

An ensemble's row also carries the cost of the methods it merges (``include_cost_of``): a list of
methods, or ``inputs`` = the ensemble's own inputs (``ensemble.inputs``; for the LLM
``ensemble.llm.inputs`` when given), every engine scored in the run when those are empty.
Prices and the method maps are the ``evaluation.cost`` block (:class:`CostSettings`).

Floor 1. May import: floor 0 (``config``, ``registry``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from handwriting_pipeline.config import Settings

logger = logging.getLogger(__name__)

EVALUATION_YML = "conf/base/parameters_evaluation.yml"


@dataclass(frozen=True)
class CostSettings(Settings):
    """``evaluation.cost``: list prices and which method pays which (defaults = the YAML's)."""

    block: ClassVar[str] = "evaluation.cost"
    source: ClassVar[str] = EVALUATION_YML
    page_price_usd: dict[str, float] = field(default_factory=lambda: {
        "textract_analyze_document_forms": 0.05, "textract_analyze_document_tables_forms": 0.065,
        "textract_detect_document_text": 0.0015, "azure_prebuilt_document": 0.01, "azure_prebuilt_layout": 0.01,
        "azure_read": 0.0015})
    method_page_price: dict[str, str] = field(default_factory=lambda: {
        "textract": "textract_analyze_document_forms", "recorded_textract": "textract_analyze_document_forms",
        "azure_form_recognizer": "azure_prebuilt_document",
        "recorded_azure_form_recognizer": "azure_prebuilt_document"})
    default_pages_per_form: int = 1
    token_price_usd_per_1m: dict[str, dict[str, float]] = field(default_factory=lambda: {
        "gpt-3.5-turbo": {"input": 0.50, "output": 1.50}, "gpt-4o-mini": {"input": 0.15, "output": 0.60},
        "gpt-4o": {"input": 2.50, "output": 10.00}, "gpt-4.1-nano": {"input": 0.10, "output": 0.40},
        "gpt-4.1-mini": {"input": 0.40, "output": 1.60}, "gpt-4.1": {"input": 2.00, "output": 8.00},
        "local": {"input": 0.0, "output": 0.0}})
    method_llm_model: dict[str, str] = field(default_factory=lambda: {"llm": "gpt-3.5-turbo"})
    compute_usd_per_hour: dict[str, float] = field(default_factory=lambda: {"cpu": 0.08925, "gpu": 1.006})
    method_compute: dict[str, str] = field(default_factory=lambda: {
        "rapidocr": "cpu", "tesseract": "cpu", "donut": "cpu", "vote": "cpu"})
    #: method -> the methods whose cost its row carries: a list, or "inputs" (see the module)
    include_cost_of: dict[str, list[str] | str] = field(default_factory=lambda: {"vote": "inputs", "llm": "inputs"})


def form_costs(predictions: pd.DataFrame, method: str, cost: Mapping[str, Any] | CostSettings) -> pd.Series:
    """Estimated USD per predicted form (index = file_name) from the table's usage columns.

    A method with no price entry costs 0; a price that is not configured gives NaN (logged).
    """
    settings = CostSettings.from_params(cost)
    usd = pd.Series(0.0, index=predictions["file_name"].to_numpy(), dtype=float)
    for part in (_page_cost, _token_cost, _compute_cost):
        cost_of = part(predictions, method, settings)
        if cost_of is None:  # a price that is not configured (logged)
            return usd * np.nan
        usd += cost_of
    return usd


def _page_cost(predictions: pd.DataFrame, method: str, cost: CostSettings) -> np.ndarray | float | None:
    """Page-priced APIs: pages x price (0 for other methods; None: no price configured)."""
    page_key = cost.method_page_price.get(method)
    if page_key is None:
        return 0.0
    price = cost.page_price_usd.get(page_key)
    if price is None:
        logger.warning("evaluation.cost: no page price '%s' for %s; cost left blank", page_key, method)
        return None
    pages = predictions["pages"].fillna(0).astype(float).to_numpy()
    failed = predictions["error"].notna().to_numpy()
    default = float(cost.default_pages_per_form or 0)
    return np.where((pages <= 0) & ~failed, default, pages) * float(price)


def _token_cost(predictions: pd.DataFrame, method: str, cost: CostSettings) -> np.ndarray | float | None:
    """LLMs: input / output tokens x price per 1M tokens (0 for other methods; None: no prices)."""
    model = cost.method_llm_model.get(method)
    if model is None:
        return 0.0
    prices = cost.token_price_usd_per_1m.get(model)
    if prices is None:
        logger.warning("evaluation.cost: no token prices for model '%s' (%s); add it to "
                       "evaluation.cost.token_price_usd_per_1m. Cost left blank", model, method)
        return None
    return (predictions["input_tokens"].to_numpy() * float(prices["input"])
            + predictions["output_tokens"].to_numpy() * float(prices["output"])) / 1e6


def _compute_cost(predictions: pd.DataFrame, method: str, cost: CostSettings) -> np.ndarray | float | None:
    """Local compute: seconds x $/hour / 3600 (0 for other methods; None: no rate configured)."""
    device = cost.method_compute.get(method)
    if device is None:
        return 0.0
    rate = cost.compute_usd_per_hour.get(device)
    if rate is None:
        logger.warning("evaluation.cost: no $/hour for '%s' (%s); cost left blank", device, method)
        return None
    return predictions["seconds"].fillna(0).to_numpy() * float(rate) / 3600.0


def merged_methods(method: str, cost: CostSettings, scored: Sequence[str], engines: Iterable[str],
                   inputs: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """The methods whose cost ``method``'s row carries besides its own (``include_cost_of``).

    ``inputs`` (method -> the engines the ensemble merges, as configured) resolves ``"inputs"``;
    an ensemble without configured inputs merges every engine that produced output, i.e. every
    engine among ``scored`` (the methods of this run)."""
    merged = cost.include_cost_of.get(method) or []
    if merged == "inputs":
        wanted = list((inputs or {}).get(method) or [])
        engines = set(engines)
        merged = wanted or [m for m in scored if m in engines and m != method]
    return [m for m in merged if m != method]


def method_costs(own: Mapping[str, float], cost: Mapping[str, Any] | CostSettings, engines: Iterable[str],
                 inputs: Mapping[str, Sequence[str]] | None = None) -> dict[str, float]:
    """Each method's cost: its own (``own``: method -> summed per-form cost, in report order)
    plus the cost of the methods it merges (:func:`merged_methods`). An ensemble costs what its
    inputs cost, not what every engine of the run cost."""
    settings = CostSettings.from_params(cost)
    engines = list(engines)
    scored = list(own)
    totals = {}
    for method, value in own.items():
        total = value
        for other in merged_methods(method, settings, scored, engines, inputs):
            if other in own:
                total += own[other]
            else:
                logger.warning("%s: cost of '%s' not included (no predictions for it)", method, other)
        totals[method] = total
    return totals
