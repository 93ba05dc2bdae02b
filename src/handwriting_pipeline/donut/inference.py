"""Donut inference: images -> the form's fields, batched, never raising for a bad image.

The form (its task token and field tokens) is the one the model was trained on, saved with it
(``Preprocessing.form``; the HSF form for older models)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image, ImageStat

from handwriting_pipeline.donut.grammar import task_token, token2json
from handwriting_pipeline.donut.model import DonutBundle
from handwriting_pipeline.fields import KEYS, NONE, empty_fields
from handwriting_pipeline.fields.formspec import FormSpec

logger = logging.getLogger(__name__)


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _clean_sequence(text: str, tokenizer: Any, form: FormSpec | None = None) -> str:
    for token in (tokenizer.eos_token, tokenizer.pad_token, tokenizer.bos_token, task_token(form)):
        if token:
            text = text.replace(token, "")
    return text.strip()


def _field_confidences(token_ids: list[int], logprobs: list[float], tokenizer: Any,
                       keys: tuple[str, ...]) -> dict[str, float]:
    """Geometric-mean token probability of each field's value (closing tag included)."""
    open_ids = {tokenizer.convert_tokens_to_ids(f"<s_{k}>"): k for k in keys}
    close_ids = {tokenizer.convert_tokens_to_ids(f"</s_{k}>"): k for k in keys}
    sums: dict[str, list[float]] = {}
    current = None
    for tid, lp in zip(token_ids, logprobs):
        if tid in open_ids:
            current = open_ids[tid]
            sums[current] = [lp]
        elif current is not None:
            sums[current].append(lp)
            if tid in close_ids:
                current = None
    return {k: (math.exp(sum(v) / len(v)) if (v := sums.get(k)) else math.nan) for k in keys}


@torch.no_grad()
def generate_fields(model: Any, processor: Any, pixel_values: torch.Tensor, max_length: int = 96,
                    num_beams: int = 1, form: FormSpec | None = None,
                    ) -> tuple[list[dict[str, str]], list[str], list[dict[str, float]]]:
    """Greedy (or beam) generation for a batch of pixel values.

    Returns ``form``'s fields (None: the HSF form's; anything missing or malformed is "None"),
    the raw sequences and per-field confidences (0-1).
    """
    keys = form.keys if form is not None else KEYS
    tokenizer = processor.tokenizer
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    start = torch.full((pixel_values.shape[0], 1), model.config.decoder_start_token_id, dtype=torch.long, device=device)
    out = model.generate(
        pixel_values=pixel_values.to(device), decoder_input_ids=start, max_length=int(max_length),
        num_beams=int(num_beams), do_sample=False, early_stopping=True if num_beams > 1 else False,
        return_dict_in_generate=True, output_scores=True,
    )
    if was_training:
        model.train()
    sequences = out.sequences
    try:
        scores = model.compute_transition_scores(sequences, out.scores, getattr(out, "beam_indices", None),
                                                 normalize_logits=num_beams == 1)
        scores = scores.float().cpu().tolist()
    except Exception:  # noqa: BLE001 - confidences are a bonus, never a failure
        scores = [[math.nan] * (sequences.shape[1] - 1) for _ in range(sequences.shape[0])]
    texts = tokenizer.batch_decode(sequences, skip_special_tokens=False)
    fields, raws, confs = [], [], []
    for row, text, logprobs in zip(sequences.cpu().tolist(), texts, scores):
        raw = _clean_sequence(text, tokenizer, form)
        raws.append(raw)
        fields.append(token2json(raw, processor=processor, form=form))
        confs.append(_field_confidences(row[1:], logprobs, tokenizer, keys))
    return fields, raws, confs


def blank_reason(image: Image.Image) -> str | None:
    """Why an image cannot hold handwriting (uniform pixels), or None when it may."""
    lo, hi = image.convert("L").getextrema()
    if hi - lo < 16:
        return f"blank image (all pixels {lo}-{hi})"
    stat = ImageStat.Stat(image.convert("L"))
    if stat.stddev[0] < 1.0:
        return "blank image (no contrast)"
    return None


def _nan(keys: tuple[str, ...]) -> dict[str, float]:
    return dict.fromkeys(keys, math.nan)


@dataclass
class Prediction:
    """One form's answer: fields ("None" when missing), confidences, raw sequence, time, error."""

    fields: dict[str, str] = field(default_factory=empty_fields)
    confidence: dict[str, float] = field(default_factory=lambda: _nan(KEYS))
    raw: str = ""
    seconds: float = 0.0
    error: str | None = None

    @classmethod
    def empty(cls, keys: tuple[str, ...]) -> "Prediction":
        """No answer yet for a form with ``keys``: every field "None", no confidence."""
        return cls(fields=dict.fromkeys(keys, NONE), confidence=_nan(keys))


class DonutPredictor:
    """Batched inference with a :class:`DonutBundle`.

    Args:
        bundle: model, processor and preprocessing.
        batch_size: forms per ``generate`` call.
        num_beams: 1 = greedy.
        max_length: generation limit (defaults to the bundle's).
        device: ``auto`` (CUDA when present), ``cpu``, ``cuda``...
    """

    def __init__(self, bundle: DonutBundle, batch_size: int = 8, num_beams: int = 1, max_length: int | None = None,
                 device: str = "auto") -> None:
        self.bundle = bundle
        self.batch_size, self.num_beams = max(1, int(batch_size)), max(1, int(num_beams))
        self.max_length = int(max_length or bundle.preprocessing.max_length)
        self.device = resolve_device(device)
        self.model = bundle.model.to(self.device).eval()
        self.form = bundle.preprocessing.spec

    def _prepare(self, image: Any) -> tuple[torch.Tensor | None, str | None]:
        try:
            if not isinstance(image, Image.Image):
                raise TypeError(f"not a PIL image ({type(image).__name__})")
            image.load()
            reason = blank_reason(image)
            if reason:
                return None, reason
            pixels = self.bundle.preprocessing.pixels(image, self.bundle.processor.image_processor)
            return pixels, None
        except Exception as err:  # noqa: BLE001 - a bad image gives "None" values, never a crash
            return None, f"unreadable image: {type(err).__name__}: {err}"

    def predict(self, images: Sequence[Any]) -> list[Prediction]:
        """One :class:`Prediction` per image, in order; seconds = the batch's time per form."""
        keys = self.form.keys
        results = [Prediction.empty(keys) for _ in images]
        ready: list[tuple[int, torch.Tensor]] = []
        for i, image in enumerate(images):
            start = time.perf_counter()
            pixels, error = self._prepare(image)
            results[i].seconds = time.perf_counter() - start
            if error is not None:
                results[i].error = error
            else:
                ready.append((i, pixels))
        for b in range(0, len(ready), self.batch_size):
            chunk = ready[b : b + self.batch_size]
            start = time.perf_counter()
            try:
                batch = torch.stack([p for _, p in chunk])
                fields, raws, confs = generate_fields(self.model, self.bundle.processor, batch, self.max_length,
                                                      self.num_beams, self.form)
            except Exception as err:  # noqa: BLE001 - keep going with the next batch
                logger.warning("Donut generation failed for a batch of %d: %s", len(chunk), err)
                fields = [dict.fromkeys(keys, NONE) for _ in chunk]
                raws, confs = [""] * len(chunk), [_nan(keys) for _ in chunk]
                error = f"generation failed: {type(err).__name__}: {err}"
            else:
                error = None
            per_form = (time.perf_counter() - start) / len(chunk)
            for (i, _), f, r, c in zip(chunk, fields, raws, confs):
                results[i].fields, results[i].raw, results[i].confidence = f, r, c
                results[i].seconds += per_form
                results[i].error = error
        return results
