"""The field reader model: the PP-OCRv6 recognizer with its output cut to our alphabet.

A saved model is a folder:

- ``weights.pt``: the torch parameters (for further training);
- ``model.onnx``: the same weights in the stock ONNX graph (fast inference with ONNX Runtime);
- ``fieldreader.json``: alphabet, line settings, training summary and calibration;
- ``style.joblib`` (when fitted): the style layer (:mod:`.style`: case, dots and spaces from the glyphs);

:class:`FieldReader` runs inference on line arrays with ONNX Runtime when the folder has it,
otherwise with torch. Outputs are per-frame log-probabilities over blank + :data:`ALPHABET`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from handwriting_pipeline.fieldreader.graph import OnnxRecognizer, export_onnx, onnx_dictionary, stock_onnx_path
from handwriting_pipeline.fieldreader.text import ALPHABET
from handwriting_pipeline.forms.lines import HEIGHT, LineSettings, batch_arrays, padded_width

CONFIG_FILE, WEIGHTS_FILE, ONNX_FILE = "fieldreader.json", "weights.pt", "model.onnx"
#: keys that models saved by earlier versions may carry in fieldreader.json and that nothing reads
#: any more (test-time views, ensemble members: see docs/results/dead-ends.md); ignored on load
RETIRED_KEYS = ("views", "members")


def build_network(onnx_path: str | Path | None = None, alphabet: str = ALPHABET) -> OnnxRecognizer:
    """The stock recognizer (from the installed rapidocr wheel) with its head cut to blank +
    ``alphabet`` (the HSF reader's :data:`ALPHABET` unless a form needs more characters)."""
    path = Path(onnx_path) if onnx_path else stock_onnx_path()
    net = OnnxRecognizer.from_onnx(path)
    dictionary = onnx_dictionary(path)
    missing = [c for c in alphabet if c not in dictionary]
    if missing:
        raise ValueError(f"{path}: the stock recognizer's dictionary lacks {missing!r}; a form's field types may "
                         "only use characters it knows")
    net.restrict_output([0, *(dictionary.index(c) for c in alphabet)])
    net.freeze_batchnorm()
    return net


#: the ``summary`` key of the untrained engines' calibrations fitted with the reader on its form
#: (:func:`~handwriting_pipeline.methods.form_engine_calibrations`)
ENGINE_CALIBRATIONS = "engine_calibrations"


@dataclass
class FieldReaderConfig:
    """Everything besides the weights that a saved model needs to read like it was trained."""

    alphabet: str = ALPHABET
    lines: LineSettings = field(default_factory=LineSettings)
    summary: dict[str, Any] = field(default_factory=dict)  # training data, epochs, val_cer, stop reason
    calibration: dict[str, Any] = field(default_factory=dict)  # per-field confidence calibration (vote format)
    lexicon: dict[str, Any] = field(default_factory=dict)  # Lexicon.to_json() of the training labels

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "lines": asdict(self.lines)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FieldReaderConfig":
        known = {k: v for k, v in data.items() if k not in RETIRED_KEYS}
        return cls(**{**known, "lines": LineSettings(**data.get("lines", {}))})


class FieldReader:
    """A trained (or stock) field reader: line arrays in, log-probabilities out."""

    #: lines per forward pass (memory stays bounded however many lines are read at once)
    batch_size: int = 16
    #: each line is right-padded to a multiple of this many columns and batched only with lines of
    #: the same padded width, so a line reads the same whatever else is read with it (the recognizer
    #: mixes the whole width; padding to a batch's widest line changed readings). Chosen on the
    #: held-out train forms: benchmarks/padding_benchmark.py
    pad_multiple: int = 64

    def __init__(self, net: OnnxRecognizer | None, config: FieldReaderConfig, onnx_file: Path | None = None,
                 threads: int = 1) -> None:
        self.net, self.config, self.onnx_file, self.threads = net, config, onnx_file, threads
        self.style = None  # a fitted style.StyleModel (saved with the model when set)
        self._session = None

    @classmethod
    def stock(cls, form: str | None = None, height: int = HEIGHT) -> "FieldReader":
        """The stock recognizer, set up to read ``form`` (a shipped form's name or a spec path;
        default the HSF top section): its lines and its field types' characters, each line
        ``height`` rows high."""
        if form is None:
            return cls(build_network(), FieldReaderConfig(lines=LineSettings(height=height)))
        from handwriting_pipeline.fieldreader.text import form_alphabet
        from handwriting_pipeline.fields.formspec import load_form

        alphabet = form_alphabet(load_form(form))
        return cls(build_network(alphabet=alphabet),
                   FieldReaderConfig(alphabet=alphabet, lines=LineSettings(form=form, height=height)))

    @property
    def form(self):
        """The form spec this reader reads (its lines, its fields)."""
        from handwriting_pipeline.fields.formspec import load_form

        return load_form(self.config.lines.form)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in self.net.state_dict().items()}, folder / WEIGHTS_FILE)
        export_onnx(self.net, folder / ONNX_FILE)
        (folder / CONFIG_FILE).write_text(json.dumps(self.config.to_json(), indent=2))
        from handwriting_pipeline.fieldreader.style import STYLE_FILE

        if self.style is not None:
            self.style.save(folder)
        elif (folder / STYLE_FILE).is_file():  # a style layer of older weights must not stay
            (folder / STYLE_FILE).unlink()
        return folder

    @classmethod
    def load(cls, folder: str | Path, with_torch: bool = False, threads: int = 1) -> "FieldReader":
        """A saved model; ``with_torch`` also builds the trainable torch network."""
        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{folder} holds no field reader ({CONFIG_FILE} missing)")
        config = FieldReaderConfig.from_json(json.loads((folder / CONFIG_FILE).read_text()))
        net = None
        if with_torch or not (folder / ONNX_FILE).is_file():
            net = build_network(alphabet=config.alphabet)
            net.load_state_dict(torch.load(folder / WEIGHTS_FILE, map_location="cpu"))
            net.eval()
        onnx_file = folder / ONNX_FILE if (folder / ONNX_FILE).is_file() else None
        from handwriting_pipeline.fieldreader.style import StyleModel

        reader = cls(net, config, onnx_file, threads)
        reader.style = StyleModel.load(folder)
        return reader

    @property
    def session(self):
        if self._session is None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._session = ort.InferenceSession(str(self.onnx_file), options, providers=["CPUExecutionProvider"])
        return self._session

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_session": None}

    def log_probs(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Per-line [frames, 1 + len(ALPHABET)] log-probabilities of a list of [3, 48, W] arrays."""
        groups: dict[int, list[int]] = {}
        for i, array in enumerate(arrays):
            groups.setdefault(padded_width(array.shape[2], self.pad_multiple), []).append(i)
        result: list[np.ndarray] = [np.empty(0)] * len(arrays)
        for width, members in sorted(groups.items()):
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                batch, frames = batch_arrays([arrays[i] for i in chunk], width)
                lp = self._forward(batch)
                for j, i in enumerate(chunk):
                    result[i] = lp[j, : frames[j]]
        return result

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """[N, 3, 48, W] -> [N, W / 8, 1 + len(ALPHABET)] log-probabilities."""
        if self.onnx_file is not None:
            probs = self.session.run(None, {self.session.get_inputs()[0].name: batch})[0]
            return np.log(np.clip(probs, 1e-12, None))
        with torch.no_grad():
            return torch.log_softmax(self.net(torch.from_numpy(batch), softmax=False), -1).numpy()
