"""A pretrained text-line encoder for Donut: the field reader's backbone as a transformers model.

``train.model.encoder: text_lines`` swaps DonutSwin for :class:`TextLinesEncoder`: the PP-OCRv6
recognizer's graph (:class:`~handwriting_pipeline.fieldreader.graph.OnnxRecognizer`, stock or
fine-tuned by the field reader) cut before its CTC head, so it gives per-frame features
``[B, W/8, 120]`` of a 48-pixel-high line. A form's two field lines (DATE, CITY/STATE/ZIP, cut by
:func:`~handwriting_pipeline.fieldreader.lines.cut_lines`, the shared layout code) are each fitted
into a fixed width and laid side by side: ``pixel_values`` is ``[B, 3, 48, sum(line_widths)]``,
an ordinary image tensor, so the Donut collate, ``VisionEncoderDecoderModel.generate`` and beam
search work unchanged. The encoder splits it again, runs the backbone on each line, adds a
layer-normalises the features (and the CTC head's log-probabilities, see ``char_features``),
adds a learned line embedding and a (sinusoidally initialised, learned) frame position
embedding, and hands the decoder one sequence: the DATE frames, then the CITY/STATE/ZIP frames.

:class:`TextLinesConfig` / :class:`TextLinesEncoder` are registered with ``AutoConfig`` /
``AutoModel`` (:func:`register`), so ``save_pretrained`` / ``from_pretrained`` work as for
DonutSwin; the backbone's graph comes from the installed rapidocr wheel, its weights from the
saved model.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from handwriting_pipeline.fieldreader.lines import HEIGHT, LINES, LineSettings, cut_lines, to_array
from handwriting_pipeline.fieldreader.text import ALPHABET

logger = logging.getLogger(__name__)

MODEL_TYPE = "hwp-text-lines"
DEFAULT_LINE_WIDTHS = (160, 400)  # DATE, CITY/STATE/ZIP at height 48 (measured: <= 152 / <= 392 px)


class TextLinesConfig(PretrainedConfig):
    """Configuration of :class:`TextLinesEncoder`.

    Args:
        line_widths: pixel width each line is fitted into (multiples of 8), in ``LINES`` order.
        feature_size: the backbone's feature size (120 for PP-OCRv6 small).
        char_features: also hand the decoder the field reader's CTC head output (log
            probabilities of blank + its alphabet per frame; the head starts from the field
            reader's and trains with the rest): the decoder then sees which character each
            frame holds from the first step. ``hidden_size`` = feature_size (+ num_symbols).
        num_symbols: the CTC head's outputs (blank + the field reader's alphabet).
        feature_name: the graph tensor taken as features (default: the CTC head's input).
        lines: :class:`LineSettings` fields (how lines are cut; saved so inference matches).
        fieldreader_dir: where the backbone's initial weights came from (informational).
    """

    model_type = MODEL_TYPE

    def __init__(self, line_widths: Sequence[int] = DEFAULT_LINE_WIDTHS, feature_size: int = 120,
                 char_features: bool = True, num_symbols: int = len(ALPHABET) + 1, feature_name: str | None = None,
                 lines: Mapping[str, Any] | None = None, fieldreader_dir: str | None = None, **kwargs: Any) -> None:
        kwargs.pop("hidden_size", None)  # derived
        self.line_widths = [int(w) // 8 * 8 for w in line_widths]
        self.feature_size, self.char_features, self.num_symbols = int(feature_size), bool(char_features), int(num_symbols)
        self.hidden_size = self.feature_size + (self.num_symbols if self.char_features else 0)
        self.feature_name = feature_name
        self.lines = dict(lines or {})
        self.fieldreader_dir = fieldreader_dir
        super().__init__(**kwargs)

    @property
    def image_size(self) -> list[int]:
        return [HEIGHT, sum(self.line_widths)]


def _sinusoid(length: int, dim: int) -> torch.Tensor:
    position = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


class TextLinesEncoder(PreTrainedModel):
    """The field reader's backbone over a form's two lines (see the module docstring)."""

    config_class = TextLinesConfig
    base_model_prefix = "text_lines"
    main_input_name = "pixel_values"
    supports_gradient_checkpointing = False

    def __init__(self, config: TextLinesConfig) -> None:
        super().__init__(config)
        from handwriting_pipeline.fieldreader.model import build_network

        net = build_network()  # stock weights; a saved model's weights are loaded over them
        self.head = None
        if config.char_features:
            weight, bias = (net.params[net._key(name)].detach() for name in net.head)
            self.head = nn.Linear(weight.shape[0], weight.shape[1])
            with torch.no_grad():
                self.head.weight.copy_(weight.T)
                self.head.bias.copy_(bias)
        net.truncate(config.feature_name or net.feature_name())
        self.backbone = net
        dim, frames = config.hidden_size, max(config.line_widths) // 8
        self.line_embed = nn.Parameter(torch.zeros(len(config.line_widths), dim))
        self.pos_embed = nn.Parameter(_sinusoid(frames, dim))
        # each part normalised on its own (the features' scale ~3, log-probabilities down to ~-30),
        # then the embeddings are added at unit scale, so the decoder sees where each frame is
        self.norm = nn.LayerNorm(config.feature_size)
        self.char_norm = nn.LayerNorm(config.num_symbols) if config.char_features else None
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        """Nothing to initialise: the backbone is pretrained, the embeddings are set in ``__init__``."""

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The pretrained part (graph and CTC head): frozen first, then a lower learning rate."""
        return list(self.backbone.parameters()) + (list(self.head.parameters()) if self.head is not None else [])

    def load_backbone(self, fieldreader_dir: str | Path | None) -> str:
        """Load a saved field reader's weights (``weights.pt``) into the backbone; returns what was used."""
        if not fieldreader_dir:
            return "stock PP-OCRv6 recognizer (rapidocr wheel)"
        from handwriting_pipeline.fieldreader.model import WEIGHTS_FILE

        state = torch.load(Path(fieldreader_dir) / WEIGHTS_FILE, map_location="cpu")
        keep = {k.removeprefix("params."): v for k, v in state.items()}
        own = self.backbone.params
        missing = [k for k in own if k not in keep]
        if missing:
            raise ValueError(f"{fieldreader_dir}: {len(missing)} backbone weights missing (e.g. {missing[:3]})")
        with torch.no_grad():
            for key, param in own.items():
                param.copy_(keep[key])
            if self.head is not None:
                weight, bias = (keep[self.backbone._key(name)] for name in self.backbone.head)
                self.head.weight.copy_(weight.T)
                self.head.bias.copy_(bias)
        self.config.fieldreader_dir = str(fieldreader_dir)
        return f"field reader {fieldreader_dir}"

    def _constants_to(self, device: torch.device) -> None:
        """The graph's constants are plain tensors (not buffers): follow the input's device."""
        consts = self.backbone.constants
        if consts and next(iter(consts.values())).device != device:
            self.backbone.constants = {k: v.to(device) for k, v in consts.items()}

    def forward(self, pixel_values: torch.Tensor, output_attentions: bool | None = None,
                output_hidden_states: bool | None = None, return_dict: bool | None = None,
                **kwargs: Any) -> BaseModelOutput | tuple:
        self._constants_to(pixel_values.device)
        feats, start = [], 0
        for i, width in enumerate(self.config.line_widths):
            line = pixel_values[..., start: start + width]
            start += width
            out = self.backbone(line)
            parts = [self.norm(out)]
            if self.head is not None:
                parts.append(self.char_norm(torch.log_softmax(self.head(out).float(), -1).to(out.dtype)))
            frames = out.shape[1]
            feats.append(torch.cat(parts, dim=-1) + self.line_embed[i] + self.pos_embed[:frames])
        hidden = torch.cat(feats, dim=1)
        if return_dict is False:
            return (hidden,)
        return BaseModelOutput(last_hidden_state=hidden, hidden_states=(hidden,) if output_hidden_states else None)


_REGISTERED = False


def register() -> None:
    """Register the config and model with the transformers Auto classes (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    try:
        AutoConfig.register(MODEL_TYPE, TextLinesConfig)
        AutoModel.register(TextLinesConfig, TextLinesEncoder)
    except ValueError:  # already registered (e.g. module reloaded)
        pass
    _REGISTERED = True


register()


def is_text_lines(model: Any) -> bool:
    """Whether a Donut model's encoder is the text-line encoder."""
    return getattr(getattr(model.config, "encoder", None), "model_type", None) == MODEL_TYPE


# ------------------------------------------------------------------------- pixels of a form
def fit_width(array: np.ndarray, width: int) -> np.ndarray:
    """A [3, 48, w] line array placed left in a white [3, 48, width] canvas (squeezed when wider)."""
    if array.shape[2] > width:
        import cv2

        array = np.stack([cv2.resize(c, (width, HEIGHT), interpolation=cv2.INTER_AREA) for c in array])
    out = np.ones((3, HEIGHT, width), dtype=np.float32)
    out[:, :, : array.shape[2]] = array
    return out


def lines_to_pixels(lines: Mapping[str, np.ndarray], settings: LineSettings, widths: Sequence[int],
                    augment: Any = None, rng: np.random.Generator | None = None) -> torch.Tensor:
    """Grey lines ``{"DATE": ..., "CSZ": ...}`` -> the encoder's ``[3, 48, sum(widths)]`` input."""
    parts = []
    for name, width in zip(LINES, widths):
        line = lines.get(name)
        if line is None or line.size == 0:
            line = np.full((HEIGHT, 16), 255, dtype=np.uint8)
        if augment is not None and rng is not None:
            line = augment(line, rng)
        parts.append(fit_width(to_array(line, settings), int(width)))
    return torch.from_numpy(np.concatenate(parts, axis=2))


def line_settings(prep_lines: Mapping[str, Any] | None) -> LineSettings:
    return LineSettings(**dict(prep_lines or {}))


def form_to_pixels(image: Any, settings: LineSettings, widths: Sequence[int], augment: Any = None,
                   rng: np.random.Generator | None = None) -> torch.Tensor:
    """A top-section crop -> the encoder input (its two lines cut by the shared layout code)."""
    return lines_to_pixels(cut_lines(image, settings), settings, widths, augment, rng)


def build_encoder_config(line_widths: Sequence[int] = DEFAULT_LINE_WIDTHS,
                         fieldreader_dir: str | Path | None = None) -> TextLinesConfig:
    """The encoder config; the line settings come from the field reader folder when given (the
    widths, measured at ``x_stretch`` 1, follow its ``x_stretch``)."""
    lines: dict[str, Any] = {}
    if fieldreader_dir:
        from dataclasses import asdict

        from handwriting_pipeline.fieldreader.model import FieldReader

        lines = asdict(FieldReader.load(fieldreader_dir).config.lines)
        stretch = float(lines.get("x_stretch", 1.0))  # widths are measured at x_stretch 1
        line_widths = [int(math.ceil(int(w) * stretch / 8)) * 8 for w in line_widths]
    return TextLinesConfig(line_widths=line_widths, lines=lines,
                           fieldreader_dir=str(fieldreader_dir) if fieldreader_dir else None)


def resolve_fieldreader_dir(path: str | Path | None) -> str | None:
    """A field reader folder that exists (with its weights), else None (stock recognizer)."""
    if not path:
        return None
    from handwriting_pipeline.fieldreader.model import CONFIG_FILE, WEIGHTS_FILE

    folder = Path(path)
    if (folder / WEIGHTS_FILE).is_file() and (folder / CONFIG_FILE).is_file():
        return str(folder)
    logger.warning("No field reader in %s: the text-line encoder starts from the stock recognizer", folder)
    return None


__all__ = ["TextLinesConfig", "TextLinesEncoder", "build_encoder_config", "form_to_pixels", "is_text_lines",
           "lines_to_pixels", "register", "resolve_fieldreader_dir"]
