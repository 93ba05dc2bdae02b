"""Train the text-line Donut's decoder on cached backbone features (the backbone stays frozen).

The text-line encoder's backbone is the field reader, already fine-tuned on these forms. On a
CPU nearly all of a training step is that backbone (forward and backward); kept frozen, its
output for a form never changes, so it is computed once per form — for the plain lines and for
``copies`` augmented versions of them (the field reader's line augmentation) — and the decoder
(with the encoder's small projection: norms, line and position embeddings) trains on those
tensors for as many epochs as the time allows.

:class:`CachedFeatures` is a torch ``Dataset`` with the same items as
:class:`~handwriting_pipeline.donut.data.FormsDataset`, except that ``pixel_values`` holds the
``[frames, hidden]`` backbone features, which :class:`~.text_lines.TextLinesEncoder` accepts in
place of images: the Lightning module, the collate, validation generation and checkpoints work
unchanged. Turned on by ``train.model.text_lines.cache_copies`` (0 = off: the backbone trains).
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from handwriting_pipeline.fields import clean_fields

logger = logging.getLogger(__name__)


@torch.no_grad()
def backbone_features(encoder: Any, pixels: list[torch.Tensor]) -> list[torch.Tensor]:
    """The frozen backbone's ``[frames, hidden]`` output (float16) for each form's line pixels."""
    was_training = encoder.training
    encoder.eval()
    out = list(encoder.backbone_features(torch.stack(pixels)).to(torch.float16))
    encoder.train(was_training)
    return out


def line_versions(image: Any, prep: Any, copies: int, rng: np.random.Generator) -> list[torch.Tensor]:
    """A form's encoder input: the plain lines, then ``copies`` augmented versions (the lines are
    cut once; each copy gets the field reader's line augmentation)."""
    from handwriting_pipeline.donut.text_lines import line_settings, lines_to_pixels
    from handwriting_pipeline.forms.lines import cut_lines
    from handwriting_pipeline.training.augment import Augment

    settings = line_settings(prep.lines)
    lines = cut_lines(image, settings)
    augment = Augment(prep.line_augment) if prep.line_augment > 0 else None
    plain = lines_to_pixels(lines, settings, prep.line_widths)
    return [plain] + [lines_to_pixels(lines, settings, prep.line_widths, augment, rng) for _ in range(copies)]


class CachedFeatures(Dataset):
    """Real forms as cached backbone features: ``copies + 1`` versions of each form (the plain
    lines first, then augmented ones); a training item picks one version at random.

    Args:
        forms_dataset: a :class:`~handwriting_pipeline.donut.data.FormsDataset` (names, images,
            fields, its encoder's labels and preprocessing; ``train`` picks random versions).
        encoder: the text-line encoder whose frozen backbone computes the features.
        copies: augmented versions per form (training data only; validation keeps the plain lines).
        chunk: forms whose pixels are held at once (memory stays small).
    """

    def __init__(self, forms_dataset: Any, encoder: Any, copies: int = 0, label: str = "forms", seed: int = 0,
                 chunk: int = 32) -> None:
        data = forms_dataset
        self.names, self.train = list(data.names), bool(data.train)
        self.copies = int(copies) if self.train else 0
        prep, started = data.encoder.prep, time.monotonic()
        self.items = [{"labels": data.encoder.label_ids(f), "fields": clean_fields(f), "file_name": n}
                      for n, f in zip(self.names, data.fields)]
        self.features: list[list[torch.Tensor]] = []
        for first in tqdm(range(0, len(self.names), chunk), desc=f"backbone features ({label})", unit="chunk",
                          leave=False):
            group = range(first, min(first + chunk, len(self.names)))
            pixels = [line_versions(data.images[self.names[i]], prep, self.copies, np.random.default_rng([seed, i]))
                      for i in group]
            flat = backbone_features(encoder, [p for versions in pixels for p in versions])
            self.features.extend(flat[j * (self.copies + 1):(j + 1) * (self.copies + 1)] for j in range(len(group)))
        logger.info("Cached frozen-backbone features of %d %s x %d versions in %.1f s", len(self.names), label,
                    self.copies + 1, time.monotonic() - started)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict[str, Any]:
        version = random.randrange(self.copies + 1) if self.train else 0  # seeded by Lightning
        return {**self.items[index], "pixel_values": self.features[index][version].float()}


def freeze_backbone(encoder: Any) -> None:
    """No gradient for the pretrained part (backbone and CTC head): its cached output stays valid."""
    for param in encoder.backbone_parameters():
        param.requires_grad_(False)


def maybe_cache(dataset: Any, bundle: Any, copies: int, label: str = "forms", seed: int = 0) -> Any:
    """``dataset`` as :class:`CachedFeatures` (the backbone frozen) when the model has the
    text-line encoder and ``copies`` > 0 (training data: that many augmented versions per form;
    validation data: the plain lines), else unchanged."""
    from handwriting_pipeline.donut.text_lines import is_text_lines

    if dataset is None or int(copies or 0) <= 0 or not is_text_lines(bundle.model):
        return dataset
    freeze_backbone(bundle.model.encoder)
    return CachedFeatures(dataset, bundle.model.encoder, int(copies), label, seed=seed)


__all__ = ["CachedFeatures", "backbone_features", "freeze_backbone", "line_versions", "maybe_cache"]
