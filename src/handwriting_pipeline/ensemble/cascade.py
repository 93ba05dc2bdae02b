"""The cascade: a fast reader reads every form; the slower engines read only the forms it is
unsure of; the calibrated vote merges what there is.

A form goes on to the slower engines (it *escalates*) when the fast reader's reading, voted
alone (:func:`~handwriting_pipeline.ensemble.vote.vote`: its calibrated probability times the
field validators and the offline gazetteer), gives some field a confidence below
``threshold``, or - with ``escalate_invalid`` - when a field it read fails the validator
of its type (a state that is no state, a ZIP that is not 5 digits, an implausible date, a city
with digits, an order number of the wrong length ...) or the form's ZIP and state contradict the
gazetteer. Any form spec (``form``; None: the HSF top section) is read as the vote reads it.
The vote then merges every engine's reading of each
form: forms read only by the fast reader get its calibrated reading, escalated forms the full
vote. ``threshold = 0`` with ``escalate_invalid: false`` is the fast reader alone; ``threshold
> 1`` the full vote. The threshold is chosen on held-out training forms
(``benchmarks/digitize_benchmark.py cascade``) and set in ``ensemble.cascade``.

Digitize reads with it (:func:`cascade_tables` over live engines); the ensemble pipeline replays
it over the engines' full readings of the evaluation forms (:func:`cascade_predictions`: the
same escalation, the same vote) and reports its escalation share and cost (:func:`cascade_cost`).

>>> tables = cascade_tables(read, names, ["fieldreader"], ["rapidocr"], vote_params, settings)
>>> merged, _ = vote(tables, vote_params)
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from handwriting_pipeline.ensemble.settings import CascadeSettings, EnsembleSettings, VoteSettings
from handwriting_pipeline.ensemble.spec import vote_spec
from handwriting_pipeline.ensemble.vote import (
    OTHER,
    Form,
    available_inputs,
    default_vote_inputs,
    gazetteer_factor,
    validator_factor,
    vote,
    vote_params,
)
from handwriting_pipeline.fields import NONE, clean_fields
from handwriting_pipeline.predictions import empty_predictions
from handwriting_pipeline.registry import method_list

logger = logging.getLogger(__name__)

#: reads forms with one engine: (engine name, form names) -> its predictions table
ReadEngine = Callable[[str, list[str]], pd.DataFrame]


Params = Mapping[str, Any] | VoteSettings | None

__all__ = ["CascadeSettings", "cascade_cost", "cascade_predictions", "cascade_tables", "cascade_vote", "escalated",
           "invalid", "replay", "stages"]


def invalid(fields: Mapping[str, str], params: VoteSettings, form: Form = None) -> bool:
    """Whether a reading fails the validator of a field's type or the form's ZIP and state
    (us_zip, us_state) contradict the gazetteer."""
    spec = vote_spec(form)
    if any(validator_factor(key, fields[key], params, spec) < 1.0
           for key in spec.keys if fields[key] not in (NONE, OTHER)):
        return True
    group = spec.group
    return (group is not None and gazetteer_factor(NONE, fields[group.state], fields[group.zip], params)
            == params.gazetteer["state_mismatch"])


def escalated(fast: Mapping[str, pd.DataFrame], params: Params, settings: CascadeSettings,
              form: Form = None) -> list[str]:
    """The forms the slower engines must read, from the fast readers' tables (``{engine: table}``).
    The fast stage's confidence is taken before any recalibration (``vote.recalibration``): the
    cascade's threshold was chosen on it, and a recalibration must not move which forms escalate."""
    params = dataclasses.replace(vote_params(params), recalibration={})
    keys = vote_spec(form).keys
    merged, _ = vote(dict(fast), params, form)
    rows = {row["file_name"]: row for row in merged.to_dict("records")}
    names = list(dict.fromkeys(n for table in fast.values() for n in table["file_name"]))
    out = []
    for name in names:
        row = rows.get(name)
        if row is None or (isinstance(row.get("error"), str) and row["error"]):
            out.append(name)
            continue
        confidence = min(float(row.get(f"{k}_conf") or 0.0) for k in keys)
        fields = clean_fields({k: row.get(k) for k in keys}, keys)
        if confidence < settings.threshold or (settings.escalate_invalid and invalid(fields, params, form)):
            out.append(name)
    return out


def stages(engines: Sequence[str], is_fast: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    """``(fast readers, slower engines)``; without a fast reader every engine reads every form."""
    fast = [e for e in engines if is_fast(e)]
    slow = [e for e in engines if e not in fast]
    return (fast, slow) if fast else (list(engines), [])


def cascade_tables(read: ReadEngine, names: Sequence[str], fast: Sequence[str], slow: Sequence[str],
                   params: Params, settings: CascadeSettings | Mapping[str, Any] | None = None,
                   form: Form = None) -> dict[str, pd.DataFrame]:
    """Every engine's predictions table: the ``fast`` readers over ``names``, the ``slow`` ones
    over the forms the fast readers escalate only (tables of the forms each engine read)."""
    settings = CascadeSettings.from_params(settings)
    tables = {engine: read(engine, list(names)) for engine in fast}
    doubtful = escalated(tables, params, settings, form) if slow else []
    for engine in slow:
        if doubtful:
            tables[engine] = read(engine, doubtful)
    return tables


def replay(tables: Mapping[str, pd.DataFrame]) -> ReadEngine:
    """A :data:`ReadEngine` over readings already made (every engine read every form): how a
    threshold would have done, without reading again."""
    by_name = {engine: table.set_index("file_name", drop=False) for engine, table in tables.items()}

    def read(engine: str, names: list[str]) -> pd.DataFrame:
        table = by_name[engine]
        return table.loc[[n for n in names if n in table.index]].reset_index(drop=True)

    return read


def cascade_vote(tables: Mapping[str, pd.DataFrame], fast: Sequence[str], params: Params,
                 settings: CascadeSettings | Mapping[str, Any] | None = None,
                 form: Form = None) -> tuple[pd.DataFrame, float]:
    """The cascade's predictions from full readings (``tables``: every engine read every form;
    ``fast``: the first stage) and the share of forms it escalated to the slower engines."""
    slow = [e for e in tables if e not in fast]
    names = list(dict.fromkeys(n for e in fast for n in tables[e]["file_name"]))
    read = cascade_tables(replay(tables), names, fast, slow, params, settings, form)
    merged, _ = vote(read, params, form)
    share = max((len(read[e]) for e in slow if e in read), default=0) / len(names) if names else 0.0
    return merged, share


def cascade_predictions(params: Mapping[str, Any] | EnsembleSettings, calibration: Mapping[str, Any],
                        predictions: Mapping[str, pd.DataFrame], is_fast: Callable[[str], bool],
                        form: Form = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The cascade of the ``ensemble`` block (``methods``, ``inputs``, ``vote``, ``cascade``) over
    the engines' full readings (every engine read every form) of the form ``form`` (None: the
    HSF top section), as digitize runs it: the engines
    the vote takes (``ensemble.inputs``; [] = the calibrated ones), the fast ones (``is_fast``)
    first, the others on the forms they escalate, then the vote with ``calibration``.

    Returns ``predictions_cascade`` and its escalation report: the ``method`` it reports for, the
    ``fast`` and ``slow`` engines,
    the ``forms`` read, how many were ``escalated`` (every field of an escalated form goes to the
    slow engines) and their share, ``escalated_share``; {} when the cascade did not run.
    """
    ensemble = EnsembleSettings.from_params(params)
    settings = dataclasses.replace(ensemble.vote, calibration=dict(calibration))
    if "cascade" not in method_list(ensemble.methods):
        logger.info("ensemble: 'cascade' not in ensemble.methods; predictions_cascade is empty")
        return empty_predictions(vote_spec(form).keys), {}
    wanted = method_list(ensemble.inputs)
    tables = available_inputs(predictions, wanted)
    if not tables:
        logger.warning("ensemble cascade: no engine produced predictions (all inputs empty); nothing to merge")
        return empty_predictions(vote_spec(form).keys), {}
    if not wanted:
        tables = default_vote_inputs(tables, settings.calibration, where="ensemble cascade")
    fast, slow = stages(list(tables), is_fast)
    table, share = cascade_vote(tables, fast, settings, ensemble.cascade, form)
    forms = len(table)
    report = {"method": "cascade", "fast": fast, "slow": slow, "forms": forms, "escalated": round(share * forms),
              "escalated_share": share, "threshold": ensemble.cascade.threshold,
              "escalate_invalid": ensemble.cascade.escalate_invalid}
    logger.info("ensemble cascade: %s read %d forms, %s read the %d escalated (%.1f %%)", "+".join(fast), forms,
                "+".join(slow) or "no slower engine", report["escalated"], 100 * share)
    return table, report


def cascade_cost(engine_costs: Mapping[str, float], fast: Sequence[str], escalated_share: float) -> float:
    """What the cascade costs, from what each engine costs reading every form (``engine_costs``):
    the ``fast`` engines' cost for every form plus the other engines' cost for the escalated
    share of the forms only."""
    return float(sum(cost if engine in fast else escalated_share * cost for engine, cost in engine_costs.items()))
