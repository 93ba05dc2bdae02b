"""The ensembles' typed settings: the ``ensemble`` block of ``conf/base/parameters_ensemble.yml``
(:class:`EnsembleSettings`) with its ``vote`` (:class:`VoteSettings`) and ``llm``
(:class:`LLMSettings`) blocks. Defaults are the YAML's (``tests/test_config.py``), but for
``vote.calibration``: empty unless given.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from handwriting_pipeline.config import Settings

#: ``constrained`` setting -> formats tried in order until the server accepts one.
CONSTRAINED_MODES: dict[str, list[str]] = {
    "auto": ["json_schema", "json_object_schema", "json_object"],
    "json_schema": ["json_schema"],
    "json_object_schema": ["json_object_schema"],
    "off": ["json_object"],
}


ENSEMBLE_YML = "conf/base/parameters_ensemble.yml"


@dataclass(frozen=True)
class VoteSettings(Settings):
    """``ensemble.vote``: the vote's weights and factors (defaults = the YAML's, but for
    ``calibration``: empty unless given). Mapping values given in part are merged one level deep
    over the defaults (``validator_factor: {DATE: 0.5}`` keeps the other keys' factors)."""

    block: ClassVar[str] = "ensemble.vote"
    source: ClassVar[str] = ENSEMBLE_YML
    review_threshold: float = 0.6
    repair: bool = True                 # undo layout slips before voting
    city_alignment: bool = True         # character-alignment consensus as an extra CITY candidate
    alignment_weight: float = 0.5
    weights: dict[str, float] = field(default_factory=dict)  # {engine: weight} for uncalibrated engines
    default_confidence: float = 0.5     # engines that give no confidence
    default_p_none: float = 0.1         # P(right) of an uncalibrated engine that says "None"
    default_case_trust: float = 0.5     # P(case kept | right apart from case) of an uncalibrated engine
    validator_factor: dict[str, float] = field(
        default_factory=lambda: {"DATE": 0.3, "CITY": 0.1, "STATE": 0.1, "ZIP": 0.1})
    gazetteer: dict[str, float] = field(
        default_factory=lambda: {"state_match": 4.0, "state_mismatch": 0.7, "city_match": 4.0})
    p_clip: list[float] = field(default_factory=lambda: [0.02, 0.98])
    #: {engine: {KEY: {a, b, p_none, case}}} from training.calibration.fit_calibration
    calibration: dict[str, Any] = field(default_factory=dict)
    #: confidence factor of the fields a contradicted CITY/STATE/ZIP puts in doubt
    #: (fields.gazetteer_contradiction: unknown_zip -> ZIP, state -> STATE+ZIP, city -> CITY+ZIP)
    contradiction: dict[str, float] = field(
        default_factory=lambda: {"unknown_zip": 0.55, "state": 0.55, "city": 0.55})
    #: {"<engine>+<engine>": {KEY: {intercept, coef: {feature: w}}}} from ensemble.recalibrate
    recalibration: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Any, block: str | None = None) -> VoteSettings:
        if isinstance(params, cls):
            return params
        params = dict(params or {})
        defaults = cls()
        for f in dataclasses.fields(cls):
            default = getattr(defaults, f.name)
            if isinstance(default, dict) and isinstance(params.get(f.name), Mapping):
                params[f.name] = {**default, **params[f.name]}
        return super().from_params(params, block)


@dataclass(frozen=True)
class LLMSettings(Settings):
    """``ensemble.llm`` parameters (defaults = the YAML's)."""

    block: ClassVar[str] = "ensemble.llm"
    source: ClassVar[str] = ENSEMBLE_YML
    model: str = "gpt-3.5-turbo"
    base_url: str | None = None            # None = https://api.openai.com/v1
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = 0.0
    json_mode: bool = True
    constrained: str = "auto"               # auto | json_schema | json_object_schema | off
    timeout: float = 60.0
    max_retries: int = 3
    max_tokens: int = 200
    prompt: str = "v1"
    prompt_dir: str = "conf/base/prompts"   # where the catalog's llm_prompts reads (--params override only)
    include_confidence: bool = False
    fallback: str | None = None             # engine used when the LLM fails
    repeats: int = 1
    inputs: list[str] = field(default_factory=list)  # [] = ensemble.inputs
    # k (sources: catalog llm_hint_forms / llm_hint_readings)
    hints: dict[str, Any] = field(default_factory=lambda: {"k": 0})
    check_server: bool = True

    @classmethod
    def from_params(cls, params: Any, block: str | None = None) -> LLMSettings:
        settings = super().from_params(params, block)
        if settings.constrained not in CONSTRAINED_MODES:
            raise ValueError(f"ensemble.llm.constrained must be one of {list(CONSTRAINED_MODES)}, "
                             f"not {settings.constrained!r}")
        return settings


@dataclass(frozen=True)
class CascadeSettings(Settings):
    """``ensemble.cascade`` (:mod:`handwriting_pipeline.ensemble.cascade`): a form goes on to the
    slower engines when the fast reader, voted alone, gives some field a confidence below
    ``threshold`` or (``escalate_invalid``) a field fails its validator / the gazetteer."""

    block: ClassVar[str] = "ensemble.cascade"
    source: ClassVar[str] = ENSEMBLE_YML
    threshold: float = 0.3
    escalate_invalid: bool = True


@dataclass(frozen=True)
class EnsembleSettings(Settings):
    """``ensemble``: which ensembles run, over which engines, with their settings."""

    block: ClassVar[str] = "ensemble"
    source: ClassVar[str] = ENSEMBLE_YML
    methods: list[str] | str = field(default_factory=lambda: ["vote", "cascade"])  # vote, cascade, llm ("vote+llm")
    inputs: list[str] | str = field(default_factory=list)  # [] = every engine that produced output
    vote: VoteSettings = field(default_factory=VoteSettings)
    llm: LLMSettings = field(default_factory=LLMSettings)
    cascade: CascadeSettings = field(default_factory=CascadeSettings)
