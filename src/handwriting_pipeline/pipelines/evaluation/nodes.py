"""Nodes of the 'evaluation' pipeline: score every method's predictions on the evaluation forms
and write the report (metrics table, markdown, plots, per-field errors).

The metrics themselves live in :mod:`handwriting_pipeline.metrics` (shared with
``python -m handwriting_pipeline.score``), the cost model in :mod:`handwriting_pipeline.cost`, the
settings in :mod:`handwriting_pipeline.evaluation`; this module adds method selection and the
report's presentation.

Every node that scores or reports reads the evaluated form (``params:form``, a form spec:
:func:`handwriting_pipeline.fields.formspec.load_form`; None: the HSF form): FLA, CBA, the
``CBA_<KEY>`` columns, the per-field errors and charts are over its fields. What only the HSF
form has so far - the gazetteer's address check, the cascade's guarantee - is reported as "not
measured on this form" on another form; its normalized fields are normalized per field type
(:func:`handwriting_pipeline.metrics.score_forms_typed`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from handwriting_pipeline.cost import form_costs, method_costs
from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.ensemble.cascade import cascade_cost
from handwriting_pipeline.ensemble.settings import EnsembleSettings
from handwriting_pipeline.ensemble.vote import calibration_for
from handwriting_pipeline.evaluation import EvaluationSettings
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.fields.formspec import HSF_FORM, FormSpec, is_hsf_layout, load_form
from handwriting_pipeline.methods import vote_calibration
from handwriting_pipeline.metrics import (
    evaluate_method,
    form_errors,
    metrics_markdown,
    metrics_row,
    metrics_table,
    normalized_metrics_row,
    normalized_metrics_table,
    score_forms_normalized,
    score_forms_typed,
    typed_metrics_row,
    typed_metrics_table,
)
from handwriting_pipeline.predictions import normalise_predictions
from handwriting_pipeline.registry import all_methods, engine_methods, method_list, select_methods
from handwriting_pipeline.review.curve import curves_markdown, method_curves, plot_curves

from .provenance import failures_markdown, mark_failed_rows, provenance_markdown

logger = logging.getLogger(__name__)



def form_score_columns(keys: tuple[str, ...] = KEYS) -> list[str]:
    """form_scores.parquet columns for a form's fields (:data:`FORM_SCORE_COLUMNS` on the HSF form)."""
    return ["method", "file_name", "has_prediction", "exact", "CBA", *(f"CBA_{k}" for k in keys),
            "covered", "seconds", "cost_usd"]


FORM_SCORE_COLUMNS = form_score_columns(KEYS)


# --------------------------------------------------------------------------- the form
def form_spec(form: str | FormSpec | None) -> FormSpec:
    """The evaluated form: ``params:form`` (a shipped form's name or a spec file); None: the HSF form."""
    return form if isinstance(form, FormSpec) else load_form(form or HSF_FORM)


def form_labels(forms: LabelledForms, spec: FormSpec) -> pd.DataFrame:
    """``file_name`` + the form's fields of the labels; a ValueError when the forms are labelled
    with other fields (forms of another form)."""
    keys = list(spec.keys)
    missing = [k for k in keys if k not in forms.labels.columns]
    if missing and len(forms):
        raise ValueError(
            f"The evaluation forms are labelled with the fields {', '.join(forms.keys)}, but form '{spec.name}' "
            f"has the fields {', '.join(keys)} ({', '.join(missing)} missing): evaluate forms of that form "
            "(--params evaluation.data_dir=<folder>) or name their form (--params form=<name>).")
    if missing:
        return pd.DataFrame(columns=["file_name", *keys])
    return forms.labels[["file_name", *keys]]


# --------------------------------------------------------------------------- methods
def selected_methods(params: Mapping[str, Any] | EvaluationSettings) -> list[str]:
    """``evaluation.methods`` as a list: None/"all" -> every method; a list or a string
    (``--params "evaluation.methods=textract;donut"``) -> those, in that order."""
    return select_methods(EvaluationSettings.from_params(params).methods, all_methods(), "evaluation.methods")


# --------------------------------------------------------------------------- nodes
def score_predictions(forms: LabelledForms, params: Mapping[str, Any] | EvaluationSettings,
                      form: str | FormSpec | None = None, **predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score each selected method's predictions on the evaluation forms.

    Args:
        forms: the labelled evaluation forms (only their labels are read).
        params: ``params:evaluation`` (``methods``, ``cost``).
        form: ``params:form``, the evaluated form (None: the HSF form): its fields are scored.
        **predictions: one predictions table per method, keyword = method name. An empty table
            means the method did not run: it gets no rows.

    Returns:
        Per-form scores (method, file_name, has_prediction, exact, CBA, CBA_<KEY>, covered,
        seconds, cost_usd) and the per-field errors (method, file_name, field, gold, predicted,
        edit_distance, error). Predictions for forms not in the labels are ignored (logged);
        labelled forms without a prediction count as all "None".
    """
    keys = form_spec(form).keys
    if len(forms) == 0:
        raise ValueError("evaluation_forms holds no labelled forms: nothing to evaluate. Run the curation "
                         "pipeline or point --params=evaluation.data_dir=<folder> at a labelled folder.")
    labels = form_labels(forms, form_spec(form))
    settings = EvaluationSettings.from_params(params)
    scores, errors = [], []
    for method in selected_methods(settings):
        table = _method_table(method, predictions, keys)
        if table is not None:
            scores.append(_score_method(labels, method, table, settings.cost, keys))
            errors.append(form_errors(labels, table, method=method, keys=keys))
    if not scores:
        logger.warning("No method produced predictions for the evaluation forms: the report is empty")
        return pd.DataFrame(columns=form_score_columns(keys)), form_errors(labels.iloc[:0], labels.iloc[:0], keys=keys)
    return pd.concat(scores, ignore_index=True), pd.concat(errors, ignore_index=True)


def _method_table(method: str, predictions: Mapping[str, pd.DataFrame],
                  keys: tuple[str, ...] = KEYS) -> pd.DataFrame | None:
    """The method's normalised predictions (the form's ``keys``); None (logged) when it has no
    input or did not run."""
    if method not in predictions:
        logger.warning("%s: no predictions input for this method; skipped", method)
        return None
    table = normalise_predictions(predictions[method], keys)
    if table.empty:
        logger.info("%s: empty predictions table (method not run); no row in the report", method)
        return None
    return table


def _score_method(labels: pd.DataFrame, method: str, table: pd.DataFrame, cost: Any,
                  keys: tuple[str, ...] = KEYS) -> pd.DataFrame:
    """One method's per-form scores with its seconds and cost per form (logs what did not match)."""
    per_form, report = evaluate_method(labels, table, keys)
    logger.info("%s: %d predictions, %d of %d evaluation forms matched", method, report.n_predictions,
                report.matched, report.n_labels)
    for line in report.summary(method):
        logger.warning(line)
    n_failed = int(table["error"].notna().sum())
    if n_failed:
        logger.warning("%s: %d forms carry an error (their fields are scored as predicted)", method, n_failed)
    first = table.drop_duplicates("file_name")
    costs = form_costs(first, method, cost)
    seconds = pd.Series(first["seconds"].to_numpy(), index=first["file_name"].to_numpy())
    per_form.insert(0, "method", method)
    per_form["seconds"] = per_form["file_name"].map(seconds).astype(float)
    per_form["cost_usd"] = per_form["file_name"].map(costs).astype(float)
    per_form.loc[~per_form["has_prediction"], "cost_usd"] = 0.0
    return per_form[form_score_columns(keys)]


def ensemble_inputs(ensemble: Mapping[str, Any] | EnsembleSettings | None) -> dict[str, list[str]]:
    """The engines each ensemble merges as configured (``ensemble.inputs``; the LLM's own
    ``ensemble.llm.inputs`` when given); [] = every engine that produced output."""
    if ensemble is None:
        return {}
    settings = EnsembleSettings.from_params(ensemble)
    shared = method_list(settings.inputs)
    return {"vote": shared, "llm": method_list(settings.llm.inputs) or shared}


def summarise_metrics(form_scores: pd.DataFrame, params: Mapping[str, Any] | EvaluationSettings,
                      ensemble: Mapping[str, Any] | EnsembleSettings | None = None,
                      cascade: Mapping[str, Any] | None = None, form: str | FormSpec | None = None) -> pd.DataFrame:
    """One row per method with exactly the metrics.csv columns (``CBA_<KEY>`` for the fields of
    ``form``, ``params:form``; None: the HSF form).

    cost_usd = sum of the per-form costs plus, for the methods listed in ``cost.include_cost_of``,
    the costs of the methods they merge (:func:`handwriting_pipeline.cost.method_costs`;
    ``inputs``: the ensemble's inputs from ``params:ensemble``, every engine scored in this run when
    it names none - a vote over paid engines costs what they cost, a vote beside them does not),
    and for the cascade (``cascade``: its escalation report) its engines' cost as it reads
    (:func:`_with_cascade_cost`); seconds_per_form = mean of ``seconds`` over the forms the
    method predicted.
    """
    keys = form_spec(form).keys
    if form_scores.empty:
        return metrics_table([], keys)
    settings = EvaluationSettings.from_params(params)
    present = list(dict.fromkeys(form_scores["method"]))
    order = [m for m in all_methods() if m in present] + [m for m in present if m not in all_methods()]
    own_cost = {m: form_scores.loc[form_scores["method"] == m, "cost_usd"].sum(skipna=False) for m in order}
    totals = method_costs(own_cost, settings.cost, engine_methods(), ensemble_inputs(ensemble))
    if cascade and cascade.get("method") in totals:
        totals[cascade["method"]] += _with_cascade_cost(own_cost, cascade)
    rows = []
    for method in order:
        per_form = form_scores[form_scores["method"] == method]
        seconds = per_form.loc[per_form["has_prediction"], "seconds"]
        rows.append(metrics_row(method, per_form, cost_usd=float(totals[method]),
                                seconds_per_form=float(seconds.mean()) if seconds.notna().any() else float("nan"),
                                keys=keys))
    table = metrics_table(rows, keys)
    logger.info("Evaluation metrics:\n%s", metrics_markdown(table))
    return table


def _with_cascade_cost(own_cost: Mapping[str, float], cascade: Mapping[str, Any]) -> float:
    """The cascade's engines' cost (:func:`~handwriting_pipeline.ensemble.cascade.cascade_cost`:
    the fast engines' for every form, the slower ones' for the escalated share only) from what
    each engine cost reading every evaluation form."""
    engines = [*cascade.get("fast", []), *cascade.get("slow", [])]
    for engine in engines:
        if engine not in own_cost:
            logger.warning("cascade: cost of '%s' not included (no predictions for it)", engine)
    costs = {e: own_cost[e] for e in engines if e in own_cost}
    return cascade_cost(costs, cascade.get("fast", []), float(cascade.get("escalated_share", 0.0)))


def review_curves(forms: LabelledForms, params: Mapping[str, Any] | EvaluationSettings,
                  form: str | FormSpec | None = None, **predictions: pd.DataFrame) -> dict[str, Any]:
    """The review curve of every selected method with per-field confidences (review_curve.json):
    FLA / CBA after a person fixes the k % least-confident fields, the share to review for
    FLA 90 / 95 / 99, and what ``evaluation.review_threshold`` sends to review, over the form's
    fields."""
    spec = form_spec(form)
    settings = EvaluationSettings.from_params(params)
    labels = form_labels(forms, spec)
    tables = {m: t for m in selected_methods(settings) if (t := _method_table(m, predictions, spec.keys)) is not None}
    keys = None if is_hsf_layout(spec) else spec.keys  # None: the HSF fields, exactly as before
    return method_curves(labels, tables, threshold=float(settings.review_threshold), keys=keys)


def guarantee_checks(forms: LabelledForms, params: Mapping[str, Any] | EvaluationSettings,
                     ensemble_params: Mapping[str, Any], calibrations: Mapping[str, Any] | None,
                     guarantees: Mapping[str, Any] | None, cascade: Mapping[str, Any] | None,
                     form: str | FormSpec | None = None, recalibrations: Mapping[str, Any] | None = None,
                     **predictions: pd.DataFrame) -> dict[str, Any]:
    """The guarantee digitize applies to the cascade evaluated here (one its trained models carry,
    ``guarantees``, for the same engines), checked on these labelled forms: the cascade replayed
    with the vote's calibration (``calibrations`` from the trained models), the two levels of
    trust per field, and per level the fields marked sure, the realized error rate with its exact
    interval next to alpha, and the share sent to review. {} without a cascade, or on a form
    without the HSF form's fields (the trust rows read those only); ``applies`` false when no
    guarantee was fitted for its engines."""
    from handwriting_pipeline.digitize.core import guarantee_key
    from handwriting_pipeline.ensemble.cascade import cascade_tables, replay
    from handwriting_pipeline.ensemble.trust import check_guarantee, trust_rows, value_review_curve
    from handwriting_pipeline.methods import with_models

    if not cascade or not cascade.get("fast"):
        return {}
    if not is_hsf_layout(form_spec(form)):
        logger.info("cascade guarantee: not checked on form '%s' (it reads the HSF form's fields)", form_spec(form).name)
        return {}
    engines = [*cascade["fast"], *cascade.get("slow", [])]
    key = guarantee_key("cascade", engines)
    levels = (guarantees or {}).get(key)
    ensemble = EnsembleSettings.from_params(ensemble_params)
    vote = with_models(ensemble.vote, calibrations, recalibrations)
    tables = {m: normalise_predictions(predictions[m]) for m in engines if predictions.get(m) is not None}
    fast = [m for m in cascade["fast"] if m in tables]
    names = list(dict.fromkeys(n for m in fast for n in tables[m]["file_name"]))
    read = cascade_tables(replay(tables), names, fast, [m for m in tables if m not in fast], vote, ensemble.cascade)
    rows = trust_rows(forms.labels, read, vote, EvaluationSettings.from_params(params).normalize)
    found = {"key": key, "applies": bool(levels), "forms": len(forms), "value_curve": value_review_curve(rows)}
    if levels:
        found["levels"] = {on: check_guarantee(rows, entry, on) for on, entry in levels.items()}
    return found


def guarantee_report_lines(checked: Mapping[str, Any] | None) -> list[str]:
    """The metrics.md section on the cascade's guarantee, checked on the evaluated forms."""
    if not checked:
        return []
    curve = checked.get("value_curve") or []
    lines = ["", "## Review curve of values (cascade)", "",
             "% of normalized fields right (ISO date, USPS code, gazetteer city, ZIP5) after a person fixes the k % "
             "of fields least sure of their value:", "",
             "| " + " | ".join(f"{p['reviewed_pct']} %" for p in curve) + " |", "|" + "--:|" * len(curve),
             "| " + " | ".join(str(p["value_right_pct"]) for p in curve) + " |"] if curve else []
    if not checked.get("applies"):
        return [*lines, "", "## Guarantee", "", f"No guarantee was fitted for `{checked['key']}`: digitize marks "
                "fields sure at its plain review threshold for these engines."]
    lines += ["", "## Guarantee of the cascade's sure fields", "",
              f"`{checked['key']}`, as digitize applies it, checked on these {checked['forms']} forms (they played no "
              "part in the fit)."]
    for on, level in checked["levels"].items():
        lines += ["", f"**{on}** level: α {level['alpha']:g}, δ {level['delta']} — fitted on {level['fitted_on']}.", "",
                  "| field | threshold | sure / n | errors | realized % [exact 95 %] | ≤ α | review % |",
                  "|---|--:|--:|--:|---|:-:|--:|"]
        for name, part in [*level["fields"].items(), ("all", level["all"])]:
            t = level["thresholds"].get(name) if name != "all" else None
            ci = part["ci95"]
            realized = "–" if part["realized"] is None else (
                f"{100 * part['realized']:.2f} [{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]")
            holds = "–" if part["holds"] is None else ("yes" if part["holds"] else "no")
            lines.append(f"| {name} | {'–' if t is None else t} | {part['sure']} / {part['n']} | {part['errors']} | "
                         f"{realized} | {holds} | {part['review_pct']} |")
    return lines


def plot_review_curves(curves: Mapping[str, Any], metrics: pd.DataFrame) -> Figure:
    """FLA against the share of fields reviewed, one line per method in the metrics table's order
    (review_curve.png)."""
    order = [m for m in metrics["method"] if m in curves] + [m for m in curves if m not in set(metrics["method"])]
    return plot_curves({m: curves[m] for m in order})


def _and_list(names: Sequence[str]) -> str:
    """``DATE, CITY, STATE and ZIP``."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


_NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve")


def _n_fields(n: int) -> str:
    """``four fields`` (``field`` for one)."""
    return "field" if n == 1 else f"{_NUMBER_WORDS[n] if n < len(_NUMBER_WORDS) else n} fields"


def definition_lines(keys: Sequence[str]) -> list[str]:
    """The report's metric definitions, over the form's fields."""
    every = "all equal the labels exactly" if len(keys) > 1 else "equals the label exactly"
    return [
        f"- **FLA**: % of forms whose {_and_list(keys)} {every}.",
        "- **CBA**: per form 100 - 100 * sum of edit distances / sum of max(len(gold), len(predicted)) "
        f"over the {_n_fields(len(keys))}, averaged over forms; CBA_<KEY> the same for one field.",
        f"- **coverage**: % of forms with a value other than \"None\" in {'all' if len(keys) > 1 else 'the'} "
        f"{_n_fields(len(keys))}.",
        "- **cost_usd**: estimated cost of the split (API pages, LLM tokens, local compute; prices in "
        "`conf/base/parameters_evaluation.yml`). **seconds_per_form**: mean time per predicted form.",
        "- Forms a method did not predict count as all \"None\".",
    ]


def not_measured_lines(spec: FormSpec, methods: set[str]) -> list[str]:
    """The metrics.md section on what is measured on the HSF form only (empty on that form)."""
    if is_hsf_layout(spec):
        return []
    items = ["the gazetteer's address check (`address_verified`) of the normalized fields: it checks the HSF "
             "form's city, state and ZIP"]
    if "cascade" in methods:
        items.append("the guarantee of the cascade's sure fields: its trust levels are fitted on the HSF form's fields")
    return ["", "## Not measured on this form", "",
            f"Form `{spec.name}` has other fields than the HSF form; these parts of the report are measured on the "
            "HSF form only so far:", "", *(f"- {item}." for item in items)]


def render_report(metrics: pd.DataFrame, forms: LabelledForms, params: Mapping[str, Any] | EvaluationSettings,
                  failures: Mapping[str, Any] | None = None, run_info: Mapping[str, Any] | None = None,
                  normalized: pd.DataFrame | None = None, review: Mapping[str, Any] | None = None,
                  cascade: Mapping[str, Any] | None = None, choices: Mapping[str, Any] | None = None,
                  guarantee: Mapping[str, Any] | None = None, form: str | FormSpec | None = None,
                  calibrations: Mapping[str, Any] | None = None, ensemble_params: Mapping[str, Any] | None = None) -> str:
    """The metrics table as a short markdown report (metrics.md), naming the evaluated forms.

    With ``failures`` (:func:`.provenance.collect_failures`) rows of methods that failed on
    some forms are marked and a "Failures" section lists them and the rejected input files;
    ``run_info`` (run id, date, command) adds the provenance lines and the plot links; with
    ``normalized`` (:func:`score_normalized`'s table) also the normalized metrics section; with
    ``review`` (:func:`review_curves`) the review curve section; with ``cascade`` (its escalation
    report) the cascade's escalation share, when the cascade is in the table; with ``choices``
    (``{engine: [choice, ...]}``, :func:`~handwriting_pipeline.methods.model_choices`) which
    components the evaluated trained engines use and the interval that put each there; with
    ``guarantee`` (:func:`guarantee_checks`) the cascade's guarantee checked on these forms; with
    ``calibrations`` (the trained models', ``engine_calibrations``) and ``ensemble_params`` the
    vote's calibration of each engine and where it was fitted.
    ``form`` (``params:form``) names the evaluated form and its fields ("Form" line, the metric
    definitions); None: the HSF form, the "Form" line from ``run_info``. On a form without the
    HSF form's fields, what is measured on that form only is listed as not measured."""
    spec = form_spec(form)
    if form is not None:  # the evaluated form, whatever form the run's hook recorded
        run_info = {**(run_info or {}), "form": spec.name, "fields": list(spec.keys)}
    hsf = is_hsf_layout(spec)
    methods = set(metrics["method"])
    not_run = [m for m in selected_methods(params) if m not in methods]
    source = getattr(forms, "source", "") or "catalog entry `evaluation_forms`"
    lines = [
        "# Evaluation report",
        "",
        f"{len(forms)} labelled forms from {source}."
        + ("" if not metrics.empty else " No method produced predictions for them."),
        "",
        *provenance_markdown(forms, metrics["method"].tolist(), run_info),
        "",
        metrics_markdown(mark_failed_rows(metrics, failures)),
        "",
        *definition_lines(spec.keys),
    ]
    if not_run:
        lines += ["", f"Not run (empty predictions): {', '.join(not_run)}."]
    if cascade and "cascade" in methods:
        lines += ["", *cascade_report_lines(cascade)]
    lines += calibration_report_lines(calibrations, ensemble_params, spec, methods)
    lines += choices_report_lines(choices, methods)
    if "cascade" in methods and hsf:
        lines += guarantee_report_lines(guarantee)
    lines += failures_markdown(failures)
    if normalized is not None and not normalized.empty:
        lines += ["", *(normalized_report_lines(metrics, normalized) if hsf
                        else typed_report_lines(metrics, normalized, spec))]
    if review is not None and hsf:
        lines += ["", "## Review curve", "", curves_markdown(review).rstrip(), "",
                  "Plot: review_curve.png; every point: review_curve.json."]
    lines += not_measured_lines(spec, methods)
    return "\n".join(lines) + "\n"


def choices_report_lines(choices: Mapping[str, Any] | None, methods: set[str]) -> list[str]:
    """The metrics.md section on the components trained engines chose on forms they never saw."""
    found = {m: rows for m, rows in (choices or {}).items() if m in methods and rows}
    if not found:
        return []
    lines = ["", "## Components chosen on out-of-fold forms", "",
             "| engine | component | on | FLA without | FLA with | gain [95 % paired interval] | forms | why |",
             "|---|---|---|--:|--:|---|--:|---|"]
    for method, rows in found.items():
        for row in rows:
            gain = "–" if row.get("gain") is None or row.get("gain") != row.get("gain") else (
                f"{row['gain']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}]")
            lines.append(f"| {method} | {row['component']} | {'on' if row['on'] else 'off'} | {row['fla_without']} | "
                         f"{row['fla_with']} | {gain} | {row['forms']} | {row['note']} |")
    lines += ["", "A component is on only when the lower bound of its gain's interval (bootstrap over forms "
              "read by fold readers that never saw them) is above 0."]
    return lines


def calibration_report_lines(calibrations: Mapping[str, Any] | None, ensemble_params: Mapping[str, Any] | None,
                             spec: FormSpec, methods: set[str]) -> list[str]:
    """The metrics.md section on the vote's calibration of each evaluated engine and where it
    was fitted (:func:`~handwriting_pipeline.methods.vote_calibration`'s precedence); empty
    without a vote or a cascade in the table."""
    if not methods & {"vote", "cascade"}:
        return []
    shipped = ((ensemble_params or {}).get("vote") or {}).get("calibration")
    used = vote_calibration(shipped, calibrations, spec)
    engines = [m for m in all_methods() if m in methods and m in engine_methods()]
    rows = []
    for engine in engines:
        fields = calibration_for(used, engine)
        if fields is None:
            rows.append(f"| {engine} | none: its raw confidence | – |")
            continue
        forms = max((int(entry.get("n") or 0) for entry in fields.values()), default=0) or "–"
        where = ("saved with a trained model: fitted on held-out forms of this form"
                 if engine in (calibrations or {}) else "`ensemble.vote.calibration` (fitted on HSF train forms)")
        rows.append(f"| {engine} | {where} | {forms} |")
    return ["", "## The vote's calibration", "", "| engine | calibration | forms fitted on |", "|---|---|--:|", *rows,
            "", "Without `ensemble.inputs` the vote and the cascade merge the calibrated engines only (all of them "
            "when none is). Forms fitted on: – where the calibration does not record it."]


def cascade_report_lines(cascade: Mapping[str, Any]) -> list[str]:
    """The metrics.md section on the cascade: which engines read what, and the escalation share."""
    fast, slow = cascade.get("fast") or [], cascade.get("slow") or []
    share = 100 * float(cascade.get("escalated_share", 0.0))
    return [
        "## Cascade",
        "",
        f"- **escalated**: {cascade.get('escalated', 0)} of {cascade.get('forms', 0)} forms ({share:.1f} %) "
        f"went on to the slower engines ({', '.join(slow) or 'none'}), every field of them; "
        f"{', '.join(fast) or 'none'} read every form (threshold {cascade.get('threshold')}, "
        f"escalate_invalid {cascade.get('escalate_invalid')}).",
        "- **cost_usd** of the cascade: the fast engines' cost for every form plus the slower engines' "
        "cost for the escalated share of the forms.",
    ]


def _bar_chart(metrics: pd.DataFrame, columns: list[str], labels: list[str], title: str) -> Figure:
    n = len(metrics)
    fig = Figure(figsize=(max(6.0, 1.3 * n * len(columns) / 2 + 2), 4.5))
    ax = fig.add_subplot()
    if n == 0:
        ax.text(0.5, 0.5, "no method produced predictions", ha="center", va="center")
        ax.set_axis_off()
        return fig
    x = np.arange(n)
    width = 0.8 / len(columns)
    for i, (column, label) in enumerate(zip(columns, labels)):
        bars = ax.bar(x + (i - (len(columns) - 1) / 2) * width, metrics[column].to_numpy(), width, label=label)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=1)
    ax.set_xticks(x, metrics["method"].tolist(), rotation=20, ha="right")
    ax.set_ylim(0, 118)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("%")
    ax.set_title(title)
    ax.legend(loc="upper center", ncol=len(columns), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def plot_accuracy(metrics: pd.DataFrame, form: str | FormSpec | None = None) -> Figure:
    """Bar chart of FLA and CBA per method (``form``: ``params:form``; None: the HSF form)."""
    n = len(form_spec(form).keys)
    fla = f"FLA (all {_n_fields(n)} exact)" if n > 1 else "FLA (field exact)"
    return _bar_chart(metrics, ["FLA", "CBA"], [fla, "CBA (character accuracy)"], "FLA and CBA per method")


def plot_key_accuracy(metrics: pd.DataFrame, form: str | FormSpec | None = None) -> Figure:
    """Bar chart of CBA per field of the form (``params:form``; None: the HSF form's DATE, CITY,
    STATE, ZIP) per method."""
    keys = list(form_spec(form).keys)
    return _bar_chart(metrics, [f"CBA_{k}" for k in keys], keys, "CBA per field and method")


# --------------------------------------------------------------------------- normalized fields
def score_normalized(forms: LabelledForms, params: Mapping[str, Any] | EvaluationSettings,
                     form: str | FormSpec | None = None,
                     **predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What a database gets: every selected method's predictions normalized and compared with the
    normalized labels. On the HSF form (``form``: ``params:form``; None) with
    :func:`handwriting_pipeline.fields.normalize.normalize_record` (options ``evaluation.normalize``),
    on another form per field type (:func:`handwriting_pipeline.metrics.score_forms_typed`: each
    field's ``type_of(field).normalize``, options from its spec).

    Returns:
        The per-form table (method + :func:`handwriting_pipeline.metrics.score_forms_normalized`'s
        columns: written and normalized prediction, normalized gold, matches; another form:
        :func:`~handwriting_pipeline.metrics.score_forms_typed`'s) and one row per method with
        :data:`handwriting_pipeline.metrics.NORMALIZED_METRIC_COLUMNS` (another form:
        :func:`~handwriting_pipeline.metrics.typed_metric_columns`).
    """
    spec = form_spec(form)
    keys = spec.keys
    labels = form_labels(forms, spec)
    settings = EvaluationSettings.from_params(params)
    options = settings.normalize
    if is_hsf_layout(spec):
        def score(gold: pd.DataFrame, pred: pd.DataFrame) -> pd.DataFrame:
            return score_forms_normalized(gold, pred, options)

        def row(method: str, per_form: pd.DataFrame) -> dict[str, object]:
            return normalized_metrics_row(method, per_form)

        def table_of(rows: list[dict[str, object]]) -> pd.DataFrame:
            return normalized_metrics_table(rows)
    else:
        def score(gold: pd.DataFrame, pred: pd.DataFrame) -> pd.DataFrame:
            return score_forms_typed(gold, pred, spec)

        def row(method: str, per_form: pd.DataFrame) -> dict[str, object]:
            return typed_metrics_row(method, per_form, keys)

        def table_of(rows: list[dict[str, object]]) -> pd.DataFrame:
            return typed_metrics_table(rows, keys)
    tables, rows = [], []
    for method in selected_methods(settings):
        table = normalise_predictions(predictions[method], keys) if method in predictions else None
        if table is None or table.empty:
            continue
        per_form = score(labels, table)
        rows.append(row(method, per_form))
        per_form.insert(0, "method", method)
        tables.append(per_form)
    if not tables:
        empty = score(labels.iloc[:0], labels.iloc[:0])
        empty.insert(0, "method", pd.Series(dtype=str))
        return empty, table_of([])
    present = [r["method"] for r in rows]
    order = [m for m in all_methods() if m in present] + [m for m in present if m not in all_methods()]
    summary = table_of(sorted(rows, key=lambda r: order.index(r["method"])))
    logger.info("Normalized metrics:\n%s", summary.to_string(index=False))
    return pd.concat(tables, ignore_index=True), summary


def normalized_report_lines(metrics: pd.DataFrame, normalized: pd.DataFrame) -> list[str]:
    """The metrics.md section "What a database gets": as-written FLA/CBA beside the normalized rates."""
    table = normalized.merge(metrics[["method", "CBA"]], on="method", how="left")
    columns = ["method", "n", "FLA", "CBA", "FLA_nocase", "FLA_loose", "DATE_iso", "CITY_name", "STATE_code", "ZIP5",
               "FLA_normalized", "address_verified"]
    markdown = _rates_markdown(table, columns)
    return [
        "## What a database gets: normalized fields",
        "",
        markdown,
        "",
        "- **FLA_nocase** / **FLA_loose**: FLA with case ignored / with case, punctuation and spaces ignored.",
        ("- **DATE_iso, CITY_name, STATE_code, ZIP5**: % of forms whose normalized value (ISO date, gazetteer "
         "spelling of the city, USPS code, five-digit ZIP) equals the normalized label; a value with no "
         "canonical form is empty on both sides. **FLA_normalized**: all four equal."),
        "- **address_verified**: % of forms whose predicted CITY, STATE and ZIP agree in the offline gazetteer.",
        "- Per form: `normalized_forms.csv` (written and normalized prediction, normalized label).",
    ]


def _rates_markdown(table: pd.DataFrame, columns: list[str]) -> str:
    """``columns`` of ``table`` as a markdown table: method and n as they are, rates to 2 decimals
    (empty where missing)."""
    shown = table.reindex(columns=columns).astype(object)
    for column in columns[2:]:
        shown[column] = ["" if pd.isna(v) else f"{float(v):.2f}" for v in shown[column]]
    return shown.to_markdown(index=False, disable_numparse=True, colalign=["left"] + ["right"] * (len(columns) - 1))


def typed_report_lines(metrics: pd.DataFrame, normalized: pd.DataFrame, spec: FormSpec) -> list[str]:
    """The metrics.md section "What a database gets" on a form normalized per field type
    (:func:`score_normalized` on a form other than the HSF form)."""
    table = normalized.merge(metrics[["method", "CBA"]], on="method", how="left")
    columns = ["method", "n", "FLA", "CBA", "FLA_nocase", "FLA_loose", *(f"{k}_norm" for k in spec.keys),
               "FLA_normalized"]
    markdown = _rates_markdown(table, columns)
    types = ", ".join(f"{f.name}: `{f.type}`" for f in spec.fields)
    return [
        "## What a database gets: normalized fields",
        "",
        markdown,
        "",
        "- **FLA_nocase** / **FLA_loose**: FLA with case ignored / with case, punctuation and spaces ignored.",
        (f"- **<KEY>_norm**: % of forms whose field, normalized by its type ({types}; docs/forms.md, \"Field "
         "types\"), equals the normalized label; where neither has a normalized value (blank, unreadable) the "
         f"values as written must be equal. **FLA_normalized**: {'all' if len(spec.keys) > 1 else 'the'} "
         f"{_n_fields(len(spec.keys))} equal."),
        "- Per form: `normalized_forms.csv` (written and normalized prediction, normalized label).",
    ]
