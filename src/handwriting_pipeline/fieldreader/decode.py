"""Turning the recognizer's per-frame log-probabilities into text.

* :func:`greedy`: best symbol per frame, repeats merged, blanks dropped.
* :func:`text_log_likelihood`: log P(text | image) summed over all CTC alignments (the CTC
  forward algorithm, ``torch.nn.functional.ctc_loss``). It scores any candidate string — a
  gazetteer city in the writer's own case, a state code with or without its dot — against the
  image, so knowledge can pick between readings without overruling what is written.
* :func:`beam_search`: CTC prefix beam search, the n best readings with their likelihoods.
* :func:`one_thread`: the context decoding runs in (its small torch / sklearn calls on one thread).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from threadpoolctl import threadpool_limits

from handwriting_pipeline.fieldreader.text import ALPHABET, decode_indices, encode


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the small per-line torch and sklearn calls of decoding (exact CTC likelihoods, the style
    classifiers) on one thread: on a few frames a thread pool costs more than it gives (measured
    3.5x slower with two threads on a busy 2-core machine). Results are the same."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


def greedy(log_probs: np.ndarray, alphabet: str = ALPHABET) -> str:
    """Best path decoding of one line ([frames, symbols] log-probabilities)."""
    best = log_probs.argmax(axis=1)
    keep = np.concatenate([[True], best[1:] != best[:-1]]) & (best > 0)
    return decode_indices(best[keep].tolist(), alphabet)


def text_log_likelihood(log_probs: np.ndarray, texts: list[str]) -> np.ndarray:
    """log P(text | line) for each text (``-inf`` where a text cannot fit the frames)."""
    if not texts:
        return np.zeros(0)
    frames = log_probs.shape[0]
    lp = torch.from_numpy(np.ascontiguousarray(log_probs, dtype=np.float32))
    lp = lp[:, None, :].expand(frames, len(texts), lp.shape[1])
    targets = [encode(t) for t in texts]
    flat = torch.tensor([i for t in targets for i in t], dtype=torch.long)
    lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    nll = F.ctc_loss(lp, flat, torch.full((len(texts),), frames, dtype=torch.long), lengths, blank=0,
                     reduction="none", zero_infinity=False)
    return -nll.numpy().astype(np.float64)


def _logsumexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_search(log_probs: np.ndarray, beam: int = 8, prune: float = -12.0,
                alphabet: str = ALPHABET) -> list[tuple[str, float]]:
    """CTC prefix beam search: up to ``beam`` (text, log-likelihood) pairs, best first."""
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, -math.inf)}  # prefix -> (p_blank, p_symbol)
    for frame in log_probs:
        candidates = np.flatnonzero(frame >= max(prune, frame.max() - 10))
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (pb, ps) in beams.items():
            total = _logsumexp(pb, ps)
            for s in candidates:
                p = float(frame[s])
                if s == 0:
                    nxt[prefix][0] = _logsumexp(nxt[prefix][0], total + p)
                    continue
                extended = prefix + (int(s),)
                if prefix and prefix[-1] == s:
                    nxt[extended][1] = _logsumexp(nxt[extended][1], pb + p)
                    nxt[prefix][1] = _logsumexp(nxt[prefix][1], ps + p)
                else:
                    nxt[extended][1] = _logsumexp(nxt[extended][1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logsumexp(*kv[1]), reverse=True)[:beam]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    out = [(decode_indices(list(k), alphabet), _logsumexp(*v)) for k, v in beams.items()]
    return sorted(out, key=lambda item: item[1], reverse=True)
