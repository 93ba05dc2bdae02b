"""Choose the forms to evaluate: the curated test split, or a folder the user names."""

from __future__ import annotations

import logging

from handwriting_pipeline.datasets.forms import LabelledForms

logger = logging.getLogger(__name__)


def select_evaluation_forms(test_forms: LabelledForms, external_forms: LabelledForms) -> LabelledForms:
    """The forms every method is evaluated on.

    Args:
        test_forms: the curated test split (latest version).
        external_forms: the folder named by ``evaluation.data_dir`` (empty when not given).

    Returns:
        ``external_forms`` when a folder was given, else ``test_forms``, with split "evaluation".

    Raises:
        ValueError: when neither holds a form, saying what to run or set.
    """
    if external_forms.missing is None:
        chosen, origin = external_forms, f"evaluation.data_dir ({external_forms.source})"
    else:
        chosen, origin = test_forms, f"the curated test split ({test_forms.source or 'data/05_model_input/test'})"
    if len(chosen) == 0:
        reason = chosen.missing or "it holds no forms"
        raise ValueError(
            f"Nothing to evaluate from {origin}: {reason}. Run the curation pipeline "
            "(kedro run --pipeline curation) or name a labelled folder: "
            "kedro run --pipeline evaluate --params=evaluation.data_dir=<folder with metadata.jsonl>"
        )
    labels = chosen.labels.assign(split="evaluation")
    logger.info("Evaluating %d forms from %s", len(labels), origin)
    return LabelledForms(labels, chosen.images, source=chosen.source)
