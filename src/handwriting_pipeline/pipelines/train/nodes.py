"""The node of every training step: a registered engine's
:class:`~handwriting_pipeline.engines.base.TrainingStep`, run when ``train.models`` names the
engine (otherwise the step's ``not_trained`` outputs: the saved model stays as it is). No model
is named here: the steps come from the registry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from handwriting_pipeline.engines.base import TrainingStep
from handwriting_pipeline.registry import engine_class, engine_methods, select_methods

logger = logging.getLogger(__name__)


def trains(method: str, models: Any) -> bool:
    """Whether ``train.models`` (``all``, or a list of registered trained engines) names ``method``."""
    trainable = [m for m in engine_methods() if engine_class(m).training_steps()]
    return method in select_methods(models, trainable, "train.models", noun="trained engines")


def train_step(method: str, step: TrainingStep) -> Callable[..., Any]:
    """The node function of ``step`` of ``method``'s training (named after the step)."""

    def run(models: Any = None, **inputs: Any) -> Any:
        if step.not_trained is not None and not trains(method, models):
            logger.info("train: %s not in train.models, not trained (%s)", method, step.name)
            return step.skip()
        return step.run(**inputs)

    run.__name__ = run.__qualname__ = step.name
    run.__doc__ = f"Training step '{step.name}' of the '{method}' engine (see its training_steps)."
    return run
