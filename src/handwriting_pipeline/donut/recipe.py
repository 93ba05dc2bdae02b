"""The Donut training recipe from the ``train`` parameters: tokenizer -> model -> synthetic
pretraining -> fine-tuning -> history. The ``train`` pipeline's nodes and the benchmark scripts
both call these functions; the model, data and Lightning code are the other modules of
:mod:`handwriting_pipeline.donut`.

``form`` (``params:form``: a shipped form's name or a spec file's path; None: the HSF form) is the
form the model learns: its fields are the tokens it writes (:mod:`.grammar`), it is saved with
the model and its synthetic forms pretrain it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pandas as pd

from handwriting_pipeline.config import EarlyStoppingSettings, StageSettings, TrainSettings
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.fields.formspec import HSF_FORM, FormSpec, is_hsf_layout, load_form
from handwriting_pipeline.training.not_trained import NotTrained

logger = logging.getLogger(__name__)

#: image size of a preset that names none (the text_lines presets: their encoder sets its own input)
PRESET_IMAGE_SIZE = [96, 768]



def history_columns(keys: tuple[str, ...] = KEYS) -> list[str]:
    """The training history's columns for a form with ``keys`` (one CBA column per field)."""
    return ["stage", "epoch", "step", "train_loss", "train_ctc", "val_loss", "val_ned", "val_fla", "val_cba",
            *[f"CBA_{k}" for k in keys], "lr", "elapsed_s", "stop_reason"]


HISTORY_COLUMNS = history_columns()


def form_spec(form: str | None) -> FormSpec:
    """The form Donut learns (None: the HSF form)."""
    return load_form(form or HSF_FORM)


def _check_keys(forms: Any, spec: FormSpec) -> None:
    """Forms labelled with other fields than ``spec``'s stop training with both named."""
    keys = tuple(getattr(forms, "keys", spec.keys)) if forms is not None and len(forms) else spec.keys
    if keys != spec.keys:
        raise ValueError(f"Donut learns form '{spec.name}' (fields {', '.join(spec.keys)}) but the train forms are "
                         f"labelled with {', '.join(keys)}: train with --params form=<their form> (the train "
                         f"pipeline's Donut steps take it as their 'form' input, params:form)")


def model_settings(params: Mapping[str, Any] | TrainSettings) -> dict[str, Any]:
    """The chosen preset's architecture, merged with the model-level settings.

    ``train.model.preset`` names an entry of ``train.model.presets`` (image_size, encoder,
    decoder, optional roi/max_length/position_channels overrides; a preset without an image size,
    the text_lines decoders, gets :data:`PRESET_IMAGE_SIZE`).
    """
    model = TrainSettings.from_params(params).model
    if model.preset not in model.presets:
        raise ValueError(f"train.model.preset '{model.preset}' is not one of train.model.presets {sorted(model.presets)}")
    if model.encoder not in ("donut_swin", "text_lines"):
        raise ValueError(f"train.model.encoder must be 'donut_swin' or 'text_lines', got {model.encoder!r}")
    preset = model.presets[model.preset]
    return {
        "encoder_type": model.encoder,
        "fieldreader_dir": model.text_lines.fieldreader_dir,
        "line_widths": list(model.text_lines.line_widths),
        "line_augment": float(model.text_lines.augment),
        "init": model.init,
        "preset": model.preset,
        "pretrained_name_or_path": model.pretrained_name_or_path,
        "image_size": list(preset.get("image_size", PRESET_IMAGE_SIZE)),
        "roi": preset.get("roi", model.roi),
        "max_length": int(preset.get("max_length", model.max_length)),
        "position_channels": bool(preset.get("position_channels", model.position_channels)),
        "encoder": dict(preset.get("encoder", {})),
        "decoder": dict(preset.get("decoder", {})),
    }


def _label_texts(forms: Any, keys: tuple[str, ...]) -> list[str]:
    keys = [k for k in keys if k in forms.labels.columns]
    return [v for r in forms.labels[keys].to_dict("records") for v in r.values()]


def build_tokenizer(train_forms: Any, params: Mapping[str, Any], form: str | None = None) -> Any:
    """Tokenizer for the model: trained on the training labels + synthetic text
    (``from_config``), or the pretrained model's own with the form's field tokens added."""
    spec = form_spec(form)
    train = TrainSettings.from_params(params)
    settings = model_settings(train)
    if settings["init"] == "pretrained":
        from transformers import DonutProcessor

        from handwriting_pipeline.donut.tokenizer import add_field_tokens

        tokenizer = DonutProcessor.from_pretrained(settings["pretrained_name_or_path"]).tokenizer
        add_field_tokens(tokenizer, spec)
        return tokenizer
    if settings["init"] != "from_config":
        raise ValueError(f"train.model.init must be 'from_config' or 'pretrained', got {settings['init']!r}")
    from handwriting_pipeline.donut.data import synthetic_texts
    from handwriting_pipeline.donut.tokenizer import train_tokenizer

    texts = _label_texts(train_forms, spec.keys) + synthetic_texts(int(train.tokenizer.synthetic_forms),
                                                                   int(train.pretrain.seed), spec)
    return train_tokenizer(texts, vocab_size=int(train.tokenizer.vocab_size),
                           min_frequency=int(train.tokenizer.min_frequency), form=spec)


def build_model(tokenizer: Any, params: Mapping[str, Any], form: str | None = None) -> Any:
    """A :class:`~handwriting_pipeline.donut.model.DonutBundle` reading ``form``
    (:func:`~handwriting_pipeline.donut.model.use_form`)."""
    from handwriting_pipeline.donut.model import use_form

    return use_form(_new_bundle(tokenizer, params, form_spec(form)), form)


def _new_bundle(tokenizer: Any, params: Mapping[str, Any], spec: FormSpec) -> Any:
    """A random Donut sized by the preset (``from_config``), the pretrained text-line encoder
    under a random decoder (``train.model.encoder: text_lines``, the HSF layout's lines only), or
    pretrained weights (``pretrained``: hub name or local folder)."""
    import torch

    from handwriting_pipeline.donut.model import build_from_config, build_pretrained

    train = TrainSettings.from_params(params)
    settings = model_settings(train)
    if settings["encoder_type"] == "text_lines" and not is_hsf_layout(spec):
        raise ValueError(f"train.model.encoder: text_lines reads the '{HSF_FORM}' lines only, not form "
                         f"'{spec.name}': use train.model.encoder: donut_swin")
    torch.manual_seed(int(train.seed))
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


def _augmenter(train: TrainSettings):
    from handwriting_pipeline.donut.data import Augmenter

    return Augmenter(**train.augment.to_dict())


def _validation_data(bundle: Any, holdout_forms: Any, train: TrainSettings, stage: StageSettings):
    from handwriting_pipeline.donut.data import DonutEncoder, FormsDataset
    from handwriting_pipeline.donut.feature_cache import maybe_cache

    if holdout_forms is None or len(holdout_forms) == 0:
        return None
    limit = stage.val_max_forms if stage.val_max_forms is not None else train.trainer.val_max_forms
    if limit:
        holdout_forms = holdout_forms.subset(holdout_forms.labels["file_name"].tolist()[: int(limit)])
    return maybe_cache(FormsDataset(holdout_forms, DonutEncoder(bundle.processor, bundle.preprocessing)), bundle,
                       train.model.text_lines.cache_copies, "validation")


def stage_settings(train: TrainSettings, name: str, encoder: str) -> tuple[StageSettings, EarlyStoppingSettings]:
    """A stage's settings with what it leaves open filled in: the CTC loss from ``train.ctc``,
    the encoder freezing from ``train.model.text_lines`` (a text_lines encoder only) and the
    patience from ``train.early_stopping``."""
    stage = train.stage(name)

    def pick(own: Any, shared: Any) -> Any:
        return shared if own is None else own

    lines = encoder == "text_lines"  # pretrained encoder: frozen first, then a lower learning rate
    stage = replace(stage, ctc_weight=pick(stage.ctc_weight, train.ctc.weight),
                    ctc_expand=pick(stage.ctc_expand, train.ctc.expand),
                    encoder_freeze_steps=pick(stage.encoder_freeze_steps, train.model.text_lines.freeze_steps if lines else None),
                    encoder_lr_scale=pick(stage.encoder_lr_scale, train.model.text_lines.lr_scale if lines else None))
    early = replace(train.early_stopping, patience=pick(stage.patience, train.early_stopping.patience))
    return stage, early


def _fit(bundle: Any, train_data: Any, holdout_forms: Any, name: str, train: TrainSettings) -> pd.DataFrame:
    from handwriting_pipeline.donut.training import fit_stage

    _check_keys(holdout_forms, bundle.preprocessing.spec)
    stage, early = stage_settings(train, name, getattr(bundle.preprocessing, "encoder", "donut_swin"))
    rows, _ = fit_stage(bundle, train_data, _validation_data(bundle, holdout_forms, train, stage), name,
                        stage, train.trainer, early, seed=int(train.seed),
                        checkpoint_dir=train.trainer.checkpoint_dir, resume=bool(train.trainer.resume))
    return pd.DataFrame(rows, columns=history_columns(bundle.preprocessing.spec.keys))


def _synthetic_skipped(train: TrainSettings) -> str | None:
    """Why synthetic pretraining does not run (None: it runs), logged."""
    from handwriting_pipeline.donut.data import synthetic_available

    if not train.pretrain.enabled or int(train.pretrain.num_forms) <= 0:
        logger.info("Synthetic pretraining disabled (train.pretrain.enabled / num_forms)")
        return "disabled"
    ok, why = synthetic_available()
    if not ok:
        logger.warning("Synthetic pretraining skipped: %s", why)
        return why or "synthetic generator not available"
    return None


def split_forms(train_forms: Any, split: Mapping[str, list[str]]) -> tuple[Any, Any]:
    """The train forms Donut learns from and the held-out train forms it is checked on (early
    stopping, best checkpoint): the field reader's split (``fieldreader_split``), so both models
    hold out the same forms and the validation forms choose nothing."""
    return train_forms.subset(list(split["fit"])), train_forms.subset(list(split["holdout"]))


def pretrain_on_synthetic(bundle: Any, holdout_forms: Any, params: Mapping[str, Any]) -> tuple[Any, pd.DataFrame]:
    """Stage 1: train on ``train.pretrain.num_forms`` synthetic forms generated on the fly
    (seed ``train.pretrain.seed``, distinct from the curation's synthetic seed so no test form
    is seen), checked on the real held-out train forms. Skipped (logged) when disabled or when
    the generator is not importable."""
    from handwriting_pipeline.donut.data import DonutEncoder, SyntheticFormsDataset

    train = TrainSettings.from_params(params)
    if _synthetic_skipped(train):
        return bundle, pd.DataFrame(columns=history_columns(bundle.preprocessing.spec.keys))
    pre = train.pretrain
    encoder = DonutEncoder(bundle.processor, bundle.preprocessing, _augmenter(train))
    data = SyntheticFormsDataset(int(pre.num_forms), encoder, seed=int(pre.seed), options=pre.generator,
                                 augment=bool(pre.augment))
    return bundle, _fit(bundle, data, holdout_forms, "pretrain", train)


def fine_tune(bundle: Any, train_forms: Any, holdout_forms: Any, params: Mapping[str, Any]) -> tuple[Any, pd.DataFrame]:
    """Stage 2: train on the real training forms (augmented), check every epoch on the held-out
    train forms (:func:`split_forms`); the returned model has the best held-out ``val_ned``
    weights. The validation split is only reported on (evaluate pipeline, benchmarks)."""
    from handwriting_pipeline.donut.data import DonutEncoder, FormsDataset
    from handwriting_pipeline.donut.feature_cache import maybe_cache

    train = TrainSettings.from_params(params)
    if train_forms is None or len(train_forms) == 0:
        raise ValueError("train_forms is empty: run the curation pipeline (or check its report) before training")
    _check_keys(train_forms, bundle.preprocessing.spec)
    encoder = DonutEncoder(bundle.processor, bundle.preprocessing, _augmenter(train))
    data = maybe_cache(FormsDataset(train_forms, encoder, train=True), bundle, train.model.text_lines.cache_copies,
                       "train", seed=int(train.seed))
    history = _fit(bundle, data, holdout_forms, "finetune", train)
    return bundle, history


def not_trained() -> tuple[NotTrained, pd.DataFrame]:
    """What the training stages give when ``train.models`` leaves Donut out: no model (the saved
    one stays) and an empty history."""
    return NotTrained("donut not in train.models"), pd.DataFrame(columns=HISTORY_COLUMNS)


def _history_keys(frames: list[pd.DataFrame]) -> tuple[str, ...]:
    """The fields of the histories' per-field CBA columns (the HSF form's when there is none)."""
    keys = [c[len("CBA_"):] for f in frames for c in f.columns if str(c).startswith("CBA_")]
    return tuple(dict.fromkeys(keys)) or KEYS


def training_report(pretrain_history: pd.DataFrame, finetune_history: pd.DataFrame) -> tuple[pd.DataFrame, Any]:
    """Per-epoch history of both stages (one table) and its plot (losses, val_ned, FLA/CBA)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = [f for f in (pretrain_history, finetune_history) if f is not None and not f.empty]
    columns = history_columns(_history_keys(frames))
    history = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    history = history.reindex(columns=columns)
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
