"""Lightning training of a Donut bundle: one call per stage (synthetic pretraining, fine-tuning).

* AdamW, linear warmup then cosine decay (per step), gradient clipping.
* Validation every epoch by greedy generation: ``val_ned`` (normalised edit distance of the
  four fields, 1 - CBA/100, lower is better), ``val_fla`` and ``val_cba`` (``metrics.py``).
* ``EarlyStopping`` and ``ModelCheckpoint`` both monitor ``val_ned`` with ``mode="min"``; the
  best checkpoint's weights are restored at the end of the stage; ``last.ckpt`` allows resuming.
* Seeded; accelerator/devices/precision from parameters (``auto``: GPU with bf16 when present).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from torch.utils.data import DataLoader, Dataset

from handwriting_pipeline.config import CtcSettings, EarlyStoppingSettings, StageSettings, TrainerSettings
from handwriting_pipeline.donut.data import collate
from handwriting_pipeline.donut.inference import generate_fields
from handwriting_pipeline.donut.model import DonutBundle, encoder_grid
from handwriting_pipeline.metrics import aggregate, score_form
from handwriting_pipeline.training.lightning import resolve_hardware, stop_reason

logger = logging.getLogger(__name__)

MONITOR = "val_ned"


class CTCHead(torch.nn.Module):
    """Auxiliary CTC loss on the encoder output (training only; not part of the saved model).

    A Donut trained from random weights first learns the label prior with its decoder and
    ignores the image: a random encoder gives the cross-attention little to hold on to. A CTC
    loss on the encoder's columns -- the form read left to right, field tokens included --
    trains the encoder to produce character features directly, which the decoder then learns
    to attend to (joint CTC/attention training, as in speech recognition). Each encoder column
    predicts ``expand`` CTC steps so that short grids still fit long labels.
    """

    def __init__(self, model: torch.nn.Module, vocab_size: int, blank_id: int, eos_id: int, expand: int = 3) -> None:
        super().__init__()
        self.rows = encoder_grid(model)[0]  # columns follow from the hidden states' length
        self.expand, self.vocab_size = int(expand), int(vocab_size)
        self.blank_id, self.eos_id = int(blank_id), int(eos_id)
        self.proj = torch.nn.Linear(model.config.encoder.hidden_size, self.vocab_size * self.expand)

    def forward(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """CTC loss (mean over the batch of per-token losses) of ``labels`` (-100 padded)."""
        batch = hidden.shape[0]
        columns = hidden.shape[1] // self.rows
        feats = hidden.reshape(batch, self.rows, columns, -1).mean(1)  # average each column
        steps = columns * self.expand
        logp = self.proj(feats).reshape(batch, steps, self.vocab_size).float().log_softmax(-1)
        targets = [row[(row >= 0) & (row != self.eos_id)] for row in labels]
        lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
        return F.ctc_loss(logp.transpose(0, 1), torch.cat(targets), torch.full((batch,), steps, dtype=torch.long),
                          lengths, blank=self.blank_id, zero_infinity=True)


def lr_factor(step: int, warmup: int, total: int, floor: float, clock: float = 0.0, warmup_ratio: float = 0.0) -> float:
    """Learning-rate multiplier: linear warmup for ``warmup`` steps, then cosine decay to ``floor``
    at step ``total``. ``clock`` (share of a wall-clock cap used, 0 = not time-based) moves both
    along with the time: warmup ends by ``warmup_ratio`` of the cap and the decay by its end."""
    if step < warmup and not (clock and warmup_ratio and clock >= warmup_ratio):
        return max((step + 1) / warmup, clock / warmup_ratio if clock and warmup_ratio else 0.0)
    progress = min(1.0, max(0, step - warmup) / max(1, total - warmup))
    if clock:
        progress = max(progress, min(1.0, (clock - warmup_ratio) / max(1e-9, 1 - warmup_ratio)))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


class DonutModule(pl.LightningModule):
    """LightningModule around a :class:`DonutBundle` (the model is trained in place)."""

    def __init__(self, bundle: DonutBundle, learning_rate: float = 1e-4, weight_decay: float = 0.01,
                 warmup_ratio: float = 0.1, min_lr_ratio: float = 0.05, val_num_beams: int = 1,
                 stage: str = "train", ctc_weight: float = 0.0, ctc_expand: int = 3, encoder_freeze_steps: int = 0,
                 encoder_lr_scale: float = 1.0, schedule_minutes: float | None = None) -> None:
        super().__init__()
        self.stage = stage
        self.history: list[dict[str, Any]] = []  # one row per validation: losses, metrics, lr, time
        self._start = time.monotonic()
        self.bundle = bundle
        self.model = bundle.model
        self.learning_rate, self.weight_decay = float(learning_rate), float(weight_decay)
        self.warmup_ratio, self.min_lr_ratio = float(warmup_ratio), float(min_lr_ratio)
        self.val_num_beams = int(val_num_beams)
        self._val_rows: list[dict[str, float]] = []
        self._val_losses: list[float] = []
        self._train_losses: list[float] = []
        self._ctc_losses: list[float] = []
        self.ctc_weight = float(ctc_weight)
        # a pretrained encoder (text_lines) has no auxiliary CTC head (it already reads characters)
        # and may stay frozen for the first steps, then train at a lower learning rate
        swin = getattr(self.model.config.encoder, "model_type", "") == "donut-swin"
        if not swin and self.ctc_weight > 0:
            logger.info("[%s] auxiliary CTC loss off: the %s encoder is pretrained", stage,
                        self.model.config.encoder.model_type)
            self.ctc_weight = 0.0
        self.encoder_freeze_steps, self.encoder_lr_scale = int(encoder_freeze_steps or 0), float(encoder_lr_scale)
        self.schedule_minutes = float(schedule_minutes) if schedule_minutes else None
        self._fit_start: float | None = None
        encoder = self.model.encoder  # text_lines: only the pretrained backbone (its new embeddings always train)
        pretrained = encoder.backbone_parameters() if hasattr(encoder, "backbone_parameters") else encoder.parameters()
        self._encoder_trainable = [p for p in pretrained if p.requires_grad]
        self._encoder_frozen: bool | None = None
        self.ctc: CTCHead | None = None
        if self.ctc_weight > 0:
            tokenizer = bundle.processor.tokenizer
            self.ctc = CTCHead(self.model, len(tokenizer), blank_id=tokenizer.pad_token_id,
                               eos_id=tokenizer.eos_token_id, expand=ctc_expand)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        out = self.model(pixel_values=batch["pixel_values"], labels=batch["labels"])
        size = len(batch["labels"])
        self.log("train_loss", out.loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=size)
        self._train_losses.append(float(out.loss.detach()))
        if self.ctc is None:
            return out.loss
        ctc = self.ctc(out.encoder_last_hidden_state, batch["labels"])
        self.log("train_ctc", ctc, prog_bar=True, on_step=True, on_epoch=False, batch_size=size)
        self._ctc_losses.append(float(ctc.detach()))
        return out.loss + self.ctc_weight * ctc

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        frozen = self.global_step < self.encoder_freeze_steps
        if not self._encoder_trainable:  # nothing to freeze (e.g. a frozen backbone on cached features)
            return
        if frozen != self._encoder_frozen:  # no gradient (and no update) for the encoder while frozen
            for param in self._encoder_trainable:
                param.requires_grad_(not frozen)
            if self._encoder_frozen is not None or frozen:
                logger.info("[%s] step %d: encoder %s", self.stage, self.global_step,
                            "frozen" if frozen else f"unfrozen (lr x {self.encoder_lr_scale:g})")
            self._encoder_frozen = frozen

    def on_train_start(self) -> None:
        self._fit_start = time.monotonic()

    def on_train_end(self) -> None:
        for param in self._encoder_trainable:
            param.requires_grad_(True)

    def on_train_epoch_start(self) -> None:
        self._train_losses, self._ctc_losses = [], []

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        out = self.model(pixel_values=batch["pixel_values"], labels=batch["labels"])
        self._val_losses.append(float(out.loss))
        form = self.bundle.preprocessing.spec
        preds, _, _ = generate_fields(self.model, self.bundle.processor, batch["pixel_values"],
                                      max_length=self.bundle.preprocessing.max_length, num_beams=self.val_num_beams,
                                      form=form)
        for gold, pred in zip(batch["fields"], preds):
            self._val_rows.append(score_form(gold, pred, form.keys))

    def on_validation_epoch_start(self) -> None:
        self._val_rows, self._val_losses = [], []

    def on_validation_epoch_end(self) -> None:
        import pandas as pd

        if not self._val_rows:
            return
        agg = aggregate(pd.DataFrame(self._val_rows), self.bundle.preprocessing.spec.keys)
        metrics = {
            MONITOR: (100.0 - agg["CBA"]) / 100.0,
            "val_fla": agg["FLA"],
            "val_cba": agg["CBA"],
            "val_loss": sum(self._val_losses) / len(self._val_losses),
        }
        for name, value in metrics.items():
            self.log(name, float(value), prog_bar=name in (MONITOR, "val_fla"))
        if self.trainer.sanity_checking:
            return
        losses = self._train_losses
        optimizers = self.trainer.optimizers
        row = {
            "stage": self.stage,
            "epoch": int(self.current_epoch),
            "step": int(self.global_step),
            "train_loss": sum(losses) / len(losses) if losses else float("nan"),
            "train_ctc": sum(self._ctc_losses) / len(self._ctc_losses) if self._ctc_losses else float("nan"),
            **{k: float(v) for k, v in metrics.items()},
            **{k: float(agg[k]) for k in agg if k.startswith("CBA_")},
            "lr": float(optimizers[0].param_groups[0]["lr"]) if optimizers else float("nan"),
            "elapsed_s": round(time.monotonic() - self._start, 1),
        }
        self.history.append(row)
        logger.info("[%s] epoch %d (step %d): train_loss %.4f val_loss %.4f %s %.4f FLA %.1f CBA %.1f", self.stage,
                    row["epoch"], row["step"], row["train_loss"], row["val_loss"], MONITOR, row[MONITOR],
                    row["val_fla"], row["val_cba"])

    def configure_optimizers(self) -> dict[str, Any]:
        encoder_ids = {id(p) for p in self._encoder_trainable}
        groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {(e, d): [] for e in (False, True)
                                                                     for d in (True, False)}
        for name, param in self.named_parameters():  # the model and the CTC head
            if not param.requires_grad and id(param) not in encoder_ids:
                continue
            decay = not (param.ndim < 2 or "norm" in name.lower())
            groups[(id(param) in encoder_ids and self.encoder_lr_scale != 1.0, decay)].append(param)
        # decoder (and whole-model) groups first: the history's "lr" is param_groups[0]
        optimizer = torch.optim.AdamW(
            [{"params": params, "weight_decay": self.weight_decay if decay else 0.0,
              "lr": self.learning_rate * (self.encoder_lr_scale if enc else 1.0)}
             for (enc, decay), params in groups.items() if params],
            lr=self.learning_rate,
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = max(1, int(total * self.warmup_ratio))
        floor = self.min_lr_ratio

        def schedule(step: int) -> float:
            clock = 0.0  # share of the wall-clock cap used (schedule_by_time)
            if self.schedule_minutes and self._fit_start is not None:
                clock = min(1.0, (time.monotonic() - self._fit_start) / (60 * self.schedule_minutes))
            return lr_factor(step, warmup, total, floor, clock, self.warmup_ratio)

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def stage_loaders(train_data: Dataset, val_data: Dataset | None, settings: StageSettings,
                  trainer: TrainerSettings) -> tuple[DataLoader, DataLoader | None]:
    """The stage's training loader (shuffled) and validation loader (None without validation forms)."""
    workers, batch_size = int(trainer.num_workers), int(settings.batch_size)
    train_loader = DataLoader(train_data, batch_size=batch_size, shuffle=True, num_workers=workers,
                              collate_fn=collate, drop_last=len(train_data) > batch_size,
                              persistent_workers=workers > 0)
    if val_data is None or not len(val_data):
        return train_loader, None
    val_loader = DataLoader(val_data, batch_size=int(trainer.val_batch_size), shuffle=False,
                            num_workers=workers, collate_fn=collate, persistent_workers=workers > 0)
    return train_loader, val_loader


def stage_module(bundle: DonutBundle, stage: str, settings: StageSettings, trainer: TrainerSettings) -> DonutModule:
    """The LightningModule of one stage (no CTC loss and no frozen encoder unless the settings
    say so; the train nodes fill them in from ``train.ctc`` and ``train.model.text_lines``)."""
    def given(value: Any, off: Any) -> Any:
        return off if value is None else value

    return DonutModule(bundle, learning_rate=settings.learning_rate, weight_decay=settings.weight_decay,
                       warmup_ratio=settings.warmup_ratio, min_lr_ratio=settings.min_lr_ratio,
                       val_num_beams=trainer.val_num_beams, stage=stage, ctc_weight=given(settings.ctc_weight, 0.0),
                       ctc_expand=given(settings.ctc_expand, CtcSettings.expand),
                       encoder_freeze_steps=given(settings.encoder_freeze_steps, 0),
                       encoder_lr_scale=given(settings.encoder_lr_scale, 1.0),
                       schedule_minutes=settings.max_minutes if settings.schedule_by_time else None)


def early_stopping(early: EarlyStoppingSettings) -> EarlyStopping:
    """``EarlyStopping`` on ``val_ned`` (the only monitor allowed: lower is better)."""
    if early.monitor != MONITOR:
        raise ValueError(f"train.early_stopping.monitor must be '{MONITOR}' (lower is better), got {early.monitor!r}")
    return EarlyStopping(monitor=early.monitor, mode="min", patience=int(early.patience),
                         min_delta=float(early.min_delta), check_on_train_epoch_end=False)


def checkpoint_callbacks(checkpoint_dir: str | Path | None, stage: str, monitor: str,
                         resume: bool) -> tuple[list[Callback], ModelCheckpoint | None, str | None]:
    """(callbacks, the best-checkpoint callback, checkpoint to resume from) for ``<dir>/<stage>``;
    no checkpoints without a folder. A fresh run (``resume`` false) deletes the stage's old ones."""
    if checkpoint_dir is None:
        return [], None, None
    stage_dir = Path(checkpoint_dir) / stage
    best = ModelCheckpoint(dirpath=stage_dir, filename="best-{epoch}-{step}", monitor=monitor, mode="min",
                           save_top_k=1, save_weights_only=False)
    # last.ckpt after every validation, so a crash or a resume loses nothing: Lightning's own
    # save_last only writes it when the best checkpoint changes (it would lag the best epoch)
    latest = ModelCheckpoint(dirpath=stage_dir, filename="last", monitor=None, save_top_k=1,
                             enable_version_counter=False, save_weights_only=False)
    ckpt_path = None
    if resume and (stage_dir / "last.ckpt").is_file():
        ckpt_path = str(stage_dir / "last.ckpt")
        logger.info("[%s] resuming from %s", stage, ckpt_path)
    elif not resume:
        for old in stage_dir.glob("*.ckpt"):
            old.unlink()  # a fresh run must not pick up an earlier run's best checkpoint
    return [best, latest], best, ckpt_path


def stage_trainer(settings: StageSettings, trainer: TrainerSettings, hardware: Mapping[str, Any],
                  callbacks: list[Callback], validate: bool, checkpointing: bool,
                  checkpoint_dir: str | Path | None) -> pl.Trainer:
    """The ``pl.Trainer`` of one stage: epochs, steps and wall-clock caps, hardware, logging."""
    max_minutes = settings.max_minutes
    return pl.Trainer(
        max_epochs=int(settings.epochs), max_steps=int(settings.max_steps or -1),
        max_time={"minutes": float(max_minutes)} if max_minutes else None,
        gradient_clip_val=float(trainer.gradient_clip_val),
        accumulate_grad_batches=int(settings.accumulate_grad_batches),
        val_check_interval=settings.val_check_interval,
        check_val_every_n_epoch=1,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if validate else 0,
        callbacks=callbacks, logger=False, enable_checkpointing=checkpointing,
        enable_progress_bar=bool(trainer.progress_bar),
        log_every_n_steps=int(trainer.log_every_n_steps),
        deterministic=False, enable_model_summary=False, default_root_dir=str(checkpoint_dir or "."),
        **hardware,
    )


def restore_best(module: pl.LightningModule, best: ModelCheckpoint | None, restore: bool, monitor: str) -> str:
    """Load the best checkpoint's weights into ``module`` when ``restore``; what was kept, in words
    (to append to the stop reason; "" without checkpoints)."""
    if restore and best is not None and best.best_model_path and Path(best.best_model_path).is_file():
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
        return f"; restored best checkpoint ({monitor}={float(best.best_model_score):.4f})"
    if best is not None and best.best_model_score is not None:
        return f"; kept the last weights (restore_best false; best {monitor}={float(best.best_model_score):.4f})"
    return ""


def _log_start(stage: str, n_train: int, n_val: int, settings: StageSettings, hardware: Mapping[str, Any]) -> None:
    max_steps, max_minutes = int(settings.max_steps or -1), settings.max_minutes
    logger.info("[%s] training on %d forms (%d validation) for up to %d epochs%s%s on %s/%s", stage, n_train, n_val,
                settings.epochs, f", {max_steps} steps" if max_steps > 0 else "",
                f", {max_minutes:.1f} min" if max_minutes else "", hardware["accelerator"], hardware["precision"])


def fit_stage(bundle: DonutBundle, train_data: Dataset, val_data: Dataset | None, stage: str,
              params: StageSettings | Mapping[str, Any], trainer_params: TrainerSettings | Mapping[str, Any],
              early_params: EarlyStoppingSettings | Mapping[str, Any], seed: int = 42,
              checkpoint_dir: str | Path | None = None, resume: bool = False,
              extra_callbacks: list[Callback] | None = None) -> tuple[list[dict[str, Any]], str]:
    """Train ``bundle.model`` in place for one stage; returns (history rows, stop reason).

    Args:
        params: the stage's :class:`~handwriting_pipeline.config.StageSettings` (or its block as
            a dict): epochs, batch_size, learning_rate, weight_decay, warmup_ratio, max_minutes,
            restore_best and the optional extras (auxiliary CTC loss, encoder freezing, max_steps,
            schedule_by_time ...).
        trainer_params: :class:`~handwriting_pipeline.config.TrainerSettings` (``train.trainer``).
        early_params: :class:`~handwriting_pipeline.config.EarlyStoppingSettings`: monitor (must
            be ``val_ned``, lower is better), patience, min_delta.
        checkpoint_dir: where ``<stage>/last.ckpt`` and the best checkpoint go; ``resume``
            continues from ``last.ckpt`` when it exists.
    """
    settings = StageSettings.from_params(params, f"train.{stage}")
    trainer_settings = TrainerSettings.from_params(trainer_params)
    pl.seed_everything(int(seed), workers=True, verbose=False)
    train_loader, val_loader = stage_loaders(train_data, val_data, settings, trainer_settings)
    module = stage_module(bundle, stage, settings, trainer_settings)
    early = early_stopping(EarlyStoppingSettings.from_params(early_params))
    checkpoints, best, ckpt_path = checkpoint_callbacks(checkpoint_dir, stage, early.monitor, resume)
    hardware = resolve_hardware(trainer_settings.accelerator, trainer_settings.devices, trainer_settings.precision)
    trainer = stage_trainer(settings, trainer_settings, hardware, [early, *checkpoints, *(extra_callbacks or [])],
                            val_loader is not None, best is not None, checkpoint_dir)
    _log_start(stage, len(train_data), len(val_data) if val_data is not None else 0, settings, hardware)
    bundle.model.train()
    trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader, ckpt_path=ckpt_path)
    reason = stop_reason(trainer, early, int(settings.epochs), int(settings.max_steps or -1), settings.max_minutes)
    reason += restore_best(module, best, bool(settings.restore_best), early.monitor)
    bundle.model.cpu().eval()
    logger.info("[%s] training stopped: %s", stage, reason)
    rows = [dict(row, stop_reason="") for row in module.history]
    if rows:
        rows[-1]["stop_reason"] = reason  # the last row says why the stage ended
    return rows, reason
