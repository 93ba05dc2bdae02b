"""Nodes of the 'train' pipeline: tokenizer -> model -> synthetic pretraining -> fine-tuning
-> history. The heavy lifting lives in :mod:`handwriting_pipeline.donut`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from handwriting_pipeline.fields import KEYS

logger = logging.getLogger(__name__)

HISTORY_COLUMNS = ["stage", "epoch", "step", "train_loss", "train_ctc", "val_loss", "val_ned", "val_fla", "val_cba",
                   *[f"CBA_{k}" for k in KEYS], "lr", "elapsed_s", "stop_reason"]


def model_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The chosen preset's architecture, merged with the model-level settings.

    ``train.model.preset`` names an entry of ``train.model.presets`` (image_size, encoder,
    decoder, optional roi/max_length overrides).
    """
    model = params["model"]
    preset_name = model.get("preset", "tiny")
    presets = model.get("presets", {})
    if preset_name not in presets:
        raise ValueError(f"train.model.preset '{preset_name}' is not one of train.model.presets {sorted(presets)}")
    preset = presets[preset_name]
    encoder = model.get("encoder", "donut_swin")
    if encoder not in ("donut_swin", "text_lines"):
        raise ValueError(f"train.model.encoder must be 'donut_swin' or 'text_lines', got {encoder!r}")
    lines = dict(model.get("text_lines", {}) or {})
    return {
        "encoder_type": encoder,
        "fieldreader_dir": lines.get("fieldreader_dir"),
        "line_widths": list(lines.get("line_widths", [160, 400])),
        "line_augment": float(lines.get("augment", 1.0)),
        "init": model.get("init", "from_config"),
        "preset": preset_name,
        "pretrained_name_or_path": model.get("pretrained_name_or_path"),
        "image_size": list(preset.get("image_size", model.get("image_size", [96, 768]))),
        "roi": preset.get("roi", model.get("roi")),
        "max_length": int(preset.get("max_length", model.get("max_length", 96))),
        "position_channels": bool(preset.get("position_channels", model.get("position_channels", True))),
        "encoder": dict(preset.get("encoder", {})),
        "decoder": dict(preset.get("decoder", {})),
    }


def _label_texts(forms: Any) -> list[str]:
    return [v for r in forms.labels[list(KEYS)].to_dict("records") for v in r.values()]


def build_tokenizer(train_forms: Any, params: Mapping[str, Any]) -> Any:
    """Tokenizer for the model: trained on the training labels + synthetic text
    (``from_config``), or the pretrained model's own with the field tokens added."""
    settings = model_settings(params)
    if settings["init"] == "pretrained":
        from transformers import DonutProcessor

        from handwriting_pipeline.donut.tokenizer import add_field_tokens

        tokenizer = DonutProcessor.from_pretrained(settings["pretrained_name_or_path"]).tokenizer
        add_field_tokens(tokenizer)
        return tokenizer
    if settings["init"] != "from_config":
        raise ValueError(f"train.model.init must be 'from_config' or 'pretrained', got {settings['init']!r}")
    from handwriting_pipeline.donut.data import synthetic_texts
    from handwriting_pipeline.donut.tokenizer import train_tokenizer

    tok_params = params.get("tokenizer", {})
    pre = params.get("pretrain", {})
    texts = _label_texts(train_forms)
    texts += synthetic_texts(int(tok_params.get("synthetic_forms", 0)), int(pre.get("seed", 1000)))
    return train_tokenizer(texts, vocab_size=int(tok_params.get("vocab_size", 0)),
                           min_frequency=int(tok_params.get("min_frequency", 2)))


def build_model(tokenizer: Any, params: Mapping[str, Any]) -> Any:
    """A :class:`~handwriting_pipeline.donut.model.DonutBundle`: a random Donut sized by the
    preset (``from_config``), the pretrained text-line encoder under a random decoder
    (``train.model.encoder: text_lines``), or pretrained weights (``pretrained``: hub name or
    local folder)."""
    import torch

    from handwriting_pipeline.donut.model import build_from_config, build_pretrained

    settings = model_settings(params)
    torch.manual_seed(int(params.get("seed", 42)))
    if settings["encoder_type"] == "text_lines" and settings["init"] != "pretrained":
        from handwriting_pipeline.donut.model import build_text_lines_from_config
        from handwriting_pipeline.donut.text_lines import resolve_fieldreader_dir

        return build_text_lines_from_config(tokenizer, settings["decoder"], settings["max_length"],
                                            settings["line_widths"], resolve_fieldreader_dir(settings["fieldreader_dir"]),
                                            settings["line_augment"])
    if settings["init"] == "pretrained":
        # the pretrained processor's tokenizer, with the same field tokens as ``tokenizer``
        return build_pretrained(settings["pretrained_name_or_path"], settings["image_size"], settings["roi"],
                                settings["max_length"])
    return build_from_config(tokenizer, settings["image_size"], settings["roi"], settings["encoder"],
                             settings["decoder"], settings["max_length"], settings["position_channels"])


def _augmenter(params: Mapping[str, Any]):
    from handwriting_pipeline.donut.data import Augmenter

    return Augmenter(**dict(params.get("augment", {})))


def _validation_data(bundle: Any, validation_forms: Any, params: Mapping[str, Any], stage: str):
    from handwriting_pipeline.donut.data import DonutEncoder, FormsDataset
    from handwriting_pipeline.donut.feature_cache import maybe_cache

    if validation_forms is None or len(validation_forms) == 0:
        return None
    limit = params.get(stage, {}).get("val_max_forms", params.get("trainer", {}).get("val_max_forms"))
    if limit:
        validation_forms = validation_forms.subset(validation_forms.labels["file_name"].tolist()[: int(limit)])
    return maybe_cache(FormsDataset(validation_forms, DonutEncoder(bundle.processor, bundle.preprocessing)), bundle,
                       _cache_copies(params), "validation")


def _cache_copies(params: Mapping[str, Any]) -> int:
    """text_lines: augmented versions per form whose frozen-backbone features are cached (0 = off)."""
    return int((params.get("model", {}).get("text_lines", {}) or {}).get("cache_copies", 0) or 0)


def _fit(bundle: Any, train_data: Any, validation_forms: Any, stage: str, params: Mapping[str, Any]):
    from handwriting_pipeline.donut.training import fit_stage

    trainer = params.get("trainer", {})
    early = dict(params.get("early_stopping", {}))
    if params[stage].get("patience") is not None:  # a stage may set its own patience
        early["patience"] = params[stage]["patience"]
    ctc = params.get("ctc", {}) or {}
    stage_params = {"ctc_weight": ctc.get("weight", 0.0), "ctc_expand": ctc.get("expand", 3), **params[stage]}
    if getattr(bundle.preprocessing, "encoder", "donut_swin") == "text_lines":  # pretrained encoder: frozen first
        lines = params.get("model", {}).get("text_lines", {}) or {}
        stage_params.setdefault("encoder_freeze_steps", lines.get("freeze_steps", 0))
        stage_params.setdefault("encoder_lr_scale", lines.get("lr_scale", 1.0))
    rows, _ = fit_stage(bundle, train_data, _validation_data(bundle, validation_forms, params, stage), stage,
                        stage_params, trainer, early, seed=int(params.get("seed", 42)),
                        checkpoint_dir=trainer.get("checkpoint_dir"), resume=bool(trainer.get("resume", False)))
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def pretrain_on_synthetic(bundle: Any, validation_forms: Any, params: Mapping[str, Any]) -> tuple[Any, pd.DataFrame]:
    """Stage 1: train on ``train.pretrain.num_forms`` synthetic forms generated on the fly
    (seed ``train.pretrain.seed``, distinct from the curation's synthetic seed so no test form
    is seen), validating on the real validation forms. Skipped (logged) when disabled or when
    the generator is not importable."""
    from handwriting_pipeline.donut.data import DonutEncoder, SyntheticFormsDataset, synthetic_available

    pre = params.get("pretrain", {})
    if "donut" not in params["models"]:
        return bundle, pd.DataFrame(columns=HISTORY_COLUMNS)
    if not pre.get("enabled", True) or int(pre.get("num_forms", 0)) <= 0:
        logger.info("Synthetic pretraining disabled (train.pretrain.enabled / num_forms)")
        return bundle, pd.DataFrame(columns=HISTORY_COLUMNS)
    ok, why = synthetic_available()
    if not ok:
        logger.warning("Synthetic pretraining skipped: %s", why)
        return bundle, pd.DataFrame(columns=HISTORY_COLUMNS)
    encoder = DonutEncoder(bundle.processor, bundle.preprocessing, _augmenter(params))
    data = SyntheticFormsDataset(int(pre["num_forms"]), encoder, seed=int(pre.get("seed", 1000)),
                                 options=pre.get("generator", {}), augment=bool(pre.get("augment", False)))
    history = _fit(bundle, data, validation_forms, "pretrain", params)
    return bundle, history


def fine_tune(bundle: Any, train_forms: Any, validation_forms: Any, params: Mapping[str, Any]) -> tuple[Any, pd.DataFrame]:
    """Stage 2: train on the curated real training forms (augmented), validate every epoch;
    the returned model has the best validation ``val_ned`` weights."""
    from handwriting_pipeline.datasets.model import NotTrained
    from handwriting_pipeline.donut.data import DonutEncoder, FormsDataset
    from handwriting_pipeline.donut.feature_cache import maybe_cache

    if "donut" not in params["models"]:
        logger.info("train: donut not in train.models, not trained")
        return NotTrained("donut not in train.models"), pd.DataFrame(columns=HISTORY_COLUMNS)
    if train_forms is None or len(train_forms) == 0:
        raise ValueError("train_forms is empty: run the curation pipeline (or check its report) before training")
    encoder = DonutEncoder(bundle.processor, bundle.preprocessing, _augmenter(params))
    data = maybe_cache(FormsDataset(train_forms, encoder, train=True), bundle, _cache_copies(params), "train",
                       seed=int(params.get("seed", 42)))
    history = _fit(bundle, data, validation_forms, "finetune", params)
    return bundle, history


def training_report(pretrain_history: pd.DataFrame, finetune_history: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """Per-epoch history of both stages (one table) and its plot (losses, val_ned, FLA/CBA)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [f for f in (pretrain_history, finetune_history) if f is not None and not f.empty]
    history = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=HISTORY_COLUMNS)
    history = history.reindex(columns=HISTORY_COLUMNS)
    history.insert(0, "validation", range(1, len(history) + 1))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    x = history["validation"]
    for stage, style in (("pretrain", "--"), ("finetune", "-")):
        part = history[history["stage"] == stage]
        if part.empty:
            continue
        axes[0].plot(part["validation"], part["train_loss"], style, marker="o", label=f"{stage} train loss")
        axes[0].plot(part["validation"], part["val_loss"], style, marker="s", label=f"{stage} val loss")
        ctc = pd.to_numeric(part["train_ctc"], errors="coerce")
        if ctc.notna().any():  # the auxiliary CTC loss (train.ctc), when it was used
            axes[0].plot(part["validation"], ctc, style, marker="^", alpha=0.6, label=f"{stage} train CTC loss")
        axes[1].plot(part["validation"], part["val_ned"], style, marker="o", label=f"{stage} val_ned")
        axes[2].plot(part["validation"], part["val_fla"], style, marker="o", label=f"{stage} FLA")
        axes[2].plot(part["validation"], part["val_cba"], style, marker="s", label=f"{stage} CBA")
    axes[0].set_title("loss (nats/token)")
    axes[1].set_title("validation normalised edit distance (lower is better)")
    axes[2].set_title("validation FLA / CBA (%)")
    for ax in axes:
        ax.set_xlabel("validation (epoch, both stages)")
        if len(x):
            ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    if history.empty:
        axes[1].text(0.5, 0.5, "no training epochs recorded", ha="center", transform=axes[1].transAxes)
    fig.tight_layout()
    return history, fig
