"""Joint decoding: the Donut decoder's beam rescored with the field reader's CTC score.

For each form the decoder's beam search returns ``num_beams`` sequences with their log
probabilities (``length_penalty=0``: plain sums). Each sequence is parsed to the four fields and
written as the field reader's two line texts (:func:`~handwriting_pipeline.fieldreader.text.line_targets`:
``DATE`` and ``CITY|STATE|ZIP``); the field reader scores those texts against its own reading of
the same lines (``log P(text | line)`` over all CTC alignments,
:func:`~handwriting_pipeline.fieldreader.decode.text_log_likelihood`). The answer is the
candidate with the best ``decoder + weight * ctc`` score (``weight = 0``: plain beam search).
Works with any Donut whose preprocessing is ``text_lines`` (the lines are cut once and serve both).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from handwriting_pipeline.donut.grammar import token2json
from handwriting_pipeline.donut.inference import _clean_sequence
from handwriting_pipeline.donut.model import DonutBundle
from handwriting_pipeline.donut.text_lines import line_settings, lines_to_pixels
from handwriting_pipeline.fieldreader.decode import text_log_likelihood
from handwriting_pipeline.fieldreader.text import line_targets
from handwriting_pipeline.fields import empty_fields
from handwriting_pipeline.forms.lines import LINES, cut_lines, to_array


def ctc_score(fields: dict[str, str], log_probs: dict[str, np.ndarray]) -> float:
    """Sum over both lines of the field reader's ``log P(line text | line image)`` for ``fields``."""
    texts = line_targets(fields)
    return float(sum(text_log_likelihood(log_probs[name], [texts[name]])[0] for name in LINES))


class JointPredictor:
    """Batched beam search with CTC rescoring (``weights``: one answer set per weight, in one pass).

    Args:
        bundle: a ``text_lines`` Donut bundle.
        reader: a :class:`~handwriting_pipeline.fieldreader.model.FieldReader` (stock or saved).
        num_beams: beam size (candidates rescored per form).
        weights: CTC weights to report answers for (0 = the decoder's own beam choice).
    """

    def __init__(self, bundle: DonutBundle, reader: Any, num_beams: int = 4, weights: Sequence[float] = (0.0, 1.0),
                 batch_size: int = 16) -> None:
        if bundle.preprocessing.encoder != "text_lines":
            raise ValueError("joint decoding needs a text_lines Donut (its lines are the field reader's)")
        self.bundle, self.reader = bundle, reader
        self.num_beams, self.weights, self.batch_size = int(num_beams), [float(w) for w in weights], int(batch_size)
        self.model = bundle.model.eval()

    @torch.no_grad()
    def _candidates(self, pixels: torch.Tensor) -> list[list[tuple[dict[str, str], float]]]:
        model, tokenizer, k = self.model, self.bundle.processor.tokenizer, self.num_beams
        device = next(model.parameters()).device
        start = torch.full((pixels.shape[0], 1), model.config.decoder_start_token_id, dtype=torch.long, device=device)
        out = model.generate(pixel_values=pixels.to(device), decoder_input_ids=start,
                             max_length=self.bundle.preprocessing.max_length, num_beams=k, num_return_sequences=k,
                             length_penalty=0.0, early_stopping=True, do_sample=False, return_dict_in_generate=True,
                             output_scores=True)
        texts = tokenizer.batch_decode(out.sequences, skip_special_tokens=False)
        scores = out.sequences_scores.float().cpu().tolist()
        cands = [(token2json(_clean_sequence(t, tokenizer), processor=self.bundle.processor), s)
                 for t, s in zip(texts, scores)]
        return [cands[i * k: (i + 1) * k] for i in range(pixels.shape[0])]

    def predict(self, images: Sequence[Any]) -> dict[float, list[dict[str, str]]]:
        """``{weight: [fields per image]}``; an image whose lines cannot be cut gets "None" values."""
        prep = self.bundle.preprocessing
        settings = line_settings(prep.lines)
        answers = {w: [empty_fields() for _ in images] for w in self.weights}
        ready: list[tuple[int, torch.Tensor, dict[str, np.ndarray]]] = []
        for i, image in enumerate(images):
            try:
                lines = cut_lines(image, settings)
            except Exception:  # noqa: BLE001 - a bad image gives "None" values
                continue
            arrays = [to_array(lines[name], self.reader.config.lines) for name in LINES]
            ready.append((i, lines_to_pixels(lines, settings, prep.line_widths), dict(zip(LINES, arrays))))
        for b in range(0, len(ready), self.batch_size):
            chunk = ready[b: b + self.batch_size]
            log_probs = self.reader.log_probs([a for _, _, arrays in chunk for a in arrays.values()])
            per_form = [dict(zip(LINES, log_probs[j * len(LINES): (j + 1) * len(LINES)])) for j in range(len(chunk))]
            cands = self._candidates(torch.stack([p for _, p, _ in chunk]))
            for (i, _, _), lp, options in zip(chunk, per_form, cands):
                ctc = [ctc_score(fields, lp) for fields, _ in options]
                for w in self.weights:
                    total = [s + w * (c if math.isfinite(c) else -1e4) for (_, s), c in zip(options, ctc)]
                    answers[w][i] = options[int(np.argmax(total))][0]
        return answers


__all__ = ["JointPredictor", "ctc_score"]
