"""The written shape of each character of a reading: glyph boxes, the line's own scale, gaps.

A reading of a line (its text, aligned to columns by :mod:`.align`) is split into **glyphs**
(letters, digits, ``- / '``) and the **gaps** after them (what lies between two glyphs: the
punctuation ``. ,``, a space, the field separator ``|``). Glyph boxes come from the connected
components of the binarized line (``cv2.connectedComponentsWithStats``; HSF handprint is mostly
unconnected letters): a component belongs to the character whose column span holds its centre;
a component wider than its character's span (joined letters) is shared by columns. Components
much smaller than the line's letters are **marks** (dots, commas, i-dots): never part of a
letter's box, they are what the gap features look at.

The line's own scale, estimated from the reading itself: the baseline (median bottom of glyphs
without descenders), the cap height (median height of digits and capitals whose two cases look
different) and the x-height (median height of lowercase x-height letters). Features are ratios
to these, so they describe this writer's hand, not the scan's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from handwriting_pipeline.fieldreader.text import SEP

PUNCT = ".,"
GAP_CHARS = PUNCT + " " + SEP
# letters whose capital and small forms are different shapes: they tell the writer's case and scale
DISTINCT = set("abdefghmqrtABDEFGHMQRT")
X_HEIGHT = set("acemnorsuvwxz")
DESCENDERS = set("gjpqy")
MARK_SHARE = 0.45  # a component lower and narrower than this share of the line's letter height is a mark


@dataclass
class Parsed:
    """A line's text as glyphs and the gaps after them (``lead``: anything before the first glyph)."""

    glyphs: list[str]
    gaps: list[str]  # the text after each glyph, up to the next glyph
    lead: str = ""
    positions: list[int] = field(default_factory=list)  # each glyph's index in the text

    @classmethod
    def of(cls, text: str) -> "Parsed":
        glyphs, gaps, positions, lead = [], [], [], ""
        for i, c in enumerate(text):
            if c in GAP_CHARS:
                if glyphs:
                    gaps[-1] += c
                else:
                    lead += c
            else:
                glyphs.append(c)
                gaps.append("")
                positions.append(i)
        return cls(glyphs, gaps, lead, positions)

    def key(self) -> str:
        """What style never changes: the glyphs without case, and where the separators are."""
        return "".join(g.upper() + gap.count(SEP) * SEP for g, gap in zip(self.glyphs, self.gaps))


def gap_text(punct: str, space: bool, sep: str) -> str:
    return punct + (" " if space else "") + sep


def split_gap(gap: str) -> tuple[str, bool, str]:
    """A gap's text -> (punctuation, space?, separators)."""
    return "".join(c for c in gap if c in PUNCT), " " in gap, "".join(c for c in gap if c == SEP)


@dataclass
class LineInk:
    """The connected components of a grey line (ink dark) and its letter-height reference."""

    labels: np.ndarray
    stats: np.ndarray  # [n, 5] x, y, w, h, area (row 0 is the background)
    height: int
    width: int
    ref: float  # a typical letter component height (75th percentile of the components)
    marks: np.ndarray  # bool per component
    noise: np.ndarray  # bool per component (and the background): neither letter nor mark

    @classmethod
    def of(cls, line: np.ndarray) -> "LineInk":
        ink = (line < 128).astype(np.uint8)
        _, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
        height, width = line.shape
        x, y, w, h = (stats[:, i] for i in range(4))
        # what the line cut leaves that is no writing: pieces of the printed rules (long and thin)
        # and of the printed labels above the box (wholly in the top fifth)
        noise = ((h <= 4) & (w > 4 * h)) | ((w <= 3) & (h > 4 * w)) | (y + h < 0.2 * height)
        noise[0] = True
        if noise.any():
            stats = stats.copy()
            stats[noise, 2:] = 0  # no width, height or area: never a letter, never a mark
        heights = stats[~noise, 3]
        ref = float(np.sort(heights)[(3 * (heights.size - 1)) // 4]) if heights.size else float(height)  # 75th pct
        marks = (stats[:, 3] < MARK_SHARE * ref) & (stats[:, 2] < MARK_SHARE * ref * 1.6) & ~noise
        return cls(labels, stats, height, width, max(ref, 1.0), marks, noise)


@dataclass
class Glyph:
    char: str
    left: int
    right: int
    top: int
    bottom: int  # exclusive
    span: tuple[int, int]  # the character's column span from the alignment

    @property
    def h(self) -> int:
        return self.bottom - self.top


def _box(ink: LineInk, parts: list[tuple[int, int, int]]) -> tuple[int, int, int, int] | None:
    """Bounding box (left, right, top, bottom) of components restricted to column ranges."""
    boxes = []
    for k, x0, x1 in parts:
        x, y, w, h, _ = ink.stats[k]
        if x0 <= x and x + w <= x1:
            boxes.append((x, x + w, y, y + h))
            continue
        rows, cols = np.nonzero(ink.labels[y:y + h, max(x, x0):min(x + w, x1)] == k)
        if rows.size:
            boxes.append((max(x, x0) + cols.min(), max(x, x0) + cols.max() + 1, y + rows.min(), y + rows.max() + 1))
    if not boxes:
        return None
    b = np.array(boxes)
    return int(b[:, 0].min()), int(b[:, 1].max()), int(b[:, 2].min()), int(b[:, 3].max())


def glyph_boxes(ink: LineInk, parsed: Parsed, columns: np.ndarray) -> list[Glyph]:
    """One box per glyph of ``parsed`` (``columns``: the text's per-character column spans and
    centres, :func:`.align.align`)."""
    spans = columns[parsed.positions, :2] if parsed.glyphs else np.zeros((0, 2), int)
    centres = columns[parsed.positions, 2] if parsed.glyphs else np.zeros(0)  # where the reader saw them
    parts: list[list[tuple[int, int, int]]] = [[] for _ in parsed.glyphs]
    letters = np.flatnonzero(~ink.marks & ~ink.noise) if len(spans) else np.zeros(0, int)
    x0 = ink.stats[letters, 0][:, None]
    x1 = x0 + ink.stats[letters, 2][:, None]
    overlap = np.minimum(spans[None, :, 1], x1) - np.maximum(spans[None, :, 0], x0)  # [components, glyphs]
    covers = overlap > 0.5 * (spans[None, :, 1] - spans[None, :, 0])
    nearest = np.abs(centres[None, :] - (x0 + x1) / 2).argmin(axis=1) if len(spans) else np.zeros(0, int)
    for row, k in enumerate(letters):
        covered = np.flatnonzero(covers[row])
        if covered.size > 1:  # joined letters: each takes the component's columns in its span
            for i in covered:
                parts[i].append((int(k), int(spans[i][0]), int(spans[i][1])))
        else:
            parts[nearest[row]].append((int(k), 0, ink.width))
    glyphs = []
    for i, char in enumerate(parsed.glyphs):
        a, b = int(spans[i][0]), int(spans[i][1])
        box = _box(ink, parts[i])
        if box is None:  # no letter component (a hyphen, or letters the alignment put elsewhere)
            in_span = [(k, a, b) for k in np.unique(ink.labels[:, a:b]) if not ink.noise[k]]
            box = _box(ink, in_span) or (a, b, ink.height // 2, ink.height // 2 + 1)
        glyphs.append(Glyph(char, box[0], box[1], box[2], box[3], (a, b)))
    return glyphs


@dataclass
class LineScale:
    baseline: float
    cap: float
    x: float  # NaN when the reading has no lowercase x-height letter
    ref: float
    gap: float  # median gap between neighbouring glyphs (at least a sixth of the letter height)

    @classmethod
    def of(cls, glyphs: list[Glyph], ink: LineInk) -> "LineScale":
        bottoms = [g.bottom for g in glyphs if g.char not in DESCENDERS and g.char.isalnum()]
        caps = [g.h for g in glyphs if g.char.isdigit() or (g.char in DISTINCT and g.char.isupper())]
        xs = [g.h for g in glyphs if g.char in X_HEIGHT]
        gaps = [b.left - a.right for a, b in zip(glyphs, glyphs[1:])]
        ref = ink.ref
        return cls(float(np.median(bottoms)) if bottoms else ink.height * 0.7,
                   float(np.median(caps)) if caps else ref, float(np.median(xs)) if xs else np.nan, ref,
                   max(float(np.median(gaps)) if gaps else 0.0, ref / 6))


def _share_upper(chars: list[str]) -> float:
    letters = [c for c in chars if c in DISTINCT]
    return float(np.mean([c.isupper() for c in letters])) if letters else np.nan


CASE_FEATURES = ("letter", "h_ref", "h_cap", "h_x", "top_cap", "bottom_cap", "w_cap", "top_line", "bottom_line",
                 "h_line", "cap_line", "x_cap", "word_start", "word_index", "word_length", "date_line", "field",
                 "word_upper", "line_upper", "same_letter_upper", "other_line_upper")
GEOMETRY = set(CASE_FEATURES[1:12])


def case_features(parsed: Parsed, glyphs: list[Glyph], scale: LineScale, height: int, date_line: bool,
                  other: str = "") -> np.ndarray:
    """[letters, len(CASE_FEATURES)] for the letter glyphs (in order of ``letter_indices``);
    ``other``: the reading of the form's other line (the same writer)."""
    rows = []
    word, words = [], []
    for i, (char, gap) in enumerate(zip(parsed.glyphs, parsed.gaps)):
        word.append(i)
        if gap and (" " in gap or SEP in gap or not char.isalpha()):
            words.append(word)
            word = []
    if word:
        words.append(word)
    word_of = {i: w for w in words for i in w}
    fields = np.cumsum([0] + [gap.count(SEP) for gap in parsed.gaps])[:-1]
    chars = parsed.glyphs
    for i in letter_indices(parsed):
        g, w = glyphs[i], word_of[i]
        others = [chars[j] for j in range(len(chars)) if j != i]
        same = [chars[j] for j in range(len(chars)) if j != i and chars[j].lower() == chars[i].lower()]
        rows.append([ord(chars[i].lower()) - 97, g.h / scale.ref, g.h / scale.cap, g.h / scale.x,
                     (scale.baseline - g.top) / scale.cap, (g.bottom - scale.baseline) / scale.cap,
                     (g.right - g.left) / scale.cap, g.top / height, g.bottom / height, g.h / height,
                     scale.cap / height, scale.x / scale.cap, float(w[0] == i), float(w.index(i)), float(len(w)),
                     float(date_line), float(fields[i]), _share_upper([chars[j] for j in w if j != i]),
                     _share_upper(others), float(np.mean([c.isupper() for c in same])) if same else np.nan,
                     _share_upper(list(other))])
    return np.array(rows, dtype=np.float64).reshape(-1, len(CASE_FEATURES))


def letter_indices(parsed: Parsed) -> list[int]:
    return [i for i, c in enumerate(parsed.glyphs) if c.isalpha()]


GAP_FEATURES = ("left_kind", "right_kind", "last", "date_line", "field", "sep", "gap_cap", "gap_median", "marks",
                "mark_h", "mark_w", "mark_area", "mark_bottom", "mark_top", "mark_pos", "other_dots", "other_commas")


def _kind(char: str | None) -> float:
    if char is None:
        return 4.0
    return 0.0 if char.isdigit() else 1.0 if char.isupper() else 2.0 if char.islower() else 3.0


def gap_features(parsed: Parsed, glyphs: list[Glyph], ink: LineInk, scale: LineScale, date_line: bool,
                 other: str = "") -> np.ndarray:
    """[glyphs, len(GAP_FEATURES)]: what lies after each glyph (the last one: up to the line's end);
    ``other``: the reading of the form's other line (a writer who dots the date dots the state)."""
    marks = np.flatnonzero(ink.marks)
    mx = ink.stats[marks, 0] + ink.stats[marks, 2] / 2
    fields = np.cumsum([0] + [gap.count(SEP) for gap in parsed.gaps])[:-1]
    rows = []
    for i, g in enumerate(glyphs):
        nxt = glyphs[i + 1] if i + 1 < len(glyphs) else None
        lo, hi = (g.left + g.right) / 2, ((nxt.left + nxt.right) / 2 if nxt else ink.width)
        inside = marks[(mx > lo) & (mx < hi) & (ink.stats[marks, 1] + ink.stats[marks, 3] > scale.baseline - scale.cap / 2)]
        gap = (nxt.left - g.right) if nxt else (ink.width - g.right)
        mark = [np.nan] * 6
        if inside.size:
            k = inside[np.argmax(ink.stats[inside, 1] + ink.stats[inside, 3])]  # the lowest mark
            x, y, w, h, area = ink.stats[k]
            mark = [h / scale.cap, w / scale.cap, area / scale.cap ** 2, (y + h - scale.baseline) / scale.cap,
                    (y - scale.baseline) / scale.cap, (x + w / 2 - g.right) / max(1.0, gap)]
        rows.append([_kind(g.char), _kind(nxt.char if nxt else None), float(nxt is None), float(date_line),
                     float(fields[i]), float(SEP in parsed.gaps[i]), gap / scale.cap, gap / max(1.0, scale.gap),
                     float(inside.size), *mark, float(other.count(".")), float(other.count(","))])
    return np.array(rows, dtype=np.float64).reshape(-1, len(GAP_FEATURES))


@dataclass
class LineStyle:
    """Everything the style model needs about one reading of one line."""

    parsed: Parsed
    case: np.ndarray  # case features of the letters
    gaps: np.ndarray  # gap features of the glyphs


def line_style(line: np.ndarray, text: str, columns: np.ndarray, date_line: bool, other: str = "") -> LineStyle:
    """The features of a reading ``text`` of a grey ``line`` (``columns`` from :func:`.align.align`;
    ``other``: the reading of the form's other line)."""
    parsed = Parsed.of(text)
    ink = LineInk.of(line)
    glyphs = glyph_boxes(ink, parsed, columns)
    scale = LineScale.of(glyphs, ink)
    return LineStyle(parsed, case_features(parsed, glyphs, scale, ink.height, date_line, other),
                     gap_features(parsed, glyphs, ink, scale, date_line, other))


__all__ = ["CASE_FEATURES", "GAP_FEATURES", "GEOMETRY", "LineStyle", "Parsed", "gap_text", "line_style", "split_gap"]
