"""The offline ensemble: a deterministic, constraint-aware vote over the engines' answers, on any
form spec (:func:`~handwriting_pipeline.ensemble.spec.vote_spec`: the HSF top section by default).

Per form and field every engine proposes a value with a confidence. The vote reads the form's
fields, their order and their types from the spec, and

1. repairs layout slips that are not the writer's in the gazetteer-linked fields (the spec's
   ``us_city`` / ``us_state`` / ``us_zip`` fields: commas around city and state, a city that
   swallowed state/ZIP, digits in the state) without touching letters or case;
2. turns each engine's confidence into a probability of being right apart from letter case,
   with a per-engine, per-field logistic calibration learned on labelled forms
   (:func:`handwriting_pipeline.training.calibration.fit_calibration`; engines without one use
   ``weight * confidence``);
3. scores every candidate value, case-folded so that "DETROIT" and "DETROiT" vote together,
   with a naive-Bayes vote (engines that agree multiply their probabilities, engines that
   disagree count against it, a "none of these" hypothesis keeps the confidence honest),
   times a soft validator factor per field *type* (:data:`~handwriting_pipeline.ensemble.spec.VOTE_RULES`:
   a plausible date, a city without digits, a USPS state, ZIP or ZIP+4; any other type its own
   ``validate``: digits, amount, phone ...);
4. votes every field alone, but for the gazetteer-linked group: when the spec has a ``us_state``
   and a ``us_zip`` field, they (and its ``us_city`` field) are chosen jointly, multiplying in a
   bonus when the offline gazetteer (``zipcodes``) says ZIP and state (and city) belong
   together; the writer's text is never replaced by the gazetteer's spelling or case;
5. adds a character-level alignment consensus (:func:`~handwriting_pipeline.ensemble.align.align_vote`)
   as an extra candidate of the ``us_city`` field when at least three engines all disagree;
6. writes the chosen value in the letter case of the engines that keep the writer's case best
   (per-engine ``case`` trust from the calibration; :func:`choose_surface`).

Each chosen value gets a confidence (its posterior share), so doubtful fields can be sent to a
reviewer (:func:`review_queue`). When the gazetteer contradicts the chosen city / state / ZIP
(:func:`~handwriting_pipeline.fields.gazetteer_contradiction`: an unknown ZIP, a ZIP of another
state, a city the ZIP does not list) the fields it puts in doubt have their confidence multiplied
by ``contradiction[kind]`` (fitted on held-out train forms: ``benchmarks/review_benchmark.py``),
so agreeing engines cannot make a contradicted reading look sure. A validator factor, a
calibration and a recalibration are looked up by the field's name (``validator_factor`` also by
its type, then :data:`DEFAULT_VALIDATOR_FACTOR`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from handwriting_pipeline.ensemble.align import align_vote
from handwriting_pipeline.ensemble.settings import EnsembleSettings, VoteSettings
from handwriting_pipeline.ensemble.spec import VoteSpec, strict_state_code, vote_spec
from handwriting_pipeline.fields import (
    NONE,
    clean_fields,
    gazetteer_contradiction,
    is_valid_zip,
    repair_fields,
    zip_places,
)
from handwriting_pipeline.fields.formspec import FormSpec
from handwriting_pipeline.fields.text import WRITING_FEATURES, writing_features
from handwriting_pipeline.predictions import empty_predictions, predictions_from_records, readings_by_form
from handwriting_pipeline.registry import method_list, select_methods

logger = logging.getLogger(__name__)

OTHER = "\x00other"  # the "none of the candidates is right" hypothesis
#: the validator factor of a field ``ensemble.vote.validator_factor`` names neither by its name nor its type
DEFAULT_VALIDATOR_FACTOR = 0.1
#: a form spec (or a shipped form's name, a spec file), the vote's view of one, or None: the HSF top section
Form = FormSpec | VoteSpec | str | Path | None


def vote_params(params: Mapping[str, Any] | VoteSettings | None) -> VoteSettings:
    """``ensemble.vote`` parameters as :class:`VoteSettings` (a mapping is merged over the defaults)."""
    return VoteSettings.from_params(params)


# --------------------------------------------------------------------------- inputs
def available_inputs(predictions: Mapping[str, pd.DataFrame], wanted: Any) -> dict[str, pd.DataFrame]:
    """The non-empty predictions tables among ``wanted`` (None or [] = every engine)."""
    names = select_methods(wanted or None, list(predictions), "ensemble.inputs", noun="engines")
    return {n: predictions[n] for n in names if predictions[n] is not None and len(predictions[n])}


# --------------------------------------------------------------------------- calibration
def calibration_for(cal: Mapping[str, Any], engine: str) -> Mapping[str, Any] | None:
    """Calibration of an engine, or of its live/recorded twin (textract <-> recorded_textract)."""
    for name in (engine, engine.removeprefix("recorded_"), f"recorded_{engine}"):
        if name in cal:
            return cal[name]
    return None


def engine_probability(engine: str, key: str, value: str, conf: float, params: VoteSettings) -> float:
    """P(this engine's value for this field is right apart from letter case), clipped to ``p_clip``."""
    lo, hi = params.p_clip
    cal = calibration_for(params.calibration, engine)
    if cal is not None and key in cal:
        c = cal[key]
        if value == NONE:
            p = c["p_none"]
        else:
            x = conf if conf == conf else 0.5  # NaN -> middle
            p = 1.0 / (1.0 + math.exp(-(c["a"] + c["b"] * x)))
    else:
        weight = float(params.weights.get(engine, 1.0))
        if value == NONE:
            p = params.default_p_none
        else:
            p = weight * (conf if conf == conf else params.default_confidence)
    return min(hi, max(lo, float(p)))


def case_trust(engine: str, key: str, params: VoteSettings) -> float:
    """P(the engine kept the writer's letter case | it read the value right apart from case)."""
    lo, hi = params.p_clip
    cal = calibration_for(params.calibration, engine)
    value = cal[key].get("case", 0.5) if cal is not None and key in cal else params.default_case_trust
    return min(hi, max(lo, float(value)))


# --------------------------------------------------------------------------- scoring
def validator_factor(key: str, value: str, params: VoteSettings, form: Form = None) -> float:
    """1 for a value that passes the validator of its field's type (or "None"), the penalty
    otherwise: ``validator_factor`` of the field's name, else of its type, else
    :data:`DEFAULT_VALIDATOR_FACTOR`."""
    if value in (NONE, OTHER):
        return 1.0
    spec = vote_spec(form)
    if spec.validate(key, value):
        return 1.0
    factors = params.validator_factor
    return float(factors.get(key, factors.get(spec.types[key], DEFAULT_VALIDATOR_FACTOR)))


def gazetteer_factor(city: str, state: str, zip_code: str, params: VoteSettings) -> float:
    """Bonus when ZIP and STATE (and CITY) agree in the offline gazetteer, penalty when
    ZIP and STATE contradict it, 1 when it cannot tell. Reads only; never rewrites."""
    if OTHER in (city, state, zip_code) or not is_valid_zip(zip_code):
        return 1.0
    places = zip_places(zip_code)
    if not places:
        return 1.0
    g = params.gazetteer
    factor = 1.0
    code = strict_state_code(state) if state != NONE else None
    if code is not None:
        factor *= g["state_match"] if any(s == code for _, s in places) else g["state_mismatch"]
    if city != NONE:
        key = re.sub(r"[^A-Z]", "", city.upper())
        if any(re.sub(r"[^A-Z]", "", c) == key and (code is None or s == code) for c, s in places):
            factor *= g["city_match"]
    return factor


def field_likelihoods(readings: list[tuple[str, float]], key: str, params: VoteSettings,
                      form: Form = None) -> dict[str, float]:
    """Unnormalised score of each distinct value (+ :data:`OTHER`) from ``[(value, p), ...]``.

    score(v) = validator(v) * prod_{engines saying v} p * prod_{others} (1 - p);
    score(OTHER) = prod (1 - p).
    """
    values = list(dict.fromkeys(v for v, _ in readings))
    scores = {}
    for v in values:
        s = validator_factor(key, v, params, form)
        for value, p in readings:
            s *= p if value == v else (1.0 - p)
        scores[v] = s
    scores[OTHER] = float(np.prod([1.0 - p for _, p in readings])) if readings else 1.0
    return scores


def voted_fields(fields: Mapping[str, Any], params: VoteSettings, form: Form = None) -> dict[str, str]:
    """One engine's values of the form's fields as the vote sees them: layout slips in the
    gazetteer-linked fields repaired when ``repair`` (:func:`~handwriting_pipeline.fields.repair_fields`)."""
    spec = vote_spec(form)
    out = clean_fields(fields, spec.keys)
    if params.repair and spec.group is not None:
        out.update(spec.group.from_hsf(repair_fields(spec.group.to_hsf(out))))
    return out


def engine_fields(readings: Mapping[str, tuple[Mapping[str, str], Any]], params: VoteSettings,
                  form: Form = None) -> dict[str, dict[str, str]]:
    """Each engine's values as the vote sees them (:func:`voted_fields`)."""
    return {e: voted_fields(f, params, form) for e, (f, _) in readings.items()}


def field_scores(readings: Mapping[str, tuple[Mapping[str, str], Mapping[str, float]]], params: VoteSettings,
                 form: Form = None
                 ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]], dict[str, dict[str, float]],
                            dict[str, list[tuple[str, str, float, float]]]]:
    """What the vote of one form is computed from: each engine's fields, the candidates per
    field ``{engine: value}`` (with ``alignment`` when the us_city consensus was added), the
    unnormalised score of each case-folded value per field (:func:`field_likelihoods`, ``OTHER``
    included) and the readings ``(folded, surface, p, case trust)`` per field."""
    spec = vote_spec(form)
    fields_by_engine = engine_fields(readings, params, spec)
    candidates = {k: {e: fields_by_engine[e][k] for e in readings} for k in spec.keys}
    scores: dict[str, dict[str, float]] = {}      # per field: case-folded value -> score
    surfaces: dict[str, list[tuple[str, str, float, float]]] = {}  # (folded, surface, p, case trust)
    for key in spec.keys:
        obs = []
        for e, (_, conf) in readings.items():
            value = fields_by_engine[e][key]
            p = engine_probability(e, key, value, float(conf.get(key, math.nan)), params)
            obs.append((value, p, case_trust(e, key, params)))
        surfaces[key] = [(fold(v), v, p, t) for v, p, t in obs]
        scores[key] = field_likelihoods([(fold(v), p) for v, p, _ in obs], key, params, spec)
        if key == spec.aligned and params.city_alignment:
            add_alignment(key, [(v, p) for v, p, _ in obs if v != NONE], scores[key], surfaces[key],
                          candidates[key], params, spec)
    return fields_by_engine, candidates, scores, surfaces


def add_alignment(key: str, named: list[tuple[str, float]], scores: dict[str, float],
                  surfaces: list[tuple[str, str, float, float]], candidates: dict[str, str],
                  params: VoteSettings, form: Form = None) -> None:
    """With at least three engines that all read the field differently (``named``: their
    ``(value, p)``), their character-alignment consensus as an extra candidate (``alignment``)
    scored ``alignment_weight`` x the best score x its validator factor; in place."""
    if len(named) < 3 or len({fold(v) for v, _ in named}) != len(named):
        return
    consensus = align_vote(named)
    if consensus and fold(consensus) not in scores:
        best = max(sc for v, sc in scores.items() if v != OTHER)
        scores[fold(consensus)] = params.alignment_weight * best * validator_factor(key, consensus, params, form)
        surfaces.append((fold(consensus), consensus, 0.5, 1.0))
        candidates["alignment"] = consensus


def group_factor(values: Mapping[str, str], params: VoteSettings, form: Form = None) -> float:
    """:func:`gazetteer_factor` of the gazetteer-linked fields' ``values`` (a form without a
    us_city field: no city)."""
    group = vote_spec(form).group
    city = values[group.city] if group.city is not None else NONE
    return gazetteer_factor(city, values[group.state], values[group.zip], params)


def joint_scores(scores: Mapping[str, Mapping[str, float]], params: VoteSettings,
                 form: Form = None) -> dict[tuple[str, ...], float]:
    """Unnormalised score of every combination of the folded values of the gazetteer-linked
    fields (us_city, us_state, us_zip: ``group.keys``): the fields' scores times
    :func:`gazetteer_factor`."""
    keys = vote_spec(form).group.keys
    out = {}
    for combo in itertools.product(*(scores[k] for k in keys)):
        out[combo] = (math.prod(scores[k][v] for k, v in zip(keys, combo, strict=True))
                      * group_factor(dict(zip(keys, combo, strict=True)), params, form))
    return out


def choose_alone(scores: Mapping[str, float]) -> tuple[str, float]:
    """A field voted alone: its best value (not ``OTHER``; "None" without one) and posterior share."""
    total = sum(scores.values())
    best = max((v for v in scores if v != OTHER), key=lambda v: scores[v], default=NONE)
    return best, (scores.get(best, 0.0) / total if total else 0.0)


def choose_jointly(scores: Mapping[str, Mapping[str, float]], params: VoteSettings,
                   form: Form = None) -> dict[str, tuple[str, float]]:
    """The gazetteer-linked fields chosen together: the best combination without ``OTHER``, and
    per field the posterior mass of the combinations that share its value."""
    keys = vote_spec(form).group.keys
    joint = joint_scores(scores, params, form)
    total = sum(joint.values())
    real = [combo for combo in joint if OTHER not in combo]
    best_combo = max(real, key=lambda combo: joint[combo]) if real else (NONE,) * len(keys)
    out = {}
    for i, key in enumerate(keys):
        mass = sum(v for combo, v in joint.items() if combo[i] == best_combo[i])
        out[key] = (best_combo[i], mass / total if total else 0.0)
    return out


def contradiction(chosen: Mapping[str, str], form: Form = None) -> tuple[str | None, tuple[str, ...]]:
    """What the gazetteer says against the chosen gazetteer-linked fields
    (:func:`~handwriting_pipeline.fields.gazetteer_contradiction`) and the fields it puts in
    doubt; ``(None, ())`` on a form without a us_state and a us_zip field."""
    group = vote_spec(form).group
    if group is None:
        return None, ()
    kind = gazetteer_contradiction(group.to_hsf(chosen))
    return kind, group.doubted(kind)


def vote_form(readings: Mapping[str, tuple[Mapping[str, str], Mapping[str, float]]],
              params: VoteSettings, form: Form = None
              ) -> tuple[dict[str, str], dict[str, float], dict[str, dict[str, str]]]:
    """Vote one form.

    Args:
        readings: ``{engine: (fields, confidences)}``.
        params: :func:`vote_params` output.
        form: the form spec (None: the HSF top section).

    Returns:
        ``(fields, confidence per field, candidates per field {engine: value})``.
    """
    spec = vote_spec(form)
    fields_by_engine, candidates, scores, surfaces = field_scores(readings, params, spec)
    picked: dict[str, tuple[str, float]] = {}
    for group in spec.groups:  # each field alone, the gazetteer-linked ones jointly
        if len(group) > 1:
            picked.update(choose_jointly(scores, params, spec))
        else:
            picked[group[0]] = choose_alone(scores[group[0]])
    chosen = {k: picked[k][0] for k in spec.keys}
    confidence = {k: picked[k][1] for k in spec.keys}
    # letter case: among the readings of the chosen (case-folded) value, the surface form the
    # engines that keep the writer's case best agree on
    for key in spec.keys:
        if chosen[key] in (NONE, OTHER):
            continue
        chosen[key], share = choose_surface(chosen[key], surfaces[key])
        confidence[key] *= share
    recal = (params.recalibration or {}).get(engine_set(readings))
    weighed = set()  # fields whose recalibration weighs the gazetteer's contradiction itself
    if recal:  # richer features -> P(right), fitted for this engine set on held-out train forms
        features = confidence_features(fields_by_engine, chosen, confidence, readings, params, spec)
        for key, model in recal.items():
            z = float(model["intercept"]) + sum(float(w) * features[key][name] for name, w in model["coef"].items())
            confidence[key] = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
            if model.get("weighs_contradiction"):
                weighed.add(key)
    # last: a reading the gazetteer contradicts must not pass as sure, however much the engines agree
    kind, doubted = contradiction(chosen, spec)
    for key in set(doubted) - weighed:
        confidence[key] *= float(params.contradiction[kind])
    return clean_fields(chosen, spec.keys), {k: round(confidence[k], 4) for k in spec.keys}, candidates


def engine_set(readings: Mapping[str, Any]) -> str:
    """The name a recalibration is kept under: the engines that read the form, sorted, joined by '+'."""
    return "+".join(sorted(readings))


#: the features of :func:`confidence_features`, in order (a recalibration weighs the ones it
#: names: older ones name only the first seven)
FEATURES = ("logit_conf", "agree", "none", "invalid", "contradicted", "confirmed", "best_p", "agree_exact",
            *WRITING_FEATURES)


def confidence_features(fields_by_engine: Mapping[str, Mapping[str, str]], chosen: Mapping[str, str],
                        confidence: Mapping[str, float], readings: Mapping[str, Any],
                        params: VoteSettings, form: Form = None) -> dict[str, dict[str, float]]:
    """Per field, what a recalibrated confidence is computed from: the vote's confidence (logit),
    the share of engines that read the chosen value (any case), "None" chosen, the validator
    failing, the gazetteer contradicting / confirming the gazetteer-linked fields (city, state,
    ZIP: ``confirmed`` only for them), and the best calibrated
    probability among the engines that read the chosen value; then the share of engines that read
    it exactly as chosen (letter case and dots included) and how the chosen text is written
    (:func:`~handwriting_pipeline.fields.text.writing_features`: mixed case, look-alike letters,
    dots ... where case and dot errors hide)."""
    spec = vote_spec(form)
    kind, doubted = contradiction(chosen, spec)
    linked = spec.group.keys if spec.group is not None else ()
    zip_code = chosen.get(spec.group.zip, NONE) if spec.group is not None else NONE
    confirmed = kind is None and zip_code != NONE and zip_places(zip_code) != ()
    out = {}
    for key in spec.keys:
        c = min(1 - 1e-4, max(1e-4, float(confidence[key])))
        values = {e: f[key] for e, f in fields_by_engine.items()}
        same = [e for e, v in values.items() if fold(v) == fold(chosen[key])]
        probs = [engine_probability(e, key, values[e], float(readings[e][1].get(key, math.nan)), params) for e in same]
        out[key] = {"logit_conf": math.log(c / (1 - c)), "agree": len(same) / max(1, len(values)),
                    "none": float(chosen[key] == NONE),
                    "invalid": float(validator_factor(key, chosen[key], params, spec) < 1),
                    "contradicted": float(key in doubted),
                    "confirmed": float(confirmed and key in linked), "best_p": max(probs, default=0.0),
                    "agree_exact": sum(v == chosen[key] for v in values.values()) / max(1, len(values)),
                    **writing_features(chosen[key])}
    return out


def fold(value: str) -> str:
    """Case-folded value: readings that differ only in letter case vote together."""
    return value if value == NONE else value.upper()


def choose_surface(folded: str, readings: list[tuple[str, str, float, float]]) -> tuple[str, float]:
    """The spelling (with case) of a chosen value, and its share among the alternatives.

    ``readings`` are ``(folded, surface, p, case_trust)``; a surface scores
    ``prod case_trust`` over engines that wrote it times ``prod (1 - case_trust)`` over
    engines that wrote the same value in another case (ties: the more trusted reading)."""
    group = [(surface, p, t) for f, surface, p, t in readings if f == folded]
    forms = list(dict.fromkeys(surface for surface, _, _ in group))
    if len(forms) == 1:
        return forms[0], 1.0
    score = {}
    for form in forms:
        sc = 1.0
        for surface, _, t in group:
            sc *= t if surface == form else (1.0 - t)
        score[form] = sc
    best_p = {form: max(p for surface, p, _ in group if surface == form) for form in forms}
    best = max(forms, key=lambda f: (score[f], best_p[f]))
    total = sum(score.values())
    return best, (score[best] / total if total else 1.0 / len(forms))


def vote(predictions: Mapping[str, pd.DataFrame],
         params: Mapping[str, Any] | VoteSettings | None = None,
         form: Form = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Vote every form seen by at least one engine.

    Args:
        predictions: ``{engine: predictions table}`` (empty tables are skipped).
        params: ``ensemble.vote`` parameters (:class:`VoteSettings` or its mapping).
        form: the form spec (None: the HSF top section): its fields are the tables' keys.

    Returns:
        ``(predictions table, review queue)``.
    """
    params = vote_params(params)
    spec = vote_spec(form)
    keys = spec.keys
    tables = {e: t for e, t in predictions.items() if t is not None and len(t)}
    if not tables:
        return empty_predictions(keys), review_queue([], params.review_threshold)
    for engine in tables:
        if calibration_for(params.calibration, engine) is None:
            logger.warning(
                "vote: no calibration for engine '%s'; using %.2f x its confidence. Learn one on train forms "
                "(python -m handwriting_pipeline.ensemble.calibrate) and add it to ensemble.vote.calibration",
                engine, float(params.weights.get(engine, 1.0)))
    records, reviews = [], []
    for name, readings in readings_by_form(tables, keys).items():
        if not readings:
            records.append({"file_name": name, "error": "no engine read this form"})
            continue
        fields, conf, cands = vote_form(readings, params, spec)
        records.append({"file_name": name, **fields, **{f"{k}_conf": conf[k] for k in keys}, "seconds": 0.0})
        reviews.extend(
            {"form": name, "field": k, "candidates": json.dumps(cands[k], ensure_ascii=False),
             "chosen": fields[k], "confidence": conf[k]}
            for k in keys
        )
    return predictions_from_records(records, keys), review_queue(reviews, params.review_threshold)


def review_queue(rows: list[dict[str, Any]], threshold: float) -> pd.DataFrame:
    """The fields whose confidence is below ``threshold``: form, field, candidates, chosen, confidence."""
    frame = pd.DataFrame(rows, columns=["form", "field", "candidates", "chosen", "confidence"])
    frame = frame[frame["confidence"] < threshold]
    return frame.sort_values(["confidence", "form", "field"]).reset_index(drop=True)


# --------------------------------------------------------------------------- the vote over all forms
def default_vote_inputs(tables: Mapping[str, pd.DataFrame], calibration: Mapping[str, Any],
                        where: str = "ensemble vote") -> dict[str, pd.DataFrame]:
    """Without ``ensemble.inputs`` the vote takes the engines it has a calibration for (an
    uncalibrated engine's raw confidence would outvote calibrated ones); all of them when none is."""
    left_out = [e for e in tables if calibration_for(calibration, e) is None]
    if left_out:
        logger.info("%s: %s left out (no calibration; name them in ensemble.inputs to force)", where,
                    ", ".join(left_out))
    kept = {e: t for e, t in tables.items() if e not in left_out}
    return kept or dict(tables)


def vote_predictions(params: Mapping[str, Any] | EnsembleSettings, calibration: Mapping[str, Any],
                     predictions: Mapping[str, pd.DataFrame], form: Form = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The vote of the ``ensemble`` block (``methods``, ``inputs``, ``vote``) over the engines'
    predictions of the form ``form`` (None: the HSF top section) with ``calibration``
    (:func:`handwriting_pipeline.methods.vote_calibration`).

    Returns ``predictions_vote`` and ``review_queue`` (fields below ``vote.review_threshold``).
    """
    ensemble = EnsembleSettings.from_params(params)
    settings = dataclasses.replace(ensemble.vote, calibration=dict(calibration))
    if "vote" not in method_list(ensemble.methods):
        logger.info("ensemble: 'vote' not in ensemble.methods; predictions_vote is empty")
        return empty_predictions(vote_spec(form).keys), review_queue([], settings.review_threshold)
    wanted = method_list(ensemble.inputs)
    tables = available_inputs(predictions, wanted)
    if not tables:
        logger.warning("ensemble vote: no engine produced predictions (all inputs empty); nothing to vote")
        return empty_predictions(vote_spec(form).keys), review_queue([], settings.review_threshold)
    if not wanted:
        tables = default_vote_inputs(tables, settings.calibration)
    logger.info("ensemble vote over %s", ", ".join(f"{e} ({len(t)} forms)" for e, t in tables.items()))
    table, queue = vote(tables, settings, form)
    logger.info("ensemble vote: %d forms, %d fields sent to review", len(table), len(queue))
    return table, queue
