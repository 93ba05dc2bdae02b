"""Two levels of trust per field: is the text right *as written*, and is the *value* right?

The vote's confidence (:func:`~handwriting_pipeline.ensemble.vote.vote_form`) is the chance that
the field is right exactly as written, letter case and dots included: ``written_conf``. A
database mostly wants the normalized value, per field type (ISO date, USPS code, gazetteer
city, ZIP - :mod:`handwriting_pipeline.fields.normalize`; any other type its own ``normalize``:
digits, a decimal amount, an E.164 phone ...), and a field can be sure in value while doubtful
in writing: ``Mi`` read by one engine and ``MI`` by another is Michigan either way.
``value_conf`` is the vote's posterior mass of every candidate reading that normalizes to the
same value as the chosen one (engines that differ in case, dots or date format but agree after
normalization all support it), times the gazetteer-contradiction factor the vote applies; it is
never below ``written_conf`` (a reading right as written has the right value - for a city only
when state and ZIP are right too, since its gazetteer spelling is looked up with them). Every
function takes the form spec (``form``; None: the HSF top section), as the vote does.

:func:`field_trust` also says *why* a field is doubtful (engines disagree, same value written
differently, the validator fails, the gazetteer contradicts) and gives the normalized value, so
a reviewer can be offered it.

:func:`trust_rows` and :func:`field_thresholds` put the two levels to use: on labelled forms
the engines never trained on, each field's confidence and whether it was right (as written / in
value) give a threshold per field with a guaranteed error rate among the fields above it
(:func:`handwriting_pipeline.trust.risk_threshold`, Learn then Test).

Floor 5 (ensemble).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from handwriting_pipeline.ensemble.settings import VoteSettings
from handwriting_pipeline.ensemble.spec import VoteSpec, vote_spec
from handwriting_pipeline.ensemble.vote import (
    OTHER,
    Form,
    contradiction,
    field_scores,
    fold,
    joint_scores,
    validator_factor,
    vote_form,
    vote_params,
)
from handwriting_pipeline.fields import KEYS, NONE, clean_fields
from handwriting_pipeline.fields.normalize import (
    NormalizeOptions,
    normalize_city,
    normalize_date,
    normalize_state,
    normalize_zip,
)
from handwriting_pipeline.fields.types import type_of
from handwriting_pipeline.predictions import readings_by_form
from handwriting_pipeline.trust import RiskThreshold, risk_threshold


@dataclass(frozen=True)
class FieldTrust:
    """One field's trust: ``written_conf`` (right as written), ``value_conf`` (the normalized
    value is right), ``normalized`` (the chosen reading's normalized value, ``""`` when it has
    none) and ``why`` (the doubt signals found, readable text)."""

    written_conf: float | None
    value_conf: float | None
    normalized: str = ""
    why: list[str] = field(default_factory=list)


def _zip_value(value: str) -> str:
    zip5, zip4 = normalize_zip(value)
    return f"{zip5}-{zip4}" if zip4 else zip5


#: the normalized value of the US types, ``(value, state, zip5, options) -> str``, with the
#: ``digitize.normalize`` options (the HSF pipeline's normalized columns)
NORMALIZERS: dict[str, Any] = {
    "date": lambda value, state, zip5, opts: normalize_date(value, opts.two_digit_year_from),
    "us_state": lambda value, state, zip5, opts: normalize_state(value, opts.state_name_max_edits),
    "us_zip": lambda value, state, zip5, opts: _zip_value(value),
    "us_city": lambda value, state, zip5, opts: normalize_city(value, state, zip5, opts.city_max_edits)[0],
}


def normalized_value(key: str, value: str, state: str = "", zip5: str = "",
                     options: Mapping[str, Any] | NormalizeOptions | None = None, form: Form = None) -> str:
    """The normalized value of one reading of the field ``key`` (``""`` when it has none), by
    the field's type: date -> ISO date, us_state -> USPS code, us_zip -> ZIP5 (``ZIP5-ZIP4``
    with a +4 part), us_city -> the gazetteer's spelling when ``zip5`` lies in ``state`` (a USPS
    code) and the city matches, else the text title-cased; any other type its own ``normalize``
    (:mod:`handwriting_pipeline.fields.types`)."""
    opts = NormalizeOptions.from_params(options)
    if value in (NONE, OTHER, "", None):
        return ""
    spec = vote_spec(form)
    rule = NORMALIZERS.get(spec.types[key])
    if rule is not None:
        return rule(value, state, zip5, opts)
    return type_of(spec.spec.field(key)).normalize(value, {"us_state": state, "us_zip": zip5}) or ""


def place(fields: Mapping[str, str], options: Mapping[str, Any] | NormalizeOptions | None = None,
          form: Form = None) -> tuple[str, str]:
    """``(USPS state, ZIP5)`` of a form's fields: what its city is normalized with (``""`` for a
    form without a us_state and a us_zip field)."""
    group = vote_spec(form).group
    if group is None:
        return "", ""
    state = normalized_value(group.state, fields.get(group.state, NONE), options=options, form=form)
    return state, normalize_zip(fields.get(group.zip, NONE))[0]


def field_posteriors(scores: Mapping[str, Mapping[str, float]], params: VoteSettings,
                     form: Form = None) -> dict[str, dict[str, float]]:
    """Per field, the vote's posterior of each case-folded value (``OTHER`` included): a field
    voted alone on its own, the gazetteer-linked ones (us_city, us_state, us_zip) the marginals
    of their joint (gazetteer factor included)."""
    spec = vote_spec(form)
    out = {}
    for group in spec.groups:
        if len(group) == 1:
            total = sum(scores[group[0]].values())
            out[group[0]] = {v: (s / total if total else 0.0) for v, s in scores[group[0]].items()}
        else:
            out.update(joint_marginals(scores, params, spec))
    return out


def joint_marginals(scores: Mapping[str, Mapping[str, float]], params: VoteSettings,
                    spec: VoteSpec) -> dict[str, dict[str, float]]:
    """The posterior of each value of the gazetteer-linked fields: the marginals of their joint."""
    joint = joint_scores(scores, params, spec)
    total = sum(joint.values())
    out = {}
    for i, key in enumerate(spec.group.keys):
        marginal: dict[str, float] = {}
        for combo, s in joint.items():
            marginal[combo[i]] = marginal.get(combo[i], 0.0) + s
        out[key] = {v: (s / total if total else 0.0) for v, s in marginal.items()}
    return out


def field_trust(readings: Mapping[str, tuple[Mapping[str, str], Mapping[str, float]]],
                params: Mapping[str, Any] | VoteSettings | None = None, chosen: Mapping[str, str] | None = None,
                written_conf: Mapping[str, float | None] | None = None,
                options: Mapping[str, Any] | NormalizeOptions | None = None,
                form: Form = None) -> dict[str, FieldTrust]:
    """Written and value confidence, normalized value and doubt signals of each field of one form.

    Args:
        readings: ``{engine: (fields, confidences)}`` of the form (as for ``vote_form``).
        params: ``ensemble.vote`` parameters (calibration included).
        chosen: the form's fields as decided (default: the vote's).
        written_conf: their confidence as written (default: the vote's).
        options: ``fields.normalize`` options (``digitize.normalize``).
        form: the form spec (None: the HSF top section).

    Returns:
        ``{field: FieldTrust}`` for the form's fields.
    """
    params = vote_params(params)
    spec = vote_spec(form)
    if chosen is None or written_conf is None:
        voted, conf, _ = vote_form(readings, params, spec)
        chosen = voted if chosen is None else chosen
        written_conf = conf if written_conf is None else written_conf
    chosen = clean_fields(chosen, spec.keys)
    fields_by_engine, _, scores, surfaces = field_scores(readings, params, spec)
    posterior = field_posteriors(scores, params, spec)
    state, zip5 = place(chosen, options, spec)
    kind, doubted = contradiction(chosen, spec)

    def group(key: str, value: str) -> tuple[str, str]:
        norm = normalized_value(key, value, state, zip5, options, spec)
        return ("value", norm) if norm else ("as read", fold(value))

    out = {}
    for key in spec.keys:
        written = written_conf.get(key)
        written = None if written is None or written != written else float(written)  # NaN -> None
        target = group(key, fold(chosen[key]))
        mass = sum(p for v, p in posterior[key].items() if v != OTHER and group(key, v) == target)
        contradicted = key in doubted
        if contradicted:
            mass *= float(params.contradiction[kind])
        value = None if written is None else round(max(written, min(1.0, mass)), 4)
        why = []
        read = {fold(f[key]) for f in fields_by_engine.values()}
        if len(read) > 1:
            why.append(f"engines disagree ({len(read)} readings)")
        same_value = {surface for f, surface, _, _ in surfaces[key] if group(key, f) == target}
        if len(same_value) > 1:
            why.append("written differently: " + " / ".join(sorted(same_value)))
        if validator_factor(key, chosen[key], params, spec) < 1:
            why.append(f"validator failed (not a valid {key})")
        if contradicted:
            why.append(f"gazetteer contradiction ({kind})")
        norm = target[1] if target[0] == "value" else ""
        out[key] = FieldTrust(written, value, norm, why)
    return out


def same_value(key: str, chosen: Mapping[str, str], gold: Mapping[str, str],
               options: Mapping[str, Any] | NormalizeOptions | None = None, form: Form = None) -> bool:
    """Whether the chosen fields' ``key`` has the gold fields' normalized value (each normalized
    with its own state / ZIP context; fields without a normalized value compare case-folded)."""
    spec = vote_spec(form)

    def value(fields: Mapping[str, str]) -> tuple[str, str]:
        fields = clean_fields(fields, spec.keys)
        norm = normalized_value(key, fields[key], *place(fields, options, spec), options, spec)
        return ("value", norm) if norm else ("as read", fold(fields[key]))

    return value(chosen) == value(gold)


def trust_rows(labels: pd.DataFrame, tables: Mapping[str, pd.DataFrame],
               params: Mapping[str, Any] | VoteSettings | None = None,
               options: Mapping[str, Any] | NormalizeOptions | None = None, form: Form = None) -> pd.DataFrame:
    """One row per labelled form and field: ``file_name``, ``field``, ``written_conf``,
    ``value_conf``, ``written_right`` (the vote's text equals the label exactly) and
    ``value_right`` (same normalized value). Use forms none of the engines (nor the calibration)
    were fitted on."""
    params = vote_params(params)
    spec = vote_spec(form)
    keys = spec.keys
    gold = {row["file_name"]: clean_fields({k: row[k] for k in keys}, keys) for row in labels.to_dict("records")}
    rows = []
    tables = {m: t for m, t in tables.items() if t is not None and len(t)}
    for name, readings in readings_by_form(tables, keys).items():
        if name not in gold or not readings:
            continue
        chosen, conf, _ = vote_form(readings, params, spec)
        trust = field_trust(readings, params, chosen, conf, options, spec)
        for key in keys:
            rows.append({"file_name": name, "field": key, "written_conf": trust[key].written_conf,
                         "value_conf": trust[key].value_conf, "written_right": chosen[key] == gold[name][key],
                         "value_right": same_value(key, chosen, gold[name], options, spec)})
    return pd.DataFrame(rows, columns=["file_name", "field", "written_conf", "value_conf", "written_right",
                                       "value_right"])


def field_thresholds(rows: pd.DataFrame, alpha: float, delta: float = 0.1,
                     on: str = "value", start_rate: float = 0.0) -> dict[str, RiskThreshold]:
    """Per field, :func:`~handwriting_pipeline.trust.risk_threshold` on :func:`trust_rows`:
    ``on="value"`` bounds the share of wrong *values* among fields with ``value_conf`` at or
    above the threshold, ``on="writing"`` the share wrong as written among ``written_conf``
    (``start_rate``: where the test sequence starts, :func:`~handwriting_pipeline.trust.start_fields`)."""
    if on not in ("value", "writing"):
        raise ValueError(f"on must be 'value' or 'writing', not {on!r}")
    level = "value" if on == "value" else "written"
    return {key: risk_threshold(part[f"{level}_conf"].astype(float).to_numpy(), part[f"{level}_right"].to_numpy(bool),
                                alpha, delta, start_rate=start_rate)
            for key in KEYS if len(part := rows[rows["field"] == key])}


def value_review_curve(rows: pd.DataFrame, shares: tuple[int, ...] = (0, 5, 10, 15, 20, 25, 30)) -> list[dict[str, Any]]:
    """The review curve of values: % of normalized fields right after a person fixes the k % of
    fields with the lowest ``value_conf`` (:func:`trust_rows`; missing confidence first)."""
    order = rows.assign(conf=rows["value_conf"].astype(float).fillna(-1.0)).sort_values("conf", kind="stable")
    right = order["value_right"].astype(bool).to_numpy()
    n = len(right)
    out = []
    for share in shares:
        k = int(round(n * share / 100))
        out.append({"reviewed_pct": share, "value_right_pct": round(100 * (k + right[k:].sum()) / n, 2) if n else None})
    return out


def check_guarantee(rows: pd.DataFrame, entry: Mapping[str, Any], on: str) -> dict[str, Any]:
    """A fitted guarantee (``entry``: alpha, delta, fields: {FIELD: {threshold}}) checked on
    labelled :func:`trust_rows` of forms it was not fitted on: per field and for all fields, the
    fields marked sure, the wrong ones among them, the realized error rate with its exact 95 %
    interval, whether it is at most alpha, and the share sent to review (no threshold: all)."""
    from handwriting_pipeline.trust import exact_interval

    level = "value" if on == "value" else "written"
    alpha = float(entry["alpha"])
    limit = {k: (f or {}).get("threshold") for k, f in (entry.get("fields") or {}).items()}
    conf = rows[f"{level}_conf"].astype(float).fillna(0.0)
    bar = rows["field"].map(lambda k: limit.get(k)).astype(float)  # None -> NaN: never sure
    sure = (conf >= bar).fillna(False).astype(bool)
    wrong = sure & ~rows[f"{level}_right"].astype(bool)

    def part(mask: pd.Series) -> dict[str, Any]:
        n, k, e = int(mask.sum()), int((sure & mask).sum()), int((wrong & mask).sum())
        return {"n": n, "sure": k, "errors": e, "realized": round(e / k, 5) if k else None,
                "ci95": exact_interval(e, k), "holds": (e / k <= alpha) if k else None,
                "review_pct": round(100 * (n - k) / n, 2) if n else None}

    out = {key: part(rows["field"] == key) for key in KEYS if (rows["field"] == key).any()}
    return {"on": on, "alpha": alpha, "delta": entry.get("delta"), "fitted_on": entry.get("fitted_on"),
            "thresholds": limit, "fields": out, "all": part(pd.Series(True, index=rows.index))}


__all__ = ["NORMALIZERS", "FieldTrust", "check_guarantee", "field_posteriors", "field_thresholds", "field_trust",
           "normalized_value", "place", "same_value", "trust_rows", "value_review_curve"]
