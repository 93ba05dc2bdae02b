"""Forced alignment: where in a line each character of a text was written.

:func:`viterbi_path` is the single best CTC alignment of a text against a line's per-frame
log-probabilities (the blank-interleaved state chain of CTC, max instead of sum). :func:`char_spans`
turns it into one frame span per character: each character owns the frames it is emitted on plus
half of the blank frames on either side, so the spans tile the line. :func:`frame_columns` maps a
frame span back to columns of the grey line that was fed to the recognizer (the recognizer's frame
stride is 8 input pixels; see :func:`~handwriting_pipeline.forms.lines.to_array`).
"""

from __future__ import annotations

import numpy as np

from handwriting_pipeline.fieldreader.text import encode
from handwriting_pipeline.forms.lines import HEIGHT, LineSettings, scaled_width

STRIDE = 8  # input columns per CTC frame


def viterbi_path(log_probs: np.ndarray, text: str) -> np.ndarray | None:
    """Per frame, the index of the character it emits (-1 for blank) on the best CTC alignment of
    ``text``; None when the text cannot fit the frames (too many characters)."""
    labels = encode(text)
    frames = log_probs.shape[0]
    if not labels:
        return np.full(frames, -1, dtype=np.int64)
    ext = np.zeros(2 * len(labels) + 1, dtype=np.int64)
    ext[1::2] = labels
    states = ext.size
    # a state may be entered from two states back when it is a symbol differing from that one
    skip = np.zeros(states, dtype=bool)
    skip[3::2] = ext[3::2] != ext[1:-2:2]
    emissions = log_probs[:, ext]
    options = np.full((3, states + 2), -np.inf)  # rows: stay, from s-1, from s-2 (two columns of padding)
    score = np.full(states, -np.inf)
    score[:2] = emissions[0, :2]
    back = np.zeros((frames, states), dtype=np.int8)  # 0 stay, 1 from s-1, 2 from s-2
    for t in range(1, frames):
        options[0, 2:] = score
        options[1, 3:] = score[:-1]
        options[2, 4:] = np.where(skip[2:], score[:-2], -np.inf)
        back[t] = options[:, 2:].argmax(axis=0)
        score = options[np.asarray(back[t], dtype=np.intp), np.arange(2, states + 2)] + emissions[t]
    end = states - 1 if score[-1] >= score[-2] else states - 2
    if not np.isfinite(score[end]):
        return None
    path = np.empty(frames, dtype=np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = end
        end -= back[t, end]
    return np.where(path % 2 == 1, path // 2, -1)


def char_spans(path: np.ndarray, n_chars: int) -> np.ndarray:
    """[n_chars, 3] per character: a frame span [start, stop) tiling the line (its emitted frames
    plus half the blank frames between it and its neighbours; the first and last reach the line
    ends) and the centre of its emitted frames."""
    frames = path.size
    emitted = path >= 0
    index = np.arange(frames)
    first = np.full(n_chars, frames, dtype=float)
    last = np.full(n_chars, -1, dtype=float)
    np.minimum.at(first, path[emitted], index[emitted])
    np.maximum.at(last, path[emitted], index[emitted])
    bounds = np.concatenate([[0.0], (last[:-1] + 1 + first[1:]) / 2, [frames]])
    starts, stops = np.floor(bounds[:-1]), np.floor(bounds[1:])
    stops = np.maximum(stops, starts + 1)
    return np.stack([starts, stops, (first + last + 1) / 2], axis=1)


def frame_columns(spans: np.ndarray, line_width: int, settings: LineSettings, line_height: int) -> np.ndarray:
    """Frame positions (any shape) -> columns of the grey line (of ``line_width`` x ``line_height``)."""
    width = (scaled_width(np.empty((line_height, line_width)), settings) + 7) // 8 * 8
    scale = width / line_width  # the recognizer input is the line resized to HEIGHT x width
    columns = np.round(spans * STRIDE / scale).astype(int)
    return np.clip(columns, 0, line_width)


def align(log_probs: np.ndarray, text: str, line_shape: tuple[int, int],
          settings: LineSettings) -> np.ndarray | None:
    """[len(text), 3] per character of ``text``: its column span [x0, x1) in the grey line and the
    column at the centre of its emitted frames (None when the text cannot be aligned)."""
    chars = [c for c in text if encode(c)]
    if len(chars) != len(text):
        raise ValueError(f"{text!r}: characters outside the reader's alphabet")
    path = viterbi_path(log_probs, text)
    if path is None or not text:
        return None
    return frame_columns(char_spans(path, len(text)), line_shape[1], settings, line_shape[0])


__all__ = ["HEIGHT", "align", "char_spans", "frame_columns", "viterbi_path"]
