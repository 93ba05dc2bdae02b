"""Fine-tuning the field reader on form lines with PyTorch Lightning and a CTC loss.

* Lines are cut once (:func:`prepare_lines`), augmented on the fly
  (:class:`~handwriting_pipeline.training.augment.Augment`: affine, stroke width, blur, noise —
  never a vertical squeeze that would hide a letter's height).
* AdamW with warmup + cosine (``transformers.get_cosine_schedule_with_warmup``), gradient
  clipping, BatchNorm frozen.
* A line may carry a second label (the authors' second annotation, :mod:`.labels`): its loss is
  then the mean of the CTC losses over the two labels (:func:`ctc_loss_two_labels`); a batch
  without one trains exactly as before.
* Validation every epoch on held-out forms: ``val_cer`` (character error rate of greedy
  decoding, lower is better) and ``val_line_acc``; ``EarlyStopping(monitor="val_cer",
  mode="min")`` and ``ModelCheckpoint`` on the same metric; ``last.ckpt`` after every validation
  for ``resume``; the best weights are restored at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint
from rapidfuzz.distance import Levenshtein
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from handwriting_pipeline.config import ReaderTrainerSettings
from handwriting_pipeline.fieldreader.decode import greedy
from handwriting_pipeline.fieldreader.model import FieldReader
from handwriting_pipeline.fieldreader.text import ALPHABET, encode, line_targets
from handwriting_pipeline.fields.formspec import load_form
from handwriting_pipeline.forms.lines import LineSettings, batch_arrays, cut_lines, to_array
from handwriting_pipeline.training.augment import Augment
from handwriting_pipeline.training.lightning import resolve_hardware, stop_reason

logger = logging.getLogger(__name__)
MONITOR = "val_cer"


@dataclass
class Line:
    """One cut line with the text it should read."""

    image: np.ndarray  # grey, ink dark
    text: str
    key: str  # DATE or CSZ
    form: str
    second: str | None = None  # a second label that differs from ``text`` (fieldreader/labels.py)


def prepare_lines(forms: Iterable[tuple[str, Any, dict[str, str]]], settings: LineSettings,
                  progress: bool = True, second: Mapping[str, Mapping[str, str]] | None = None) -> list[Line]:
    """(file name, PIL image, labels) -> both lines of every form. ``second``: second labels
    by file name; a line whose second target differs from its first carries it as ``second``."""
    out, spec = [], load_form(settings.form)
    for name, image, fields in tqdm(list(forms), desc="cutting lines", disable=not progress, leave=False):
        targets = line_targets(fields, spec)
        others = line_targets(dict(second[name]), spec) if second and name in second else targets
        for key, line in cut_lines(image, settings).items():
            out.append(Line(line, targets[key], key, name, others[key] if others[key] != targets[key] else None))
    return out


class LineDataset(Dataset):
    def __init__(self, lines: list[Line], settings: LineSettings, augment: Augment | None = None, seed: int = 0,
                 alphabet: str = ALPHABET) -> None:
        self.lines, self.settings, self.augment, self.alphabet = lines, settings, augment, alphabet
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.lines)

    def width(self, i: int) -> int:
        return self.lines[i].image.shape[1]

    def __getitem__(self, i: int) -> tuple:
        """(array, targets, text), and the second label's targets when the line has one."""
        line = self.lines[i]
        image = self.augment(line.image, self.rng) if self.augment else line.image
        item = (to_array(image, self.settings), encode(line.text, self.alphabet), line.text)
        return item if line.second is None else (*item, encode(line.second, self.alphabet))


def _flat(targets: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.tensor([t for target in targets for t in target], dtype=torch.long),
            torch.tensor([len(t) for t in targets], dtype=torch.long))


def collate(items: list[tuple]) -> dict[str, Any]:
    """A batch; when a line in it has a second label, also ``second_targets`` /
    ``second_lengths`` (the first label for the lines without one)."""
    batch, frames = batch_arrays([i[0] for i in items])
    targets, lengths = _flat([i[1] for i in items])
    out = {"x": torch.from_numpy(batch), "frames": torch.from_numpy(frames), "targets": targets,
           "target_lengths": lengths, "texts": [i[2] for i in items]}
    if any(len(i) > 3 for i in items):
        out["second_targets"], out["second_lengths"] = _flat([i[3] if len(i) > 3 else i[1] for i in items])
    return out


def ctc_loss_two_labels(log_probs: torch.Tensor, frames: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor,
                        second_targets: torch.Tensor | None = None,
                        second_lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The batch's CTC loss (``log_probs``: [N, T, C]; mean over lines of the loss per target
    character); with second labels, the mean of the losses over the first and the second labels
    (per line: the mean of its two losses; equal to the one-label loss where the labels agree)."""
    def loss(flat: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return F.ctc_loss(log_probs.transpose(0, 1), flat, frames, length, blank=0, reduction="mean",
                          zero_infinity=True)

    first = loss(targets, lengths)
    return first if second_targets is None else (first + loss(second_targets, second_lengths)) / 2


class WidthBucketSampler(Sampler[list[int]]):
    """Batches of similar line widths (less padding), in random order each epoch."""

    def __init__(self, dataset: LineDataset, batch_size: int, seed: int = 0, shuffle: bool = True) -> None:
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        order = self.rng.permutation(len(self.dataset)) if self.shuffle else np.arange(len(self.dataset))
        chunk = self.batch_size * 16
        batches = []
        for start in range(0, len(order), chunk):
            part = sorted(order[start:start + chunk], key=self.dataset.width)
            batches += [part[i:i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        if self.shuffle:
            self.rng.shuffle(batches)
        return iter([[int(i) for i in b] for b in batches])

    def __len__(self) -> int:
        return -(-len(self.dataset) // self.batch_size)


class FieldReaderModule(pl.LightningModule):
    def __init__(self, reader: FieldReader, learning_rate: float, weight_decay: float, warmup_ratio: float) -> None:
        super().__init__()
        self.net, self.alphabet = reader.net, reader.config.alphabet
        self.learning_rate, self.weight_decay, self.warmup_ratio = learning_rate, weight_decay, warmup_ratio
        self.history: list[dict[str, Any]] = []
        self._val: list[tuple[str, str]] = []

    def ctc_loss(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        log_probs = torch.log_softmax(self.net(batch["x"], softmax=False), -1)
        frames = batch["frames"].clamp(max=log_probs.shape[1])
        loss = ctc_loss_two_labels(log_probs, frames, batch["targets"], batch["target_lengths"],
                                   batch.get("second_targets"), batch.get("second_lengths"))
        return loss, log_probs

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _ = self.ctc_loss(batch)
        self.log("train_loss", loss, prog_bar=True, batch_size=len(batch["texts"]))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val = []

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        loss, log_probs = self.ctc_loss(batch)
        self.log("val_loss", loss, batch_size=len(batch["texts"]))
        for lp, n, text in zip(log_probs.cpu().numpy(), batch["frames"].tolist(), batch["texts"]):
            self._val.append((greedy(lp[:n], self.alphabet), text))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        errors = sum(Levenshtein.distance(p, t) for p, t in self._val)
        cer = errors / max(1, sum(len(t) for _, t in self._val))
        acc = float(np.mean([p == t for p, t in self._val]))
        self.log("val_cer", cer, prog_bar=True)
        self.log("val_line_acc", acc, prog_bar=True)
        row = {"epoch": self.current_epoch, "step": self.global_step, "val_cer": cer, "val_line_acc": acc,
               "train_loss": float(self.trainer.callback_metrics.get("train_loss", float("nan"))),
               "val_loss": float(self.trainer.callback_metrics.get("val_loss", float("nan"))),
               "lr": self.trainer.optimizers[0].param_groups[0]["lr"] if self.trainer.optimizers else float("nan")}
        self.history.append(row)
        logger.info("[fieldreader] epoch %d: val_cer %.4f, lines exactly right %.1f %%", row["epoch"], cer, 100 * acc)

    def configure_optimizers(self) -> dict[str, Any]:
        from transformers import get_cosine_schedule_with_warmup

        params = [p for p in self.net.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.learning_rate, weight_decay=self.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        scheduler = get_cosine_schedule_with_warmup(optimizer, max(1, int(total * self.warmup_ratio)), total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def reader_loaders(reader: FieldReader, train_lines: list[Line], val_lines: list[Line],
                   settings: ReaderTrainerSettings) -> tuple[DataLoader, DataLoader | None]:
    """Training lines (augmented unless ``augment`` is 0) and held-out lines, batched by width."""
    seed, line_settings = int(settings.seed), reader.config.lines
    strength = float(settings.augment)
    alphabet = reader.config.alphabet
    train_data = LineDataset(train_lines, line_settings, Augment(strength) if strength > 0 else None, seed, alphabet)
    val_data = LineDataset(val_lines, line_settings, alphabet=alphabet)
    train_loader = DataLoader(train_data, batch_sampler=WidthBucketSampler(train_data, int(settings.batch_size), seed),
                              collate_fn=collate)
    val_loader = DataLoader(val_data, batch_sampler=WidthBucketSampler(val_data, 32, seed, shuffle=False),
                            collate_fn=collate) if val_lines else None
    return train_loader, val_loader


def reader_checkpoints(checkpoint_dir: str | Path | None,
                       resume: bool) -> tuple[list[Callback], ModelCheckpoint | None, str | None]:
    """(callbacks, the best-checkpoint callback, checkpoint to resume from); none without a
    folder. A fresh run (``resume`` false) deletes the folder's old checkpoints."""
    if checkpoint_dir is None:
        return [], None, None
    best = ModelCheckpoint(dirpath=checkpoint_dir, filename="best-{epoch}", monitor=MONITOR, mode="min", save_top_k=1)
    latest = ModelCheckpoint(dirpath=checkpoint_dir, filename="last", monitor=None, save_top_k=1,
                             enable_version_counter=False)
    last, ckpt_path = Path(checkpoint_dir) / "last.ckpt", None
    if resume and last.is_file():
        ckpt_path = str(last)
        logger.info("[fieldreader] resuming from %s", last)
    elif not resume:
        for old in Path(checkpoint_dir).glob("*.ckpt"):
            old.unlink()
    return [best, latest], best, ckpt_path


def reader_trainer(settings: ReaderTrainerSettings, callbacks: list[Callback], validate: bool, checkpointing: bool,
                   checkpoint_dir: str | Path | None) -> pl.Trainer:
    """The ``pl.Trainer``: epochs and wall-clock caps, clipping, hardware (32-bit on CPU)."""
    hardware = resolve_hardware(settings.accelerator, settings.devices, settings.precision)
    if hardware["precision"] != "32-true" and hardware["accelerator"] == "cpu":
        hardware["precision"] = "32-true"
    max_minutes = settings.max_minutes
    return pl.Trainer(max_epochs=int(settings.epochs), max_time={"minutes": float(max_minutes)} if max_minutes else None,
                      gradient_clip_val=float(settings.gradient_clip_val), num_sanity_val_steps=0,
                      limit_val_batches=1.0 if validate else 0, callbacks=callbacks,
                      logger=False, enable_checkpointing=checkpointing,
                      enable_progress_bar=bool(settings.progress_bar), enable_model_summary=False,
                      default_root_dir=str(checkpoint_dir or "."), **hardware)


def train_reader(reader: FieldReader, train_lines: list[Line], val_lines: list[Line],
                 settings: ReaderTrainerSettings | Mapping[str, Any], checkpoint_dir: str | Path | None = None,
                 resume: bool = False, callbacks: list[Callback] | None = None) -> tuple[list[dict[str, Any]], str]:
    """Fine-tune ``reader.net`` in place; returns (history rows, why training stopped).

    ``settings``: :class:`~handwriting_pipeline.config.ReaderTrainerSettings`
    (``train_fieldreader.trainer``, or that block as a dict).
    """
    settings = ReaderTrainerSettings.from_params(settings)
    pl.seed_everything(int(settings.seed), workers=True, verbose=False)
    train_loader, val_loader = reader_loaders(reader, train_lines, val_lines, settings)
    module = FieldReaderModule(reader, float(settings.learning_rate), float(settings.weight_decay),
                               float(settings.warmup_ratio))
    early = EarlyStopping(monitor=MONITOR, mode="min", patience=int(settings.patience),
                          min_delta=float(settings.min_delta), check_on_train_epoch_end=False)
    checkpoints, best, ckpt_path = reader_checkpoints(checkpoint_dir, resume)
    trainer = reader_trainer(settings, [early, *(callbacks or []), *checkpoints], val_loader is not None,
                             best is not None, checkpoint_dir)
    max_minutes = settings.max_minutes
    logger.info("[fieldreader] fine-tuning on %d lines (%d held out) for up to %s epochs%s", len(train_lines),
                len(val_lines), settings.epochs, f", {max_minutes} min" if max_minutes else "")
    reader.net.train()
    trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader, ckpt_path=ckpt_path)
    reason = stop_reason(trainer, early, int(settings.epochs), -1, max_minutes)
    if best is not None and best.best_model_path and Path(best.best_model_path).is_file():
        state = torch.load(best.best_model_path, map_location="cpu", weights_only=False)["state_dict"]
        module.load_state_dict(state)
        reason += f"; restored best checkpoint ({MONITOR}={float(best.best_model_score):.4f})"
    reader.net.cpu().eval()
    logger.info("[fieldreader] training stopped: %s", reason)
    return module.history, reason
