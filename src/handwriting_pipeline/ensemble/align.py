"""Character-level alignment voting (a small ROVER) for fields where engines disagree.

Each candidate string is aligned to a backbone (the most trusted candidate) with Levenshtein
opcodes from ``rapidfuzz``; every backbone position then takes the character (or deletion)
with the most weight, and an insertion between two positions is kept only when more than half
of the total weight voted for it. Case is voted like any other character, so the result only
ever contains letters the engines actually read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein


def align_vote(candidates: Sequence[tuple[str, float]]) -> str:
    """Consensus string of weighted candidates ``[(text, weight), ...]``.

    The backbone is the heaviest candidate (ties: the first). With fewer than three
    candidates the backbone is returned unchanged: two readings that disagree cannot be
    out-voted position by position.

    >>> align_vote([("Portland", 1.0), ("Porthand", 0.9), ("Portlamd", 0.8)])
    'Portland'
    """
    candidates = [(str(text), float(weight)) for text, weight in candidates if str(text)]
    if not candidates:
        return ""
    backbone = max(candidates, key=lambda c: c[1])[0]
    if len(candidates) < 3:
        return backbone
    n = len(backbone)
    total = sum(w for _, w in candidates)
    # position votes: char (or "" = deleted) -> weight; insertion votes before position i
    positions: list[dict[str, float]] = [defaultdict(float) for _ in range(n)]
    insertions: list[dict[str, float]] = [defaultdict(float) for _ in range(n + 1)]
    for text, weight in candidates:
        for tag, i1, i2, j1, j2 in Levenshtein.opcodes(backbone, text):
            if tag == "equal" or (tag == "replace" and i2 - i1 == j2 - j1):
                for k in range(i2 - i1):
                    positions[i1 + k][text[j1 + k]] += weight
            elif tag == "replace":  # unequal lengths: pair what we can, rest is ins/del
                m = min(i2 - i1, j2 - j1)
                for k in range(m):
                    positions[i1 + k][text[j1 + k]] += weight
                for k in range(m, i2 - i1):
                    positions[i1 + k][""] += weight
                if j2 - j1 > m:
                    insertions[i1 + m][text[j1 + m : j2]] += weight
            elif tag == "delete":
                for k in range(i1, i2):
                    positions[k][""] += weight
            elif tag == "insert":
                insertions[i1][text[j1:j2]] += weight
    out: list[str] = []
    for i in range(n + 1):
        if insertions[i]:
            best, w = max(insertions[i].items(), key=lambda kv: (kv[1], kv[0]))
            if w > total / 2:
                out.append(best)
        if i < n:
            votes = positions[i]
            # ties keep the backbone's character
            best = max(votes.items(), key=lambda kv: (kv[1], kv[0] == backbone[i]))[0]
            out.append(best)
    return "".join(out)
