"""What a report must say besides the scores: failures per method, rejected inputs, where the
forms came from, which model versions ran, when, and where its plots are.

``collect_failures`` makes ``evaluation_failures`` (failures.json); the project hook
(:mod:`handwriting_pipeline.hooks`) ends the run non-zero after everything is written when a
share exceeds ``evaluation.max_failure_share``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.evaluation import EvaluationSettings
from handwriting_pipeline.fields.formspec import HSF_FORM, FormSpec, load_form
from handwriting_pipeline.predictions import normalise_predictions

logger = logging.getLogger(__name__)

MAX_REASONS = 3
MAX_FILES = 20

# packages whose versions identify what a method ran
ENSEMBLE_PACKAGES = {"llm": ("openai",)}


def _share(params: Mapping[str, Any] | EvaluationSettings) -> float:
    value = EvaluationSettings.from_params(params).max_failure_share
    share = float(0 if value is None else value)
    if not 0 <= share <= 1:
        raise ValueError(f"evaluation.max_failure_share must be between 0 and 1, got {value!r}")
    return share


def collect_failures(forms: LabelledForms, params: Mapping[str, Any] | EvaluationSettings,
                     form: str | FormSpec | None = None, **predictions: pd.DataFrame) -> dict[str, Any]:
    """Failures per method that ran (count, share, first distinct reasons, files) and the input
    files that were rejected or unreadable; ``exceeds`` marks shares above
    ``evaluation.max_failure_share``. ``form``: ``params:form`` (None: the HSF form), the fields
    a predictions table has."""
    share = _share(params)
    keys = (form if isinstance(form, FormSpec) else load_form(form or HSF_FORM)).keys
    n_forms = len(forms)
    methods = []
    for method, table in predictions.items():
        table = normalise_predictions(table, keys)
        if table.empty:
            continue
        failed = table[table["error"].notna()].drop_duplicates("file_name")
        if failed.empty:
            continue
        reasons = list(dict.fromkeys(e.splitlines()[0] if e.strip() else e for e in failed["error"].astype(str)))
        n_failed = len(failed)
        methods.append({
            "method": method, "forms": int(max(n_forms, len(table))), "failed": int(n_failed),
            "share": n_failed / max(n_forms, len(table), 1),
            "reasons": reasons[:MAX_REASONS], "n_reasons": len(reasons),
            "files": failed["file_name"].tolist()[:MAX_FILES],
        })
    for entry in methods:
        entry["exceeds"] = bool(entry["share"] > share)
        log = logger.error if entry["exceeds"] else logger.warning
        log("%s failed on %d of %d forms (first: %s)", entry["method"], entry["failed"], entry["forms"],
            entry["reasons"][0])
    problems = list(forms.problems)
    listed = n_forms + len(problems)  # usable forms + rejected images + unusable metadata lines
    inputs = {"listed": int(listed), "rejected": len(problems),
              "share": len(problems) / max(listed, 1), "problems": problems}
    inputs["exceeds"] = bool(problems) and inputs["share"] > share
    return {"max_failure_share": share, "forms": n_forms, "methods": methods, "inputs": inputs}


def failures_markdown(failures: Mapping[str, Any] | None) -> list[str]:
    """The report's "Failures" section (an empty list when nothing failed)."""
    if not failures:
        return []
    methods, inputs = failures.get("methods") or [], failures.get("inputs") or {}
    if not methods and not inputs.get("problems"):
        return ["", "## Failures", "", "None: every method read every evaluation form, every input file was usable."]
    share = failures.get("max_failure_share", 0)
    lines = ["", "## Failures", "",
             f"Allowed share of failed forms per method: `evaluation.max_failure_share` = {share:g}. "
             "A failed form is scored as all \"None\" (an empty field of the labels then counts as read), "
             "so the scores of a marked row overstate what the method did."]
    if methods:
        lines += ["", "| method | failed | of | share | over the limit | first reasons | files |",
                  "|---|--:|--:|--:|---|---|---|"]
        for m in methods:
            reasons = "; ".join(r.replace("|", "/") for r in m["reasons"])
            if m.get("n_reasons", 0) > len(m["reasons"]):
                reasons += f" (+{m['n_reasons'] - len(m['reasons'])} other reasons)"
            files = ", ".join(m["files"]) + (" …" if m["failed"] > len(m["files"]) else "")
            lines.append(f"| {m['method']} | {m['failed']} | {m['forms']} | {100 * m['share']:.1f} % | "
                         f"{'**yes**' if m.get('exceeds') else 'no'} | {reasons} | {files} |")
    problems = inputs.get("problems") or []
    if problems:
        lines += ["", f"Input files not evaluated ({len(problems)}):", ""]
        for p in problems:
            where = p.get("path") or p.get("file_name")
            lines.append(f"- `{where}`: {p.get('problem', '')}")
    return lines


def mark_failed_rows(metrics: pd.DataFrame, failures: Mapping[str, Any] | None) -> pd.DataFrame:
    """``method`` labels of the report table with their failures: ``textract ⚠ 3/3 failed``."""
    if not failures or metrics.empty:
        return metrics
    marks = {m["method"]: f"{m['method']} ⚠ {m['failed']}/{m['forms']} failed" for m in failures.get("methods") or []}
    return metrics.assign(method=[marks.get(m, m) for m in metrics["method"]])


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def method_versions(methods: list[str]) -> dict[str, str]:
    """method -> the engine version (the cache key's) and its packages' versions."""
    from handwriting_pipeline.registry import ENGINES, engine_class

    out = {}
    for method in methods:
        parts, packages = [], ENSEMBLE_PACKAGES.get(method, ())
        if method in ENGINES:
            try:
                cls = engine_class(method)
                parts.append(f"engine v{cls.version}")
                packages = cls.packages
            except Exception:  # noqa: BLE001 - an engine whose optional dependency is missing
                pass
        parts += [f"{p} {v}" for p in packages if (v := _package_version(p))]
        out[method] = ", ".join(parts) or "-"
    return out


def provenance_markdown(forms: LabelledForms, methods: list[str], run_info: Mapping[str, Any] | None,
                        plots: Mapping[str, str] | None = None) -> list[str]:
    """Header lines: data source, date and run, versions of what ran, the plots."""
    run_info = run_info or {}
    source = forms.description or (f"the folder {forms.source}" if forms.source else "catalog entry `evaluation_forms`")
    when = run_info.get("started_utc") or datetime.now(timezone.utc).isoformat(timespec="seconds")
    lines = [f"- **Data**: {len(forms)} forms, {source}."]
    if forms.source and forms.source not in source:
        lines.append(f"- **Images read from**: `{forms.source}`")
    if run_info.get("form"):
        lines.append(f"- **Form**: `{run_info['form']}` (fields {', '.join(run_info.get('fields') or [])})")
    lines.append(f"- **Date**: {when} (UTC)" + (f", run `{run_info['run_id']}`" if run_info.get("run_id") else ""))
    if run_info.get("command"):
        lines.append(f"- **Command**: `{run_info['command']}`")
    versions = method_versions(methods)
    if versions:
        lines.append("- **Versions**: " + "; ".join(f"{m}: {v}" for m, v in versions.items()))
    run_id = run_info.get("run_id")
    if run_id:
        links = plots or {"accuracy": "accuracy.png", "accuracy per field": "accuracy_per_field.png"}
        lines.append("- **Plots**: " + ", ".join(f"[{label}](../../{name}/{run_id}/{name})" for label, name in links.items())
                     + f" (versioned next to this report: `data/08_reporting/<file>/{run_id}/<file>`)")
    return lines
