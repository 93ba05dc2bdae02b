"""The node of every training step: a registered trained engine's
:class:`~handwriting_pipeline.registry.Step`, run when ``train.models`` names the engine
(otherwise the step's ``skipped`` outputs: the saved model stays as it is). No model is named
here: the steps are registered in ``TRAINING`` (``pipeline.py``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from handwriting_pipeline.registry import Step, select_methods

logger = logging.getLogger(__name__)


def trains(method: str, models: Any, trainable: Sequence[str]) -> bool:
    """Whether ``train.models`` (``all``, or a list of the ``trainable`` engines) names ``method``."""
    return method in select_methods(models, list(trainable), "train.models", noun="trained engines")


def train_step(method: str, step: Step, trainable: Sequence[str]) -> Callable[..., Any]:
    """The node function of ``step`` of ``method``'s training (named after the step)."""

    def run(models: Any = None, **inputs: Any) -> Any:
        if step.skipped is not None and not trains(method, models, trainable):
            logger.info("train: %s not in train.models, not trained (%s)", method, step.name)
            return step.skip()
        return step.run(**inputs)

    run.__name__ = run.__qualname__ = step.name
    run.__doc__ = f"Training step '{step.name}' of the '{method}' engine (see TRAINING)."
    return run
