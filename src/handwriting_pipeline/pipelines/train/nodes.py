"""The node of every training step: a registered trained engine's
:class:`~handwriting_pipeline.registry.Step`, run when ``train.models`` names the engine
(otherwise the step's ``skipped`` outputs: the saved model stays as it is). No model is named
here: the steps are registered in ``TRAINING`` (``pipeline.py``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from handwriting_pipeline.fields.formspec import HSF_FORM, load_form
from handwriting_pipeline.registry import Step, engine_class, select_methods

logger = logging.getLogger(__name__)


def trains(method: str, models: Any, trainable: Sequence[str]) -> bool:
    """Whether ``train.models`` (``all``, or a list of the ``trainable`` engines) names ``method``."""
    return method in select_methods(models, list(trainable), "train.models", noun="trained engines")


def train_step(method: str, step: Step, trainable: Sequence[str]) -> Callable[..., Any]:
    """The node function of ``step`` of ``method``'s training (named after the step)."""

    def run(models: Any = None, run_form: str | None = None, **inputs: Any) -> Any:
        if step.skipped is not None and not trains(method, models, trainable):
            logger.info("train: %s not in train.models, not trained (%s)", method, step.name)
            return step.skip()
        form = load_form(run_form or HSF_FORM)
        if step.skipped is not None and not engine_class(method).learns_form(form):
            logger.info("train: %s learns the '%s' layout only, not form '%s'; not trained (%s)",
                        method, HSF_FORM, form.name, step.name)
            return step.skip()
        return step.run(**inputs)

    run.__name__ = run.__qualname__ = step.name
    run.__doc__ = f"Training step '{step.name}' of the '{method}' engine (see TRAINING)."
    return run


def add_engine_calibrations(reader: Any, train_forms: Any, split: dict[str, list[str]], extract_params: Any,
                            form: str | None, cache: Any) -> Any:
    """``reader`` with the calibration of the engines that read its form untrained (RapidOCR,
    Tesseract), fitted on its held-out forms, in ``summary["engine_calibrations"]``; on the HSF
    form (whose calibrations ship in ``ensemble.vote``) or untrained, ``reader`` as it is
    (:func:`~handwriting_pipeline.methods.form_engine_calibrations`)."""
    from handwriting_pipeline.fieldreader.model import ENGINE_CALIBRATIONS
    from handwriting_pipeline.methods import form_engine_calibrations

    if not hasattr(reader, "config"):
        return reader
    found = form_engine_calibrations(train_forms, split["holdout"], extract_params, load_form(form or HSF_FORM), cache)
    if found:
        reader.config.summary[ENGINE_CALIBRATIONS] = found
    return reader


#: the model the field reader ensemble engine reads (written by the fieldreader steps)
ENSEMBLE_MODEL = "fieldreader_ensemble_model"


def add_ensemble_guarantees(reader: Any, oof_predictions: Any, train_forms: Any, extract_params: Any,
                            ensemble_params: Any, digitize_params: Any, cache: Any) -> Any:
    """Digitize's guarantee of the cascade the field reader ensemble leads, fitted on the
    out-of-fold forms and saved with the ensemble (:func:`~handwriting_pipeline.digitize.guarantee.add_guarantees`)."""
    from handwriting_pipeline.digitize.guarantee import add_guarantees
    from handwriting_pipeline.registry import engine_class, engine_methods

    [fast] = [m for m in engine_methods() if ENSEMBLE_MODEL in engine_class(m).catalog_inputs.values()]
    return add_guarantees(reader, fast, oof_predictions, train_forms, extract_params, ensemble_params,
                          digitize_params, cache)
