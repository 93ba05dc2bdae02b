"""A pretrained text-line encoder for Donut: the field reader's backbone as a transformers model.

``train.model.encoder: text_lines`` swaps DonutSwin for :class:`TextLinesEncoder`: the PP-OCRv6
recognizer's graph (:class:`~handwriting_pipeline.fieldreader.graph.OnnxRecognizer`, stock or
fine-tuned by the field reader) cut before its CTC head, so it gives per-frame features
``[B, W/8, 120]`` of a 48-pixel-high line. A form's two field lines (DATE, CITY/STATE/ZIP, cut by
:func:`~handwriting_pipeline.forms.lines.cut_lines`, the shared layout code) are each fitted
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

from handwriting_pipeline.fieldreader.text import ALPHABET
from handwriting_pipeline.forms.lines import HEIGHT, LINES, LineSettings, cut_lines, to_array

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
        onnx_inference: at inference (eval mode, no gradient, CPU) run the backbone with ONNX
            Runtime over the same graph and weights instead of the torch interpreter.
    """

    model_type = MODEL_TYPE

    def __init__(self, line_widths: Sequence[int] = DEFAULT_LINE_WIDTHS, feature_size: int = 120,
                 char_features: bool = True, num_symbols: int = len(ALPHABET) + 1, feature_name: str | None = None,
                 lines: Mapping[str, Any] | None = None, fieldreader_dir: str | None = None,
                 onnx_inference: bool = True, **kwargs: Any) -> None:
        kwargs.pop("hidden_size", None)  # derived
        self.line_widths = [int(w) // 8 * 8 for w in line_widths]
        self.feature_size, self.char_features, self.num_symbols = int(feature_size), bool(char_features), int(num_symbols)
        self.hidden_size = self.feature_size + (self.num_symbols if self.char_features else 0)
        self.feature_name = feature_name
        self.lines = dict(lines or {})
        self.fieldreader_dir = fieldreader_dir
        self.onnx_inference = bool(onnx_inference)
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
        self._session = None  # ONNX Runtime copy of the backbone (inference), built on first use
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
        self._session = None
        return f"field reader {fieldreader_dir}"

    def _constants_to(self, device: torch.device) -> None:
        """The graph's constants are plain tensors (not buffers): follow the input's device."""
        consts = self.backbone.constants
        if consts and next(iter(consts.values())).device != device:
            self.backbone.constants = {k: v.to(device) for k, v in consts.items()}

    def line_frames(self) -> list[int]:
        """Frames per line (the backbone downsamples the width by 8)."""
        return [int(w) // 8 for w in self.config.line_widths]

    def train(self, mode: bool = True) -> "TextLinesEncoder":
        self._session = None  # the weights may change: the ONNX Runtime copy is rebuilt when needed
        return super().train(mode)

    def _onnx_session(self):
        """ONNX Runtime over the backbone graph with this module's current weights (inference only:
        ~5x faster than the torch interpreter on a CPU; same values to ~1e-5)."""
        if self._session is None:
            import onnxruntime as ort
            from onnx.utils import Extractor

            full = self.backbone.graph_proto
            model = Extractor(full).extract_model([full.graph.input[0].name], [self.backbone.output_name])
            self.backbone.load_weights_into(model)
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            options.log_severity_level = 3
            self._session = ort.InferenceSession(model.SerializeToString(), options,
                                                 providers=["CPUExecutionProvider"])
        return self._session

    def _backbone(self, line: torch.Tensor) -> torch.Tensor:
        fast = (self.config.onnx_inference and not self.training and not torch.is_grad_enabled()
                and line.device.type == "cpu")
        if fast:
            session = self._onnx_session()
            out = session.run(None, {session.get_inputs()[0].name: line.float().numpy()})[0]
            return torch.from_numpy(out).to(line.dtype)
        return self.backbone(line)

    def backbone_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The pretrained part's output for the lines side by side: ``[B, frames, hidden_size]``
        (backbone features, then the CTC head's log-probabilities; not normalised). These are
        what :mod:`.feature_cache` stores when the backbone stays frozen."""
        self._constants_to(pixel_values.device)
        feats, start = [], 0
        for width in self.config.line_widths:
            out = self._backbone(pixel_values[..., start: start + width])
            start += width
            parts = [out]
            if self.head is not None:
                parts.append(torch.log_softmax(self.head(out).float(), -1).to(out.dtype))
            feats.append(torch.cat(parts, dim=-1))
        return torch.cat(feats, dim=1)

    def project(self, raw: torch.Tensor) -> torch.Tensor:
        """Backbone features -> the decoder's input: each part layer-normalised, plus the line
        and frame position embeddings."""
        feats, start = [], 0
        for i, frames in enumerate(self.line_frames()):
            part = raw[:, start: start + frames]
            start += frames
            out = self.norm(part[..., : self.config.feature_size])
            if self.char_norm is not None:
                out = torch.cat([out, self.char_norm(part[..., self.config.feature_size:])], dim=-1)
            feats.append(out + self.line_embed[i] + self.pos_embed[:frames])
        return torch.cat(feats, dim=1)

    def forward(self, pixel_values: torch.Tensor, output_attentions: bool | None = None,
                output_hidden_states: bool | None = None, return_dict: bool | None = None,
                **kwargs: Any) -> BaseModelOutput | tuple:
        """``pixel_values``: the lines side by side ``[B, 3, 48, sum(line_widths)]``, or already
        computed :meth:`backbone_features` ``[B, frames, hidden_size]`` (a frozen backbone's cache)."""
        raw = pixel_values if pixel_values.dim() == 3 else self.backbone_features(pixel_values)
        hidden = self.project(raw)
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
