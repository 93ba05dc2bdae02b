"""Nodes of the 'train' pipeline (Donut): tokenizer -> model -> synthetic pretraining ->
fine-tuning -> history. The recipe is :mod:`handwriting_pipeline.donut.recipe`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from handwriting_pipeline.donut import recipe


def build_tokenizer(train_forms: Any, params: Mapping[str, Any]) -> Any:
    """The tokenizer, trained on the training labels + synthetic text, or the pretrained one's."""
    return recipe.build_tokenizer(train_forms, params)


def build_model(tokenizer: Any, params: Mapping[str, Any]) -> Any:
    """A :class:`~handwriting_pipeline.donut.model.DonutBundle` sized by ``train.model``."""
    return recipe.build_model(tokenizer, params)


def pretrain_on_synthetic(bundle: Any, validation_forms: Any, params: Mapping[str, Any]) -> tuple[Any, pd.DataFrame]:
    """Stage 1: synthetic forms generated on the fly (skipped, logged, when disabled)."""
    return recipe.pretrain_on_synthetic(bundle, validation_forms, params)


def fine_tune(bundle: Any, train_forms: Any, validation_forms: Any, params: Mapping[str, Any]) -> tuple[Any, pd.DataFrame]:
    """Stage 2: the curated training forms; the best ``val_ned`` weights."""
    return recipe.fine_tune(bundle, train_forms, validation_forms, params)


def training_report(pretrain_history: pd.DataFrame, finetune_history: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """Per-epoch history of both stages and its plot."""
    return recipe.training_report(pretrain_history, finetune_history)
