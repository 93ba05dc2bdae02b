"""Lightning pieces both trained models use: the hardware choice and why a fit stopped."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping, Timer
from pytorch_lightning.callbacks.early_stopping import EarlyStoppingReason


def resolve_hardware(accelerator: str = "auto", devices: Any = "auto", precision: Any = "auto") -> dict[str, Any]:
    """Trainer hardware settings; ``auto`` precision is bf16-mixed on a GPU, 32-bit on CPU."""
    gpu = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    if accelerator == "auto":
        accelerator = "gpu" if gpu else "cpu"
    if precision in (None, "auto"):
        precision = "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"
    if devices in (None, "auto"):
        devices = 1
    return {"accelerator": accelerator, "devices": devices, "precision": precision}


def stop_reason(trainer: pl.Trainer, early: EarlyStopping, max_epochs: int, max_steps: int,
                max_minutes: float | None) -> str:
    """Why ``trainer.fit`` returned, in words."""
    if early.stopping_reason != EarlyStoppingReason.NOT_STOPPED:
        detail = f" ({early.stopping_reason_message.strip()})" if early.stopping_reason_message else ""
        return (f"early stopping: {early.monitor} did not improve by more than {abs(early.min_delta)} for "
                f"{early.patience} validations, best {float(early.best_score):.4f}, stopped in epoch "
                f"{early.stopped_epoch}{detail}")
    if trainer.interrupted:
        return "interrupted"
    if max_steps and max_steps > 0 and trainer.global_step >= max_steps:
        return f"max_steps reached ({max_steps})"
    timers = [cb for cb in trainer.callbacks if isinstance(cb, Timer)]
    expired = bool(max_minutes and timers and (timers[0].time_remaining("train") or 0) <= 0)
    if expired and trainer.global_step < trainer.estimated_stepping_batches:
        return f"wall-clock limit reached ({max_minutes:g} min, step {trainer.global_step})"
    if trainer.current_epoch >= max_epochs:
        return f"max_epochs reached ({max_epochs})"
    return "finished"
