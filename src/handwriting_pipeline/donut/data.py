"""Torch datasets for Donut training: labelled real forms and synthetic forms by index.

Both yield ``{"pixel_values", "labels", "fields"}`` items: the ROI crop through the Donut
image processor, the target token ids (``json2token(fields) + eos``) and the gold fields (for
validation metrics), of the form the model reads (``Preprocessing.form``). Synthetic forms are
generated on the fly from their index (the form's renderer), so a run of any length streams them
and DataLoader workers generate in parallel.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from PIL import Image, ImageFilter
from torch.utils.data import Dataset

from handwriting_pipeline.donut.grammar import json2token
from handwriting_pipeline.donut.model import Preprocessing
from handwriting_pipeline.fields import clean_fields
from handwriting_pipeline.fields.formspec import FormSpec, is_hsf_layout


class Augmenter:
    """Small, label-preserving distortions of a form before cropping: the ROI shifted and
    scaled (registration varies between scans), a slight rotation, thinner/thicker strokes.

    Args:
        shift_px: ``[dx, dy]`` maximum ROI shift in reference pixels.
        scale: maximum relative ROI scale change (0.05 = +-5%).
        rotate_deg: maximum rotation in degrees.
        stroke_prob: probability of thickening (and, separately, of thinning) the strokes.
    """

    def __init__(self, shift_px: Sequence[float] = (30, 15), scale: float = 0.05, rotate_deg: float = 1.0,
                 stroke_prob: float = 0.2, enabled: bool = True) -> None:
        self.shift_px = (float(shift_px[0]), float(shift_px[1]))
        self.scale, self.rotate_deg, self.stroke_prob = float(scale), float(rotate_deg), float(stroke_prob)
        self.enabled = bool(enabled)

    def __call__(self, image: Image.Image, prep: Preprocessing, rng: random.Random) -> Image.Image:
        grey = image.convert("L")
        if prep.roi:
            shift = (rng.uniform(-self.shift_px[0], self.shift_px[0]), rng.uniform(-self.shift_px[1], self.shift_px[1]))
            scale = 1.0 + rng.uniform(-self.scale, self.scale)
            x0, y0, x1, y1 = prep.box(grey.size, shift=shift, scale=scale)
            margin = 24  # rotate a slightly larger crop (cheaper than the whole form), then trim
            grey = grey.crop((x0 - margin, y0 - margin, x1 + margin, y1 + margin))
            if self.rotate_deg:
                grey = grey.rotate(rng.uniform(-self.rotate_deg, self.rotate_deg), resample=Image.BILINEAR,
                                   fillcolor=255)
            grey = grey.crop((margin, margin, margin + x1 - x0, margin + y1 - y0))
        elif self.rotate_deg:
            grey = grey.rotate(rng.uniform(-self.rotate_deg, self.rotate_deg), resample=Image.BILINEAR, fillcolor=255)
        r = rng.random()
        if r < self.stroke_prob:
            grey = grey.filter(ImageFilter.MinFilter(3))  # dark strokes grow
        elif r < 2 * self.stroke_prob:
            grey = grey.filter(ImageFilter.MaxFilter(3))  # dark strokes shrink
        return prep.to_rgb(grey)


class DonutEncoder:
    """Turns (image, fields) into model tensors with a processor and preprocessing (whose form
    names the fields)."""

    def __init__(self, processor: Any, preprocessing: Preprocessing, augmenter: Augmenter | None = None) -> None:
        self.processor, self.prep, self.augmenter = processor, preprocessing, augmenter
        self.form = preprocessing.spec

    def target(self, fields: Mapping[str, str]) -> str:
        return json2token(fields, self.form) + self.processor.tokenizer.eos_token

    def __call__(self, image: Image.Image, fields: Mapping[str, str], rng: random.Random | None = None) -> dict[str, Any]:
        augment = self.augmenter is not None and self.augmenter.enabled and rng is not None
        pixels = self.prep.pixels(image, self.processor.image_processor, self.augmenter if augment else None, rng)
        return {"pixel_values": pixels, "labels": self.label_ids(fields),
                "fields": clean_fields(fields, self.form.keys)}

    def label_ids(self, fields: Mapping[str, str]) -> torch.Tensor:
        """The target token ids of a form's fields (``json2token`` + eos, truncated to max_length)."""
        ids = self.processor.tokenizer(self.target(fields), add_special_tokens=False,
                                       max_length=self.prep.max_length - 1, truncation=True).input_ids
        return torch.tensor(ids, dtype=torch.long)


class FormsDataset(Dataset):
    """Real labelled forms (a :class:`~handwriting_pipeline.datasets.forms.LabelledForms`)."""

    def __init__(self, forms: Any, encoder: DonutEncoder, train: bool = False) -> None:
        self.names = forms.labels["file_name"].tolist()
        self.fields = [{k: r[k] for k in encoder.form.keys} for r in forms.labels.to_dict("records")]
        self.images = forms.images
        self.encoder, self.train = encoder, train

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self.images[self.names[index]]
        rng = random.Random(random.getrandbits(64)) if self.train else None  # seeded by Lightning
        item = self.encoder(image, self.fields[index], rng)
        item["file_name"] = self.names[index]
        return item


class SyntheticFormsDataset(Dataset):
    """``num_forms`` synthetic forms, generated on demand by index (deterministic per index).

    Wraps ``handwriting_pipeline.synthetic.SyntheticFormGenerator(seed, **options)`` whose
    ``sample(i)`` returns ``(image, fields)``. The generator is created lazily in each process,
    so DataLoader workers each build their own.
    """

    def __init__(self, num_forms: int, encoder: DonutEncoder, seed: int = 0, options: Mapping[str, Any] | None = None,
                 augment: bool = False) -> None:
        self.num_forms, self.encoder, self.seed = int(num_forms), encoder, int(seed)
        self.options = dict(options or {})
        self.augment = augment
        self._generator = None

    @property
    def generator(self):
        if self._generator is None:
            self._generator = make_generator(self.seed, self.options, self.encoder.form)
        return self._generator

    def __len__(self) -> int:
        return self.num_forms

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, fields = self.generator.sample(int(index))
        rng = random.Random(random.getrandbits(64)) if self.augment else None
        item = self.encoder(image, fields, rng)
        item["file_name"] = f"synthetic_{index:06d}"
        return item

    def __getstate__(self) -> dict[str, Any]:  # workers rebuild the generator
        state = self.__dict__.copy()
        state["_generator"] = None
        return state


def synthetic_available() -> tuple[bool, str]:
    """Whether the synthetic form generator can be imported (and why not)."""
    try:
        from handwriting_pipeline.synthetic import SyntheticFormGenerator  # noqa: F401
    except Exception as err:  # noqa: BLE001 - any import problem means "not available"
        return False, f"handwriting_pipeline.synthetic is not importable ({type(err).__name__}: {err})"
    return True, ""


def make_generator(seed: int, options: Mapping[str, Any] | None = None, form: FormSpec | None = None):
    """The project's synthetic form generator for ``form`` (None: the HSF form's renderer)."""
    from handwriting_pipeline.synthetic import SpecFormGenerator, SyntheticFormGenerator

    if is_hsf_layout(form):
        return SyntheticFormGenerator(seed=seed, **dict(options or {}))
    return SpecFormGenerator(form, seed=seed, **dict(options or {}))


def synthetic_texts(num_forms: int, seed: int, form: FormSpec | None = None) -> list[str]:
    """Field values like the synthetic generator writes them (dates, real city/state/ZIP
    triples in its case and abbreviation styles; another form's values by field type), for
    training the tokenizer. Values only: nothing is rendered, so thousands take a second."""
    if num_forms <= 0 or not synthetic_available()[0]:
        return []
    import numpy as np

    if not is_hsf_layout(form):
        return _spec_texts(num_forms, seed, form)

    from handwriting_pipeline.synthetic.values import sample_date, sample_place

    rng = np.random.default_rng([int(seed), 0x7E47])
    texts = []
    for _ in range(int(num_forms)):
        city, state, zip_code, _place = sample_place(rng)
        texts.extend([sample_date(rng), city, state, zip_code])
    return texts


def _spec_texts(num_forms: int, seed: int, form: FormSpec) -> list[str]:
    """``num_forms`` forms' values of ``form``, drawn per field type as its renderer draws them."""
    import numpy as np

    from handwriting_pipeline.fields.types import type_of
    from handwriting_pipeline.synthetic.values import sample_value

    rng = np.random.default_rng([int(seed), 0x7E47])
    types = [type_of(f) for f in form.fields]
    texts = []
    for _ in range(int(num_forms)):
        context: dict[str, Any] = {}
        texts.extend(sample_value(rng, t, context) for t in types)
    return texts


def collate(batch: list[dict[str, Any]], pad_id: int = -100) -> dict[str, Any]:
    """Stack pixels, right-pad labels with -100 (ignored by the loss)."""
    pixels = torch.stack([b["pixel_values"] for b in batch])
    length = max(len(b["labels"]) for b in batch)
    labels = torch.full((len(batch), length), pad_id, dtype=torch.long)
    for i, b in enumerate(batch):
        labels[i, : len(b["labels"])] = b["labels"]
    return {"pixel_values": pixels, "labels": labels, "fields": [b["fields"] for b in batch],
            "file_name": [b["file_name"] for b in batch]}
