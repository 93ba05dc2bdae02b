"""Real-glyph synthetic lines (issue #20, lever 4): new DATE and CITY|STATE|ZIP lines written with
the train writers' own glyphs, for fine-tuning the field reader.

**Glyph bank.** Each real training line is split into its written pieces (connected components,
:class:`.glyphs.LineInk`, merged where their columns overlap: a broken letter, an ``i`` and its
dot) and its words (at its widest gaps, as many as the label has word breaks). A word whose pieces
match its characters one for one, in order (dots and commas small marks, letters and digits not),
gives one glyph per character: its binary ink and its top against the line's baseline
(:class:`.glyphs.LineScale`); a word of joined letters gives nothing. (The forced alignment of
:mod:`.align` is not used to cut glyphs: its CTC spans run up to a glyph late — in ``AUG 16, 1989``
the span of the second ``1`` covers the ``9`` — which put the wrong ink under a character; the
order of the pieces does not.) A line the trained reader does not read within one edit of its
label is left out (the label may not say what the ink says). Per writer (form) the bank keeps
per character the glyphs, the dots and commas with their distance from the glyph before, the
measured gaps between letters, at spaces and at field separators, and the writer's cap height.

**A line.** A writer is drawn, then a text: the labels' own values (with their case, dots and
commas) or fresh values from :mod:`handwriting_pipeline.synthetic.values`, re-cased like the labels
(capitals inside words ``ChiNook``, ``Tx.`` vs ``TX.``, a trailing comma, ``Aug. 12,1989``). Each
character is one of the writer's own glyphs of exactly that character, placed at the writer's own
height against the baseline. A letter the writer wrote only in the other case is written in that
case (and the text says so: a writer of capitals writes capitals); a character the writer never
wrote comes from another writer, scaled by the two writers' cap heights, and a text that would need
more than half its characters lent is drawn again. A case is never made by scaling the other case
of the same letter: in handprint case *is* size, so a scaled ``O`` is not an honest ``o``. Gaps are
drawn from the writer's measured gaps (the writers' median, in cap heights, where it has none).
The canvas has the height and baseline of the writer's own line of that kind, and the ink is
binary (0 / 255) like the scans. Everything is drawn from one ``numpy`` generator: the same seed
gives the same pixels and texts.
"""

from __future__ import annotations

import calendar
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from rapidfuzz.distance import Levenshtein

from handwriting_pipeline.config import SyntheticLinesSettings
from handwriting_pipeline.fieldreader.decode import greedy
from handwriting_pipeline.fieldreader.glyphs import PUNCT, Glyph, LineInk, LineScale, Parsed
from handwriting_pipeline.fieldreader.text import ALPHABET, SEP
from handwriting_pipeline.fieldreader.training import Line
from handwriting_pipeline.forms.lines import has_ink, to_array, trim_horizontally
from handwriting_pipeline.synthetic.values import MONTH_SHORT, sample_date, sample_place, style_state

logger = logging.getLogger(__name__)
# letters whose capital is the small letter drawn bigger: the case a writer mixes inside words
SIZE_PAIRS = set("ckmnopsuvwxz")


@dataclass
class Ink:
    """One piece of a writer's ink: a binary crop (ink 0) and where it sits against the baseline."""

    image: np.ndarray
    top: float  # the crop's top row minus the baseline of its line (pixels; negative = above)
    lead: float = 0.0  # for a dot/comma: gap between the glyph before it and the mark


@dataclass
class Writer:
    """A writer's glyph bank: the characters and marks of their two lines, their scale and gaps."""

    name: str
    cap: float  # cap height (pixels)
    lines: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (line height, baseline)
    glyphs: dict[str, list[Ink]] = field(default_factory=dict)
    marks: dict[str, list[Ink]] = field(default_factory=dict)
    gaps: dict[str, list[float]] = field(default_factory=lambda: {"letter": [], "space": [], "field": []})
    texts: dict[str, str] = field(default_factory=dict)  # key -> what the writer wrote on that line

    def has(self, char: str) -> bool:
        return char in self.glyphs or char in self.marks


def ink_groups(ink: LineInk) -> list[list[int]]:
    """The line's written pieces left to right: connected components whose columns overlap by more
    than half the narrower one are one piece (a letter broken in two, an ``i`` and its dot)."""
    order = [int(k) for k in np.argsort(ink.stats[:, 0], kind="stable") if not ink.noise[k] and ink.stats[k, 3] > 0]
    groups: list[list[int]] = []
    right = 0
    for k in order:
        x, w = int(ink.stats[k, 0]), int(ink.stats[k, 2])
        if groups:
            left = min(int(ink.stats[j, 0]) for j in groups[-1])
            if min(right, x + w) - max(left, x) > 0.5 * min(w, right - left):
                groups[-1].append(k)
                right = max(right, x + w)
                continue
        groups.append([k])
        right = x + w
    return groups


def _fits(ink: LineInk, chars: str, groups: list[list[int]]) -> bool:
    """One piece per character, dots and commas small marks, letters and digits not."""
    if len(chars) != len(groups):
        return False
    for char, group in zip(chars, groups):
        marks = bool(ink.marks[group].all())
        if (char in PUNCT and not marks) or (char.isalnum() and marks):
            return False
    return True


def matched_pieces(ink: LineInk, text: str) -> list[tuple[str, list[int] | None]] | None:
    """Each written character of ``text`` (all but spaces and ``|``) with its piece of ink, or None
    where its word's ink does not match it piece by piece (joined letters). The line is split into
    words at its widest gaps (as many as the text has word breaks); a word is matched only when it
    has exactly one piece per character, its dots and commas are small marks and its letters and
    digits are not. None when the line's words cannot be found."""
    words = [w for w in text.replace(SEP, " ").split(" ") if w]
    groups = ink_groups(ink)
    if len(groups) < len(words) or not words:
        return None
    lefts = np.array([ink.stats[g, 0].min() for g in groups])
    rights = np.array([(ink.stats[g, 0] + ink.stats[g, 2]).max() for g in groups])
    gaps = lefts[1:] - np.maximum.accumulate(rights)[:-1]
    breaks = np.sort(np.argsort(-gaps, kind="stable")[: len(words) - 1]) + 1 if len(words) > 1 else np.zeros(0, int)
    if len(words) > 1 and len(gaps) >= len(words):  # the word breaks must stand out from the letter gaps
        inner = np.delete(gaps, breaks - 1)
        if gaps[breaks - 1].min() <= max(2 * float(np.median(inner)), 0.15 * ink.ref):
            return None
    out: list[tuple[str, list[int] | None]] = []
    for word, part in zip(words, np.split(np.arange(len(groups)), breaks)):
        pieces = [groups[i] for i in part]
        fits = _fits(ink, word, pieces)
        out += [(c, pieces[i] if fits else None) for i, c in enumerate(word)]
    return out


def _piece(ink: LineInk, char: str, group: list[int]) -> tuple[Glyph, np.ndarray]:
    """A piece's glyph box and its binary ink (only the piece's own components)."""
    x, y, w, h = (ink.stats[group, i] for i in range(4))
    left, top, right, bottom = int(x.min()), int(y.min()), int((x + w).max()), int((y + h).max())
    mask = np.isin(ink.labels[top:bottom, left:right], group)
    return Glyph(char, left, right, top, bottom, (left, right)), np.where(mask, 0, 255).astype(np.uint8)


def plausible(char: str, image: np.ndarray, top: float, cap: float, line_height: int) -> bool:
    """Whether a cut glyph is one character: not joined to a piece of the box's rules (taller than
    60 % of the cut line, too wide, reaching far below the baseline without a descender, or far
    above the cap height)."""
    height, width = image.shape
    wide = 2.2 if char in "mwMW" else 1.6
    low = 0.7 if char in "gjpqy" else 0.3
    return (height <= 0.6 * line_height and width <= wide * cap and top >= -1.6 * cap
            and top + height <= low * cap)


def add_line(writer: Writer, line: np.ndarray, text: str, key: str) -> float | None:
    """Bank the glyphs, marks and gaps of the matched words of one real line of ``writer`` (whose
    text is ``text``); returns the line's cap height (None when no word matched)."""
    ink, parsed = LineInk.of(line), Parsed.of(text)
    matched = matched_pieces(ink, text) if not parsed.lead else None
    if not matched or all(group is None for _, group in matched):
        return None
    pieces = [None if group is None else _piece(ink, char, group) for char, group in matched]
    letters = [p for p, (char, _) in zip(pieces, matched) if char not in PUNCT]  # one per parsed glyph
    scale = LineScale.of([p[0] for p in letters if p is not None and p[0].h <= 0.6 * line.shape[0]], ink)
    writer.lines[key], writer.texts[key] = (line.shape[0], scale.baseline), text
    previous = None
    for piece in pieces:
        if piece is None:
            previous = None
            continue
        glyph, image = piece
        top = glyph.top - scale.baseline
        if glyph.char in PUNCT:
            if previous is not None:
                writer.marks.setdefault(glyph.char, []).append(Ink(image, top, float(glyph.left - previous.right)))
            continue
        if plausible(glyph.char, image, top, scale.cap, line.shape[0]):
            writer.glyphs.setdefault(glyph.char, []).append(Ink(image, top))
        previous = glyph
    for a, b, gap in zip(letters, letters[1:], parsed.gaps):
        kind = "field" if SEP in gap else "space" if " " in gap else "letter" if not gap else ""
        if kind and a is not None and b is not None:
            writer.gaps[kind].append(float(b[0].left - a[0].right))
    return scale.cap


def glyph_bank(reader: Any | None, lines: Sequence[Line], max_edits: int = 1, batch: int = 64,
               progress: bool = True) -> dict[str, Writer]:
    """Per writer (form), the glyph bank of its lines. ``reader``: a trained field reader; a line
    it does not read within ``max_edits`` of its label is left out (the label may not say what the
    ink says); None: no such check."""
    from tqdm.auto import tqdm

    usable = [ln for ln in lines if ln.text and has_ink(ln.image) and set(ln.text) <= set(ALPHABET)]
    writers: dict[str, Writer] = {}
    caps: dict[str, list[float]] = {}
    for start in tqdm(range(0, len(usable), batch), desc="glyph bank", disable=not progress, leave=False):
        chunk = usable[start:start + batch]
        if reader is not None:
            readings = [greedy(lp) for lp in reader.log_probs([to_array(ln.image, reader.config.lines) for ln in chunk])]
            chunk = [ln for ln, read in zip(chunk, readings) if Levenshtein.distance(read, ln.text) <= max_edits]
        for ln in chunk:
            writer = writers.setdefault(ln.form, Writer(ln.form, 0.0))
            cap = add_line(writer, ln.image, ln.text, ln.key)
            if cap is not None:
                caps.setdefault(ln.form, []).append(cap)
    for name, writer in writers.items():
        writer.cap = float(np.median(caps[name])) if caps.get(name) else 0.0
    return {n: w for n, w in sorted(writers.items()) if w.glyphs and w.lines and w.cap > 0}


# --------------------------------------------------------------------------- texts
@dataclass
class Vocabulary:
    """What the labels of the fit forms wrote: DATE values and (CITY, STATE, ZIP) triples, as written."""

    dates: list[str]
    places: list[tuple[str, str, str]]

    @classmethod
    def of(cls, lines: Sequence[Line]) -> "Vocabulary":
        dates = sorted({ln.text for ln in lines if ln.key == "DATE" and ln.text})
        places = sorted({tuple(ln.text.split(SEP)) for ln in lines if ln.key == "CSZ" and ln.text.count(SEP) == 2})
        return cls(dates, places)  # type: ignore[arg-type]


def recase(rng: np.random.Generator, text: str) -> str:
    """The text as written, or re-cased like the labels: UPPER, Title, lower, or capitals inside
    words on the letters whose capital is the small letter drawn bigger (``LebaNoN``, ``ChiNook``)."""
    style = rng.choice(["keep", "upper", "title", "lower", "inner"], p=[0.4, 0.15, 0.15, 0.05, 0.25])
    if style == "upper":
        return text.upper()
    if style == "title":
        return text.title()
    if style == "lower":
        return text.lower()
    if style == "inner":
        base = text.title() if rng.random() < 0.7 else text.lower()
        flips = rng.random(len(base)) < 0.35
        return "".join(c.upper() if f and c.lower() in SIZE_PAIRS else c for c, f in zip(base, flips))
    return text


def restate(rng: np.random.Generator, state: str) -> str:
    """A state as written with another case / dot: ``TX`` -> ``Tx.``, ``TX.``, ``tx`` ..."""
    body = state.rstrip(".")
    if len(body) == 2 and body.isalpha():
        body = rng.choice([body.upper(), body.title(), body.lower(), body[0].upper() + body[1]], p=[0.5, 0.3, 0.1, 0.1])
    dot = rng.random() < 0.35
    return body + ("." if dot else "")


def month_date(rng: np.random.Generator) -> str:
    """A spelled-out month date in the labels' variants: ``Aug. 12, 1989``, ``AUG 12,1989``, ``Sept 5 89``."""
    month = int(rng.integers(1, 13))
    name = str(rng.choice([MONTH_SHORT[month - 1], calendar.month_name[month], calendar.month_abbr[month]]))
    name = str(rng.choice([name, name.upper(), name.lower()], p=[0.65, 0.3, 0.05]))
    dot = "." if len(name) <= 4 and rng.random() < 0.5 else ""
    day = int(rng.integers(1, 29))
    comma = str(rng.choice([", ", ",", " ", ". "], p=[0.45, 0.3, 0.2, 0.05]))
    year = "1989" if rng.random() < 0.8 else "89"
    return f"{name}{dot} {day}{comma}{year}"


def line_text(rng: np.random.Generator, key: str, vocab: Vocabulary, labels_share: float, own: str = "") -> str:
    """A new DATE or CITY|STATE|ZIP text: the labels' values (``own``: the writer's own line, whose
    city comes up a third of the time) re-cased, or fresh values."""
    if key == "CSZ" and own.count(SEP) == 2 and rng.random() < 1 / 3:
        city, state, _ = own.split(SEP)
        _, other, zip_code, _ = sample_place(rng)
        return SEP.join([recase(rng, city.rstrip(",")) + ("," if rng.random() < 0.08 else ""),
                         restate(rng, state) if state else other, zip_code])
    if key == "DATE":
        pick = rng.random()
        if pick < labels_share and vocab.dates:
            return vocab.dates[int(rng.integers(len(vocab.dates)))]
        return month_date(rng) if pick < labels_share + (1 - labels_share) / 2 else sample_date(rng)
    if rng.random() < labels_share and vocab.places:
        city, state, zip_code = vocab.places[int(rng.integers(len(vocab.places)))]
    else:
        city, _, zip_code, (_, plain_city, code) = sample_place(rng)
        city, state = plain_city.title(), style_state(rng, code)
    city = recase(rng, city.rstrip(","))
    if city and rng.random() < 0.08:
        city += ","
    if state and rng.random() < 0.5:
        state = restate(rng, state)
    return SEP.join([city, state, zip_code])


# --------------------------------------------------------------------------- drawing
def _pick(rng: np.random.Generator, items: list) -> Any:
    return items[int(rng.integers(len(items)))]


def _scaled(ink: Ink, factor: float) -> Ink:
    if abs(factor - 1) < 0.05:
        return ink
    h, w = ink.image.shape
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    image = np.where(cv2.resize(ink.image, size, interpolation=cv2.INTER_AREA) < 128, 0, 255).astype(np.uint8)
    return Ink(image, ink.top * factor, ink.lead * factor)


def _gap(rng: np.random.Generator, writer: Writer, kind: str, ratios: Mapping[str, float]) -> float:
    """One of the writer's measured gaps of this kind, or (none measured) the writers' median
    gap of this kind in cap heights, at this writer's cap height."""
    gaps = writer.gaps[kind] or (writer.gaps["space"] if kind == "field" else [])
    return max(-2.0, float(_pick(rng, gaps))) if gaps else ratios[kind] * writer.cap


def gap_ratios(writers: Mapping[str, Writer]) -> dict[str, float]:
    """Per kind of gap (letter, space, field), the median over all writers' gaps / cap height."""
    defaults = {"letter": 1 / 6, "space": 0.8, "field": 1.5}
    out = {}
    for kind, default in defaults.items():
        ratios = [g / w.cap for w in writers.values() for g in w.gaps[kind]]
        out[kind] = float(np.median(ratios)) if ratios else default
    return out


@dataclass
class Placed:
    """A glyph drawn on a synthetic line: its character, box and the writer whose ink it is."""

    char: str
    left: int
    top: int
    right: int
    bottom: int
    source: str


def compose(rng: np.random.Generator, writer: Writer, text: str, key: str, donors: Mapping[str, Writer],
            ratios: Mapping[str, float], margin: int = 12) -> tuple[np.ndarray, list[Placed]] | None:
    """``text`` written with ``writer``'s glyphs on a binary line of the writer's height (None when
    a character is in nobody's bank). ``donors``: writers by character, for what the writer lacks;
    ``ratios``: gaps in cap heights (:func:`gap_ratios`) where the writer has none measured."""
    height, baseline = writer.lines.get(key) or next(iter(writer.lines.values()))
    pieces: list[tuple[str, Ink, float, str]] = []  # (char, ink, gap before it, source writer)
    parsed = Parsed.of(text)
    if parsed.lead:
        return None
    gap_before = 0.0
    for char, gap in zip(parsed.glyphs, parsed.gaps):
        owner = writer if char in writer.glyphs else donors.get(char)
        if owner is None:
            return None
        ink = _scaled(_pick(rng, owner.glyphs[char]), writer.cap / owner.cap if owner is not writer else 1.0)
        pieces.append((char, ink, gap_before, owner.name))
        gap_before = _gap(rng, writer, "letter", ratios)
        for c in gap:
            if c in PUNCT:
                owner = writer if c in writer.marks else donors.get(c)
                if owner is None:
                    return None
                mark = _scaled(_pick(rng, owner.marks[c]), writer.cap / owner.cap if owner is not writer else 1.0)
                pieces.append((c, mark, max(0.0, mark.lead), owner.name))
        if SEP in gap or " " in gap:
            gap_before = _gap(rng, writer, "field" if SEP in gap else "space", ratios)
    if not pieces:
        return None
    width = int(sum(p[1].image.shape[1] + max(0.0, p[2]) for p in pieces)) + 2 * margin + 4
    canvas = np.full((height, width), 255, dtype=np.uint8)
    x, placed = float(margin), []
    for char, ink, gap, source in pieces:
        x = max(0.0, x + gap)
        h, w = ink.image.shape
        top = int(round(baseline + ink.top))
        top = min(max(0, top), max(0, height - h))
        piece = ink.image[: height - top]
        left = int(round(x))
        region = canvas[top:top + piece.shape[0], left:left + w]
        np.minimum(region, piece[:, : region.shape[1]], out=region)
        placed.append(Placed(char, left, top, left + w, top + piece.shape[0], source))
        x += w
    return trim_horizontally(canvas, margin), placed


def in_writers_case(text: str, writer: Writer) -> str:
    """``text`` with each letter the writer never wrote in that case, but did in the other, in the
    case the writer has (the text changes with it: the target stays what is drawn)."""
    return "".join(c.swapcase() if c.isalpha() and c not in writer.glyphs and c.swapcase() in writer.glyphs else c
                   for c in text)


def donors_of(writers: Mapping[str, Writer]) -> dict[str, Writer]:
    """Per character, the writer with the most samples of it (who lends it to writers without)."""
    donors: dict[str, Writer] = {}
    for writer in writers.values():
        for char, inks in [*writer.glyphs.items(), *writer.marks.items()]:
            best = donors.get(char)
            if best is None or len(inks) > len((best.glyphs | best.marks)[char]):
                donors[char] = writer
    return donors


def synthesize(writers: Mapping[str, Writer], vocab: Vocabulary, n: int, settings: SyntheticLinesSettings,
               tries: int = 20, max_lent: float = 0.5) -> list[Line]:
    """``n`` synthetic lines (DATE with probability ``settings.date_share``; fewer when ``tries``
    draws of a writer and a text never find a text the writer can write with at most ``max_lent`` of
    its characters lent), deterministic by ``settings.seed``."""
    rng = np.random.default_rng(int(settings.seed))
    names = sorted(writers)
    donors, ratios = donors_of(writers), gap_ratios(writers)
    out: list[Line] = []
    for i in range(n):
        key = "DATE" if rng.random() < float(settings.date_share) else "CSZ"
        for _ in range(tries):  # a writer and a text, until the writer can write most of it
            writer = writers[names[int(rng.integers(len(names)))]]
            text = line_text(rng, key, vocab, float(settings.labels_share), writer.texts.get(key, ""))
            text = in_writers_case(text, writer)
            drawn = compose(rng, writer, text, key, donors, ratios) if text and set(text) <= set(ALPHABET) else None
            if drawn is not None and np.mean([p.source != writer.name for p in drawn[1]]) <= max_lent:
                out.append(Line(drawn[0], text, key, f"synthetic:{writer.name}:{i}"))
                break
    return out


def synthetic_lines(reader: Any, lines: Sequence[Line], settings: SyntheticLinesSettings | Mapping[str, Any],
                    progress: bool = True) -> list[Line]:
    """``settings.per_line`` synthetic lines per real line, with the glyphs of the writers of ``lines``
    (the fit forms' real lines; never held-out forms) aligned by ``reader`` (a trained field reader)."""
    settings = SyntheticLinesSettings.from_params(settings)
    writers = glyph_bank(reader, lines, progress=progress)
    if not writers:
        logger.info("[fieldreader] no glyph bank: no line matched its label piece by piece")
        return []
    out = synthesize(writers, Vocabulary.of(lines), int(round(float(settings.per_line) * len(lines))), settings)
    logger.info("[fieldreader] glyph bank of %d writers (%d glyphs; lines banked: %s); %d synthetic lines (%s)",
                len(writers), sum(len(v) for w in writers.values() for v in w.glyphs.values()),
                dict(Counter(k for w in writers.values() for k in w.lines)), len(out),
                dict(Counter(line.key for line in out)))
    return out


__all__ = ["Ink", "Placed", "Vocabulary", "Writer", "add_line", "compose", "donors_of", "gap_ratios", "glyph_bank", "line_text",
           "in_writers_case", "month_date", "plausible", "recase", "restate", "synthesize", "synthetic_lines"]
