"""Choose the forms to evaluate: the curated test split, or a folder the user names; check them.

The chosen forms are handed on as a *reference* (``evaluation_forms``: labels + the folder the
images are read from, versioned per run), never as a shared copy, so two runs never read each
other's forms. Every image is opened once here: unreadable files, wrong sizes (by default the
active form's size: its spec's crop, else its page), full pages and blank or noise images are
rejected with a reason (kept in ``forms.problems`` for the report).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.evaluation import EvaluationSettings
from handwriting_pipeline.fields.formspec import HSF_FORM, FormSpec, load_form
from handwriting_pipeline.forms.ink import check_form_image

logger = logging.getLogger(__name__)

#: ``evaluation.input_checks.image_size`` that turns the size check off
ANY_SIZE = "any"


def expected_size(image_size: Any, spec: FormSpec) -> tuple[int, int] | None:
    """The size every evaluation image must have: ``image_size`` as ``[width, height]``; None
    (the default): the form's (its spec's crop, else its page, ``spec.page.area``); ``"any"``:
    no size check (None)."""
    if image_size is None:
        return tuple(int(v) for v in spec.page.area)
    if isinstance(image_size, str):
        if image_size.strip().lower() == ANY_SIZE:
            return None
        raise ValueError(f"evaluation.input_checks.image_size must be [width, height], null (the form's size) "
                         f"or '{ANY_SIZE}' (no size check), got {image_size!r}")
    size = tuple(int(v) for v in image_size)
    if len(size) != 2:
        raise ValueError(f"evaluation.input_checks.image_size must be [width, height], got {list(image_size)!r}")
    return size


def _validate(forms: LabelledForms, params: Mapping[str, Any] | EvaluationSettings, spec: FormSpec) -> LabelledForms:
    """Open every image; keep the usable ones, record the others in ``problems``."""
    checks = EvaluationSettings.from_params(params).input_checks
    if checks.enabled is False:
        return forms
    size = expected_size(checks.image_size, spec)
    lo, hi = float(checks.min_ink_share), float(checks.max_ink_share)
    find_file = getattr(forms.images, "path", None)
    keep, problems = [], []
    for name in forms.labels["file_name"]:
        where = find_file(name) if find_file else None
        label = str(where) if where is not None else name
        try:
            image = forms.images[name]
            image.load()
        except Exception as err:  # noqa: BLE001 - corrupt, zero-byte, not an image: reported, not read
            reason = f"unreadable image ({type(err).__name__}: {err})"
        else:
            reason = check_form_image(image, size, lo, hi)
        if reason is None:
            keep.append(name)
        else:
            logger.warning("evaluation input %s rejected: %s", label, reason)
            problems.append({"file_name": name, "path": label, "problem": reason})
    if not problems:
        return forms
    kept = forms.subset(keep)
    kept.problems = [*forms.problems, *problems]
    logger.warning("%d of %d evaluation forms rejected (listed in the report)", len(problems), len(forms))
    return kept


def _check_fields(forms: LabelledForms, spec: FormSpec, origin: str) -> None:
    """The forms are labelled with the form's fields (a ValueError saying what to do otherwise)."""
    missing = [k for k in spec.keys if k not in forms.labels.columns]
    if missing:
        raise ValueError(
            f"The forms from {origin} are labelled with the fields {', '.join(forms.keys)}, but form "
            f"'{spec.name}' has the fields {', '.join(spec.keys)} ({', '.join(missing)} missing). Evaluate forms of "
            f"that form (--params evaluation.data_dir=<folder>) or name their form (--params form=<name>).")


def select_evaluation_forms(test_forms: LabelledForms, external_forms: LabelledForms,
                            params: Mapping[str, Any] | EvaluationSettings | None = None,
                            form: str | None = None) -> LabelledForms:
    """The forms every method is evaluated on.

    Args:
        test_forms: the curated test split (latest version).
        external_forms: the folder named by ``evaluation.data_dir`` (empty when not given).
        params: ``params:evaluation`` (``input_checks``); None skips the image checks.
        form: ``params:form``, the form spec the forms are of (None: the HSF form): its fields
            are the labels kept, its size the images' (``input_checks.image_size: null``).

    Returns:
        ``external_forms`` when a folder was given, else ``test_forms``, with split "evaluation",
        the usable images only; rejected images and bad metadata lines are in ``.problems``.

    Raises:
        ValueError: when neither holds a usable form, or the forms lack the form's fields,
            saying what to run or set.
    """
    spec = load_form(form or HSF_FORM)
    if external_forms.missing is None:
        chosen, origin = external_forms, f"evaluation.data_dir ({external_forms.source})"
        description = f"the folder {Path(external_forms.source).resolve()}" if external_forms.source else ""
    else:
        chosen, origin = test_forms, f"the curated test split ({test_forms.source or 'data/05_model_input/test'})"
        description = (f"{test_forms.description}; curated test split at {test_forms.source}"
                       if test_forms.description else f"the curated test split at {test_forms.source}")
    if len(chosen) == 0:
        reason = chosen.missing or "it holds no forms"
        raise ValueError(
            f"Nothing to evaluate from {origin}: {reason}. Run the curation pipeline "
            "(kedro run --pipeline curation) or name a labelled folder: "
            "kedro run --pipeline evaluate --params=evaluation.data_dir=<folder with metadata.jsonl>"
        )
    _check_fields(chosen, spec, origin)
    labels = chosen.labels.assign(split="evaluation")
    selected = LabelledForms(labels, chosen.images, source=chosen.source, description=description,
                             problems=list(chosen.problems), keys=spec.keys)
    if params is not None:
        selected = _validate(selected, params, spec)
    if len(selected) == 0:
        raise ValueError(f"Nothing to evaluate from {origin}: all {len(chosen)} forms were rejected "
                         f"(first: {selected.problems[-1]['problem']}). Check the folder's images.")
    logger.info("Evaluating %d forms from %s", len(selected), origin)
    return selected
