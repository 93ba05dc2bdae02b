"""Donut model + processor: build from a config (offline), load a pretrained one, save/load.

A Donut here is a ``VisionEncoderDecoderModel`` (DonutSwin encoder, MBart decoder), a
``DonutProcessor`` (``DonutImageProcessorPil`` + tokenizer) and a small preprocessing record
(:class:`Preprocessing`: the region of interest cropped from the 2460x350 form before resizing,
the input size, the generation length). The three travel together in one ``save_pretrained``
folder (:class:`DonutBundle`), which is what the ``donut_model`` catalog entry stores.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from handwriting_pipeline.donut import grammar
from handwriting_pipeline.donut.grammar import TASK_TOKEN
from handwriting_pipeline.fields.formspec import HSF_FORM, FormSpec, is_hsf_layout, load_form

logger = logging.getLogger(__name__)

PREPROCESSING_FILE = "hwp_donut.json"
#: the vote calibration fitted on forms the model never trained on (optional; see DonutEngine.vote_calibration)
CALIBRATION_FILE = "vote_calibration.json"
REFERENCE_SIZE = (2460, 350)  # width, height of the SD19 top-section crops


@dataclass
class Preprocessing:
    """How a form image becomes model input (saved next to the model).

    Attributes:
        roi: ``[x0, y0, x1, y1]`` in pixels of a ``reference_size`` form: the band with the
            DATE/CITY/STATE/ZIP boxes; scaled to the actual image size; ``None`` = whole image.
        reference_size: ``[width, height]`` the ROI is expressed in.
        image_size: model input ``[height, width]``; the ROI keeps its aspect ratio (the image
            processor resizes, then pads what is left).
        max_length: generation limit in tokens (task token included).
        task_token: the decoder's start token (:func:`~handwriting_pipeline.donut.grammar.task_token`).
        form: the form spec the model reads (a shipped form's name or a spec file's path; its
            fields are the tokens the model writes). Models saved without it read the HSF form.
        position_channels: put the image in the red channel and horizontal / vertical
            coordinate ramps in green / blue (CoordConv). DonutSwin has no working absolute
            position embedding for non-square inputs, so a model trained from scratch cannot
            otherwise tell where (which field, which character) a patch is; pretrained
            donut-base expects grey RGB, so ``pretrained`` keeps this off.
    """

    roi: list[int] | None = None
    reference_size: list[int] = field(default_factory=lambda: list(REFERENCE_SIZE))
    image_size: list[int] = field(default_factory=lambda: [96, 768])
    max_length: int = 96
    task_token: str = TASK_TOKEN
    form: str = HSF_FORM
    position_channels: bool = False
    encoder: str = "donut_swin"
    lines: dict[str, Any] = field(default_factory=dict)
    line_widths: list[int] = field(default_factory=list)
    line_augment: float = 1.0

    @property
    def spec(self) -> FormSpec:
        """The form spec the model reads (:attr:`form`)."""
        return load_form(self.form)

    def pixels(self, image: Image.Image, image_processor: Any, augmenter: Any = None, rng: Any = None):
        """A form -> the model's ``pixel_values`` row ([3, H, W]).

        ``donut_swin``: the ROI crop (augmented by ``augmenter(image, self, rng)`` when given)
        through the image processor. ``text_lines``: the DATE and CITY/STATE/ZIP lines cut by the
        shared layout code, side by side (:mod:`handwriting_pipeline.donut.text_lines`); with
        ``augmenter`` each line gets the field reader's line augmentation (``line_augment``).
        """
        if self.encoder == "text_lines":
            import numpy as np

            from handwriting_pipeline.donut.text_lines import form_to_pixels, line_settings

            augment, np_rng = None, None
            if augmenter is not None and rng is not None and self.line_augment > 0:
                from handwriting_pipeline.training.augment import Augment

                augment, np_rng = Augment(self.line_augment), np.random.default_rng(rng.getrandbits(64))
            return form_to_pixels(image, line_settings(self.lines), self.line_widths, augment, np_rng)
        crop = augmenter(image, self, rng) if augmenter is not None and rng is not None else self.crop(image)
        return image_processor(crop, return_tensors="pt").pixel_values[0]

    def crop(self, image: Image.Image) -> Image.Image:
        """ROI of a form (any mode/size) as the RGB image the image processor takes."""
        grey = image.convert("L")
        if self.roi:
            grey = grey.crop(self.box(grey.size))
        return self.to_rgb(grey)

    def to_rgb(self, grey: Image.Image) -> Image.Image:
        """Grey crop -> RGB: grey in all channels, or grey + coordinate ramps."""
        if not self.position_channels:
            return grey.convert("RGB")
        ramp = Image.linear_gradient("L")  # 256x256, 0 at the top, 255 at the bottom
        vertical = ramp.resize(grey.size, Image.BILINEAR)
        horizontal = ramp.transpose(Image.Transpose.ROTATE_90).resize(grey.size, Image.BILINEAR)  # 0 at the left
        return Image.merge("RGB", (grey, horizontal, vertical))

    def box(self, size: tuple[int, int], shift: tuple[float, float] = (0, 0), scale: float = 1.0) -> tuple[int, int, int, int]:
        """The ROI in pixels of an image of ``size`` (optionally shifted/scaled, for augmentation)."""
        width, height = size
        sx, sy = width / self.reference_size[0], height / self.reference_size[1]
        x0, y0, x1, y1 = self.roi
        cx, cy = (x0 + x1) / 2 + shift[0], (y0 + y1) / 2 + shift[1]
        hw, hh = (x1 - x0) / 2 * scale, (y1 - y0) / 2 * scale
        return (round((cx - hw) * sx), round((cy - hh) * sy), round((cx + hw) * sx), round((cy + hh) * sy))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "Preprocessing":
        data = dict(data or {})
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def build_image_processor(image_size: Sequence[int]):
    """``DonutImageProcessorPil`` for ``[height, width]`` input (no torchvision needed)."""
    from transformers.models.donut import DonutImageProcessorPil

    height, width = int(image_size[0]), int(image_size[1])
    return DonutImageProcessorPil(
        size={"height": height, "width": width}, do_align_long_axis=False, do_thumbnail=True,
        do_pad=True, do_resize=True,
    )


def build_processor(tokenizer, image_size: Sequence[int]):
    """``DonutProcessor`` from a tokenizer and the input size."""
    from transformers import DonutProcessor

    return DonutProcessor(image_processor=build_image_processor(image_size), tokenizer=tokenizer)


def decoder_config(tokenizer, decoder: Mapping[str, Any], max_length: int = 96):
    """The MBart decoder config (``encoder_layers`` raised to ``decoder_layers``, see below)."""
    from transformers import MBartConfig

    dec_kwargs = dict(decoder)
    layers = int(dec_kwargs.get("decoder_layers", 1))
    dec_kwargs["encoder_layers"] = max(int(dec_kwargs.get("encoder_layers", layers)), layers)
    dec_kwargs.setdefault("max_position_embeddings", max(128, int(max_length) + 8))
    return MBartConfig(
        vocab_size=len(tokenizer), is_decoder=True, add_cross_attention=True,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, forced_eos_token_id=None, scale_embedding=True,
        tie_word_embeddings=True, **dec_kwargs,
    )


def build_model_from_config(tokenizer, image_size: Sequence[int], encoder: Mapping[str, Any],
                            decoder: Mapping[str, Any], max_length: int = 96):
    """A randomly initialised Donut (DonutSwin + MBart decoder) sized by two config dicts.

    Args:
        tokenizer: the tokenizer (gives vocabulary size and special token ids).
        image_size: ``[height, width]`` of the encoder input.
        encoder: ``DonutSwinConfig`` keyword arguments (embed_dim, depths, num_heads,
            window_size, patch_size, drop_path_rate ...).
        decoder: ``MBartConfig`` keyword arguments (d_model, decoder_layers,
            decoder_attention_heads, decoder_ffn_dim, dropout ...). ``encoder_layers`` (unused
            by Donut) is raised to ``decoder_layers``: transformers 5 sizes the decoder's KV
            cache from it and ``generate`` fails when it is smaller.
    """
    from transformers import DonutSwinConfig, VisionEncoderDecoderConfig, VisionEncoderDecoderModel

    enc_cfg = DonutSwinConfig(image_size=[int(image_size[0]), int(image_size[1])], **dict(encoder))
    dec_cfg = decoder_config(tokenizer, decoder, max_length)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc_cfg, dec_cfg)
    model = VisionEncoderDecoderModel(config=config)
    configure_generation(model, tokenizer, max_length)
    return model


def configure_generation(model, tokenizer, max_length: int, task_token: str = TASK_TOKEN) -> None:
    """Start/stop/pad token ids on the model and its generation config."""
    task_id = tokenizer.convert_tokens_to_ids(task_token)
    model.config.decoder_start_token_id = task_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    gen = model.generation_config
    gen.decoder_start_token_id = task_id
    gen.pad_token_id = tokenizer.pad_token_id
    gen.eos_token_id = tokenizer.eos_token_id
    gen.bos_token_id = None
    gen.forced_bos_token_id = None
    gen.forced_eos_token_id = None
    gen.max_length = int(max_length)
    gen.num_beams = 1
    gen.do_sample = False
    if tokenizer.unk_token_id is not None:
        gen.bad_words_ids = [[tokenizer.unk_token_id]]


def form_roi(form: FormSpec) -> list[int] | None:
    """The band of ``form``'s line boxes, half the tallest box's height around them, in
    ``form.page.area`` pixels; None (the whole image) when a line has no box."""
    boxes = [line.box for line in form.lines]
    if any(box is None for box in boxes):
        return None
    margin = max(y1 - y0 for _, y0, _, y1 in boxes) // 2
    width, height = form.page.area
    return [max(0, min(b[0] for b in boxes) - margin), max(0, min(b[1] for b in boxes) - margin),
            min(width, max(b[2] for b in boxes) + margin), min(height, max(b[3] for b in boxes) + margin)]


def use_form(bundle: "DonutBundle", form: str | None) -> "DonutBundle":
    """Set a new bundle to read ``form`` (None: the HSF form): its field tokens are in the
    tokenizer, its task token starts generation and the form is saved with it; another layout's
    ROI is its line boxes' band (the configured ROI is the HSF crop's)."""
    from handwriting_pipeline.donut.tokenizer import add_field_tokens

    model, tokenizer = bundle.model, bundle.processor.tokenizer
    prep, spec = bundle.preprocessing, load_form(form or HSF_FORM)
    if add_field_tokens(tokenizer, spec):
        model.decoder.resize_token_embeddings(len(tokenizer))
        model.config.decoder.vocab_size = len(tokenizer)
    prep.form, prep.task_token = str(form or HSF_FORM), grammar.task_token(spec)
    configure_generation(model, tokenizer, prep.max_length, prep.task_token)
    if not is_hsf_layout(spec) and prep.encoder != "text_lines":
        prep.roi, prep.reference_size = form_roi(spec), list(spec.page.area)
    return bundle


def saved_form(folder: str | Path | None) -> str:
    """The form a saved model reads (its preprocessing record), without loading the model."""
    path = Path(folder) / PREPROCESSING_FILE if folder else None
    if path is None or not path.is_file():
        return HSF_FORM
    return str(json.loads(path.read_text(encoding="utf-8")).get("form") or HSF_FORM)


def encoder_grid(model) -> tuple[int, int]:
    """``(rows, columns)`` of the encoder's output token grid for the configured input size."""
    enc = model.config.encoder
    size = enc.image_size if isinstance(enc.image_size, (list, tuple)) else (enc.image_size, enc.image_size)
    stride = int(enc.patch_size) * 2 ** (len(enc.depths) - 1)
    return int(size[0]) // stride, int(size[1]) // stride


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class DonutBundle:
    """Model + processor + preprocessing: what training produces and inference needs."""

    model: Any
    processor: Any
    preprocessing: Preprocessing

    def save(self, folder: str | Path) -> Path:
        """``save_pretrained`` of model and processor, plus the preprocessing record."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        (folder / PREPROCESSING_FILE).write_text(json.dumps(asdict(self.preprocessing), indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, name_or_path: str | Path, preprocessing: Mapping[str, Any] | None = None) -> "DonutBundle":
        """Load a saved bundle, or any Donut on the Hugging Face hub (needs internet).

        ``preprocessing`` overrides what the folder records (a hub model records nothing: the
        defaults are the whole image and the processor's own input size).
        """
        from transformers import DonutProcessor, VisionEncoderDecoderModel

        from handwriting_pipeline.donut import text_lines  # noqa: F401 - registers the text-line encoder

        processor = DonutProcessor.from_pretrained(str(name_or_path))
        model = VisionEncoderDecoderModel.from_pretrained(str(name_or_path))
        record: dict[str, Any] = {}
        path = Path(name_or_path)
        if (path / PREPROCESSING_FILE).is_file():
            record = json.loads((path / PREPROCESSING_FILE).read_text(encoding="utf-8"))
        else:
            size = processor.image_processor.size
            record = {"roi": None, "image_size": [size["height"], size["width"]]}
        record.update(dict(preprocessing or {}))
        prep = Preprocessing.from_dict(record)
        model.eval()
        return cls(model=model, processor=processor, preprocessing=prep)


def save_vote_calibration(folder: str | Path, calibration: Mapping[str, Any], fitted_on: str) -> Path:
    """Write the vote calibration (``ensemble.vote`` format, one engine) next to a saved model."""
    path = Path(folder) / CALIBRATION_FILE
    path.write_text(json.dumps({"fitted_on": fitted_on, "calibration": dict(calibration)}, indent=2), encoding="utf-8")
    return path


def load_vote_calibration(folder: str | Path | None) -> dict[str, Any] | None:
    """The vote calibration saved next to a model, or None when there is none."""
    path = Path(folder) / CALIBRATION_FILE if folder else None
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8")).get("calibration") or None


def is_model_folder(path: str | Path) -> bool:
    """True when ``path`` holds a saved Donut (config, weights and processor files)."""
    path = Path(path)
    weights = any(path.glob("*.safetensors")) or (path / "pytorch_model.bin").is_file()
    return (path / "config.json").is_file() and weights


def build_pretrained(name_or_path: str, image_size: Sequence[int], roi: Sequence[int] | None,
                     max_length: int = 96) -> DonutBundle:
    """Start from pretrained weights (``naver-clova-ix/donut-base`` or a local folder).

    Adds the field tokens to the tokenizer (resizing the decoder embeddings), sets the input
    size on the processor and the encoder config, and the generation settings. A folder saved
    by this project keeps its ``position_channels`` setting (the weights depend on it).
    """
    bundle = DonutBundle.load(name_or_path)
    model, processor = bundle.model, bundle.processor
    from handwriting_pipeline.donut.tokenizer import add_field_tokens

    if add_field_tokens(processor.tokenizer):
        model.decoder.resize_token_embeddings(len(processor.tokenizer))
        model.config.decoder.vocab_size = len(processor.tokenizer)
    configure_generation(model, processor.tokenizer, max_length)
    if bundle.preprocessing.encoder == "text_lines":  # the lines' geometry is part of the weights
        prep = bundle.preprocessing
        prep.max_length = int(max_length)
        model.train()
        return DonutBundle(model=model, processor=processor, preprocessing=prep)
    height, width = int(image_size[0]), int(image_size[1])
    processor.image_processor = build_image_processor([height, width])
    model.config.encoder.image_size = [height, width]
    prep = Preprocessing(roi=list(roi) if roi else None, image_size=[height, width], max_length=int(max_length),
                         position_channels=bundle.preprocessing.position_channels)
    model.train()
    return DonutBundle(model=model, processor=processor, preprocessing=prep)


def build_from_config(tokenizer, image_size: Sequence[int], roi: Sequence[int] | None,
                      encoder: Mapping[str, Any], decoder: Mapping[str, Any], max_length: int = 96,
                      position_channels: bool = True) -> DonutBundle:
    """A new bundle: random Donut + processor around ``tokenizer``."""
    model = build_model_from_config(tokenizer, image_size, encoder, decoder, max_length)
    processor = build_processor(tokenizer, image_size)
    prep = Preprocessing(roi=list(roi) if roi else None, image_size=[int(image_size[0]), int(image_size[1])],
                         max_length=int(max_length), position_channels=bool(position_channels))
    logger.info("Built Donut from config: %.2fM parameters, input %sx%s", count_parameters(model) / 1e6,
                image_size[0], image_size[1])
    return DonutBundle(model=model, processor=processor, preprocessing=prep)


def build_text_lines_from_config(tokenizer, decoder: Mapping[str, Any], max_length: int = 96,
                                 line_widths: Sequence[int] | None = None, fieldreader_dir: str | Path | None = None,
                                 line_augment: float = 1.0) -> DonutBundle:
    """A new bundle with the pretrained text-line encoder (:mod:`.text_lines`) and a random MBart
    decoder. The encoder starts from the field reader saved in ``fieldreader_dir`` (its weights
    and line settings), or from the stock PP-OCRv6 recognizer when that is None."""
    from transformers import VisionEncoderDecoderConfig, VisionEncoderDecoderModel

    from handwriting_pipeline.donut import text_lines

    enc_cfg = text_lines.build_encoder_config(line_widths or text_lines.DEFAULT_LINE_WIDTHS, fieldreader_dir)
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc_cfg, decoder_config(tokenizer, decoder,
                                                                                            max_length))
    model = VisionEncoderDecoderModel(config=config)
    source = model.encoder.load_backbone(fieldreader_dir)
    configure_generation(model, tokenizer, max_length)
    processor = build_processor(tokenizer, enc_cfg.image_size)
    prep = Preprocessing(roi=None, image_size=list(enc_cfg.image_size), max_length=int(max_length),
                         encoder="text_lines", lines=dict(enc_cfg.lines), line_widths=list(enc_cfg.line_widths),
                         line_augment=float(line_augment))
    logger.info("Built Donut with the text-line encoder (%s): %.2fM parameters (encoder %.2fM), lines %s",
                source, count_parameters(model) / 1e6, count_parameters(model.encoder) / 1e6, enc_cfg.line_widths)
    return DonutBundle(model=model, processor=processor, preprocessing=prep)


__all__ = [
    "DonutBundle", "Preprocessing", "build_from_config", "build_text_lines_from_config", "build_pretrained", "build_processor",
    "build_image_processor", "build_model_from_config", "configure_generation", "count_parameters",
    "form_roi", "is_model_folder", "load_vote_calibration", "save_vote_calibration", "saved_form", "use_form",
]
