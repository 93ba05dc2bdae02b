"""Where the fields are on an HSF top-section crop, and which text belongs to which field.

Shared by the offline OCR engines (RapidOCR, Tesseract): they only differ in how they turn a
region of pixels into words. The steps:

1. :func:`find_boxes` finds the two handwriting boxes (DATE, and the shared CITY/STATE/ZIP box)
   from their printed outlines: long thin horizontal and vertical ink runs (morphological
   opening), so a crop shifted by the scanner still works; template positions only as fallback.
2. :func:`find_labels` locates the printed labels DATE, CITY, STATE, ZIP above the boxes by
   reading the strip above them with the engine's own OCR (template positions as fallback).
3. Each box is read as a region (the engine's detector finds the text lines inside it) and
   :func:`assign_fields` turns the words into the four fields: DATE from the DATE box;
   CITY/STATE/ZIP split by rules (trailing ZIP, a state before it, the rest CITY), with the
   x-positions of the STATE and ZIP labels as evidence and the offline ZIP database
   (:func:`handwriting_pipeline.fields.zip_consistent`) to pick between candidate splits.
   Characters are filtered per field (:data:`handwriting_pipeline.fields.ALLOWED_CHARS`).
4. Repairs of typical OCR slips, each only when the text as read is invalid or a reference is
   one or two edits away: a date's '/' read as '1' (:func:`repair_date`), month names
   (:func:`respell_months`), state look-alikes (:func:`state_variant`), and CITY/STATE/ZIP
   against the offline ZIP database (:func:`gazetteer_check`). Repaired letters keep the
   writer's case as read; only case-ambiguous letters in a word written in capitals are
   capitalised (:func:`settle_case`).

Rules were developed on 250 train crops and checked on the 199 validation crops.
"""

from __future__ import annotations

import logging
import math
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image
from rapidfuzz.distance import Levenshtein

from handwriting_pipeline.engines.base import Engine, EngineResult
from handwriting_pipeline.fields import (
    ALLOWED_CHARS,
    KEYS,
    NONE,
    STATE_ABBREVIATIONS,
    STATE_NAMES,
    is_plausible_date,
    is_valid_zip,
    normalize_key,
    state_code,
    zip_consistent,
    zip_places,
    zips_for_place,
)

logger = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels, x1/y1 exclusive)

# Template geometry of the 2460x350 crop (measured on real SD19 crops); used only when the
# outlines or labels cannot be found, scaled to the image size.
TEMPLATE_SIZE = (2460, 350)
TEMPLATE_DATE_BOX: Box = (770, 188, 1135, 295)
TEMPLATE_CSZ_BOX: Box = (1185, 188, 2143, 295)
# label left edges as fractions of the shared box width (CITY, STATE, ZIP)
TEMPLATE_LABEL_FRACTIONS = {"CITY": 0.05, "STATE": 0.54, "ZIP": 0.71}


@dataclass
class Word:
    """One piece of text an OCR engine found, in page coordinates."""

    text: str
    score: float
    box: Box

    @property
    def x_center(self) -> float:
        return (self.box[0] + self.box[2]) / 2


@dataclass
class Layout:
    """Boxes and label positions of one crop, and whether each was found or taken from the template."""

    date_box: Box
    csz_box: Box
    labels: dict[str, Box] = field(default_factory=dict)
    found_boxes: bool = False
    found_labels: list[str] = field(default_factory=list)


ReadRegion = Callable[[np.ndarray], list[Word]]  # grey uint8 region -> words in region coords


# --------------------------------------------------------------------------- image
def to_grey(image: Image.Image) -> np.ndarray:
    """Any PIL image -> 8-bit grey array (ink dark)."""
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _runs(mask: np.ndarray, min_len: int, gap: int = 0) -> list[tuple[int, int]]:
    """Start/end of True runs in a 1-D mask at least ``min_len`` long (gaps <= ``gap`` bridged)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    runs, start, prev = [], idx[0], idx[0]
    for i in idx[1:]:
        if i - prev > gap + 1:
            runs.append((start, prev + 1))
            start = i
        prev = i
    runs.append((start, prev + 1))
    return [(int(a), int(b)) for a, b in runs if b - a >= min_len]


def line_masks(grey: np.ndarray, min_h: int = 120, min_v: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Masks of thin horizontal and vertical rule lines (solid blocks such as the blacked-out
    NAME box are removed: they are long in both directions)."""
    ink = (grey < 128).astype(np.uint8)
    horiz = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((1, min_h), np.uint8))
    vert = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((min_v, 1), np.uint8))
    solid = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((25, 25), np.uint8))
    solid = cv2.dilate(solid, np.ones((9, 9), np.uint8))
    return (horiz & (1 - solid)).astype(bool), (vert & (1 - solid)).astype(bool)


def _scale(box: Box, size: tuple[int, int]) -> Box:
    sx, sy = size[0] / TEMPLATE_SIZE[0], size[1] / TEMPLATE_SIZE[1]
    return (round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy))


def find_boxes(grey: np.ndarray) -> tuple[Box, Box, bool]:
    """The DATE box and the shared CITY/STATE/ZIP box from their outlines.

    Returns ``(date_box, csz_box, found)``; ``found`` is False when the template was used.
    """
    height, width = grey.shape
    default = (_scale(TEMPLATE_DATE_BOX, (width, height)), _scale(TEMPLATE_CSZ_BOX, (width, height)), False)
    horiz, _ = line_masks(grey)
    counts = horiz.sum(axis=1)
    lo, hi = int(height * 0.3), int(height * 0.97)
    # rule rows: rows with horizontal line pixels; a (slightly skewed) rule spans a few rows,
    # so neighbouring rows are grouped and a group weighs the columns it covers
    strong = counts >= width * 0.04
    strong[:lo] = False
    strong[hi:] = False
    groups = _runs(strong, 1, gap=4)
    if len(groups) < 2:
        return default

    def weight(g: tuple[int, int]) -> int:
        return int(horiz[g[0]:g[1]].any(axis=0).sum())

    groups = [g for g in groups if weight(g) >= width * 0.2]
    best = None
    for i, top in enumerate(groups):
        for bottom in groups[i + 1:]:
            gap = (bottom[0] + bottom[1]) / 2 - (top[0] + top[1]) / 2
            if 0.15 * height <= gap <= 0.5 * height:
                score = min(weight(top), weight(bottom))
                if best is None or score > best[0]:
                    best = (score, top, bottom)
    if best is None:
        return default
    _, top, bottom = best
    y0, y1 = top[0], bottom[1]
    # horizontal extents of the boxes: union of the top and bottom rules' segments
    cols = horiz[top[0]:top[1]].any(axis=0) | horiz[bottom[0]:bottom[1]].any(axis=0)
    segments = [s for s in _runs(cols, int(width * 0.08), gap=int(width * 0.012))]
    if len(segments) < 2:
        return default
    date_seg, csz_seg = sorted(segments[-2:])
    if csz_seg[1] - csz_seg[0] < date_seg[1] - date_seg[0]:  # the shared box is the wider one
        return default
    return (date_seg[0], y0, date_seg[1], y1), (csz_seg[0], y0, csz_seg[1], y1), True


def label_strip(layout_boxes: tuple[Box, Box], shape: tuple[int, int]) -> Box:
    """The strip above both boxes where the printed labels are."""
    date_box, csz_box = layout_boxes
    height, width = shape
    top = max(0, date_box[1] - round(0.22 * height))
    return (max(0, date_box[0] - 40), top, min(width, csz_box[2] + 20), max(top + 1, date_box[1] - 1))


def find_labels(grey: np.ndarray, date_box: Box, csz_box: Box,
                read_region: ReadRegion | None) -> tuple[dict[str, Box], list[str]]:
    """Positions of the printed DATE, CITY, STATE, ZIP labels (page coordinates).

    Reads the strip above the boxes with ``read_region``; labels not found come from the
    template (fractions of the shared box). Returns the positions and the keys found.
    """
    found: dict[str, Box] = {}
    if read_region is not None:
        x0, y0, x1, y1 = label_strip((date_box, csz_box), grey.shape)
        for word in read_region(grey[y0:y1, x0:x1]):
            for piece, box in _split_word(word):
                key = normalize_key(piece) if len(piece) >= 3 else None
                if key is not None and key not in found:
                    found[key] = (box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0)
    labels = dict(found)
    cw = csz_box[2] - csz_box[0]
    for key, frac in TEMPLATE_LABEL_FRACTIONS.items():
        if key not in labels:
            left = csz_box[0] + round(frac * cw)
            labels[key] = (left, date_box[1] - 45, left + round(0.1 * cw), date_box[1] - 5)
    if "DATE" not in labels:
        labels["DATE"] = (date_box[0] + 60, date_box[1] - 45, date_box[0] + 190, date_box[1] - 5)
    return labels, sorted(found)


def _split_word(word: Word) -> list[tuple[str, Box]]:
    """Split a detected text ("STATE ZIP") into words with proportional x-extents."""
    parts = word.text.split()
    if len(parts) <= 1:
        return [(word.text.strip(), word.box)]
    total = max(1, len(word.text))
    x0, y0, x1, y1 = word.box
    out, pos = [], 0
    for part in parts:
        start = word.text.index(part, pos)
        end = start + len(part)
        pos = end
        out.append((part, (x0 + round((x1 - x0) * start / total), y0, x0 + round((x1 - x0) * end / total), y1)))
    return out


def analyse(image: Image.Image, read_region: ReadRegion | None) -> tuple[np.ndarray, Layout]:
    """Grey image and layout (boxes + labels) of one crop."""
    grey = to_grey(image)
    date_box, csz_box, found = find_boxes(grey)
    labels, found_labels = find_labels(grey, date_box, csz_box, read_region)
    return grey, Layout(date_box, csz_box, labels, found, found_labels)


def box_region(grey: np.ndarray, box: Box, pad_x: int = 25, pad_top: int = 18, pad_bottom: int = 12,
               erase_rules: bool = True) -> tuple[np.ndarray, int, int]:
    """The pixels of a box (with a margin: writing crosses the outline), rule lines whitened.

    Returns the region and its page offset (x, y).
    """
    height, width = grey.shape
    x0, y0 = max(0, box[0] - pad_x), max(0, box[1] - pad_top)
    x1, y1 = min(width, box[2] + pad_x), min(height, box[3] + pad_bottom)
    region = grey[y0:y1, x0:x1].copy()
    if erase_rules:
        horiz, vert = line_masks(region, min_h=max(60, (x1 - x0) // 4), min_v=max(30, (y1 - y0) // 2))
        region[horiz | vert] = 255
    return region, x0, y0


# --------------------------------------------------------------------------- text
# look-alikes an OCR model trained on Chinese + English returns for handwritten Latin text
_LOOKALIKES = str.maketrans({"工": "I", "丨": "I", "|": "l", "〇": "O", "一": "-", "—": "-", "–": "-",
                             "、": ",", "。": ".", "’": "'", "‘": "'", "`": "'", "，": ",", "．": "."})
_ZIP_DIGITS = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "l": "1", "I": "1", "i": "1",
                             "|": "1", "L": "1", "S": "5", "s": "5", "B": "8", "Z": "2", "z": "2",
                             "g": "9", "q": "9", "G": "6", "b": "6", "T": "7", "A": "4", "/": "1"})


def normalise_text(text: str) -> str:
    """NFKC (full-width forms) plus look-alike replacements; case kept."""
    return unicodedata.normalize("NFKC", text.translate(_LOOKALIKES)).translate(_LOOKALIKES)


def filter_chars(text: str, key: str) -> str:
    """Keep only characters the field allows, collapse spaces."""
    allowed = ALLOWED_CHARS[key]
    kept = "".join(ch for ch in text if ch in allowed)
    return re.sub(r"\s+", " ", kept).strip(" ")


def zip_text(text: str) -> str:
    """A ZIP as read: letters that look like digits become digits, then digits and '-' only."""
    return filter_chars(text.translate(_ZIP_DIGITS), "ZIP").replace(" ", "")


@dataclass
class Token:
    text: str
    score: float
    x0: float
    x1: float

    @property
    def xc(self) -> float:
        return (self.x0 + self.x1) / 2


def words_to_tokens(words: Sequence[Word]) -> list[Token]:
    """Words (text lines) in reading order -> space-separated tokens with x-extents."""
    tokens: list[Token] = []
    for word in sorted(words, key=lambda w: w.box[0]):
        text = normalise_text(word.text)
        for piece, box in _split_word(Word(text, word.score, word.box)):
            if piece:
                tokens.append(Token(piece, word.score, box[0], box[2]))
    return tokens


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if v == v]
    return float(sum(values) / len(values)) if values else math.nan


_DATE_DIGITS = str.maketrans({"O": "0", "o": "0", "D": "0", "B": "8", "l": "1", "I": "1", "|": "1",
                               "S": "5", "s": "5", "Z": "2", "z": "2", "g": "9", "q": "9", "G": "6",
                               "b": "6", "T": "7"})


def repair_date(text: str) -> str:
    """Fix the OCR slips a numeric date shows most: a '/' read as '1' ("9116/89" -> "9/16/89")
    and letters that look like digits ("B-23-89" -> "8-23-89"). Only used when the text as read
    is not a plausible date and exactly one repair makes it one (fewest changes first)."""
    if re.fullmatch(r"\d{1,2}[-.]\d{1,2}[-.]\d{2,4}", text) and set(re.findall(r"[-.]", text)) == {"-", "."}:
        text = text.replace(".", "-")  # a dash read as a dot ("8-28.89"): writers keep one separator
    if is_plausible_date(text) or not re.search(r"\d", text):
        return text
    compact = text.replace(" ", "")
    candidates = []
    if re.fullmatch(r"[\dOoDBlI|SsZzgqGbT/.\-]+", compact) and sum(c.isdigit() for c in compact) >= 3:
        digits = compact.translate(_DATE_DIGITS)
        if digits != compact and is_plausible_date(digits):
            candidates.append((sum(a != b for a, b in zip(digits, compact)), digits))
        ones = [i for i, ch in enumerate(digits) if ch == "1"]
        seps = set(re.findall(r"[/.\-]", digits))
        if len(ones) <= 8 and seps <= {"/"}:
            from itertools import combinations

            for n in (1, 2):
                for combo in combinations(ones, n):
                    cand = "".join("/" if i in combo else ch for i, ch in enumerate(digits))
                    if cand.count("/") == 2 and is_plausible_date(cand):
                        changes = n + sum(a != b for a, b in zip(digits, compact))
                        candidates.append((changes, cand))
    if not candidates:
        return text
    best = min(c[0] for c in candidates)
    chosen = {c[1] for c in candidates if c[0] == best}
    return chosen.pop() if len(chosen) == 1 else text


_MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December", "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep",
                "Sept", "Oct", "Nov", "Dec"]


def respell_months(text: str) -> str:
    """Month names one slip away (two for long names) from a real one, respelled in the
    writer's case ("Auq" -> "Aug", "Supt" -> "Sept", "Guqust" -> "August")."""
    def fix(m: re.Match) -> str:
        word = m.group(0)
        if len(word) < 3 or any(word.upper() == n.upper() for n in _MONTH_NAMES):
            return word
        limit = 1 if len(word) <= 5 else 2
        scored = sorted((_distance(word, n), n) for n in _MONTH_NAMES if abs(len(n) - len(word)) <= limit)
        if scored and scored[0][0] <= limit and (len(scored) == 1 or scored[1][0] > scored[0][0]):
            return respell(word, scored[0][1])
        return word

    return re.sub(r"[A-Za-z]+", fix, text)


def read_date(words: Sequence[Word]) -> tuple[str, float]:
    """DATE from the words of the DATE box: pieces in x order, allowed characters only."""
    tokens = words_to_tokens(words)
    text = filter_chars(" ".join(t.text for t in tokens), "DATE")
    text = text.strip(" ,.'-") if not re.search(r"[A-Za-z]\.$", text) else text.strip(" ,'-")
    if not text:
        return NONE, math.nan
    return repair_date(respell_months(text)), _mean([t.score for t in tokens])


_ZIP_TOKEN = re.compile(r"^[\dOoDQlIiSBZzgq|-]*\d[\dOoDQlIiSBZzgq|-]*$")


_STATE_LOOKALIKES = {"1": "lI", "I": "l", "l": "I", "0": "O", "5": "S", "|": "lI", "2": "Z", "8": "B",
                     "4": "Y", "u": "W"}


def state_variant(text: str) -> str:
    """STATE as written, allowed characters only. When that is no state, a variant with
    look-alikes swapped (``F1.`` -> ``Fl.``, ``II.`` -> ``Il.``) that is a state, if exactly
    one is."""
    plain = filter_chars(text, "STATE")
    if not plain or len(text) > 16 or (state_code(plain) and not re.search(r"[0-9|]", text)):
        return plain
    from itertools import product

    options = [[ch, *_STATE_LOOKALIKES.get(ch, "")] for ch in text]
    if math.prod(len(o) for o in options) > 64:
        return plain
    found: dict[str, int] = {}
    for combo in product(*options):
        joined = "".join(combo)
        cand = filter_chars(joined, "STATE")
        if cand and cand != plain and state_code(cand):
            dropped = len(joined) - len(cand)  # characters the filter had to remove
            found[cand] = min(dropped, found.get(cand, dropped))
    if not found:
        return plain
    if state_code(plain) and min(found.values()) > 0:
        return plain  # as read is a state, and no look-alike reading uses every character
    fewest = min(found.values())
    best = [c for c, d in found.items() if d == fewest]
    return best[0] if len(best) == 1 else plain


def _split_glued(tokens: list[Token]) -> list[Token]:
    """Split tokens where letters and digits touch ("CA90280" -> "CA", "90280")."""
    out = []
    for tok in tokens:
        if _ZIP_TOKEN.match(tok.text) and len(zip_text(tok.text)) in (5, 10):  # "OI201" is a ZIP
            out.append(tok)
            continue
        m = re.fullmatch(r"(.*[A-Za-z])[,-]([A-Za-z][A-Za-z.]{1,})", tok.text)
        if m and state_code(m.group(2)) and len(m.group(1)) >= 3:  # "Temperence,MI", "Haute-IN"
            cut = tok.x0 + (tok.x1 - tok.x0) * (len(m.group(1)) + 1) / max(1, len(tok.text))
            out.append(Token(m.group(1), tok.score, tok.x0, cut))
            out.append(Token(m.group(2), tok.score, cut, tok.x1))
            continue
        m = re.fullmatch(r"(.*?[A-Za-z.,])[\s-]*(\d{3,}[\d-]*)", tok.text)
        if m and len(m.group(1).strip(" ,")) >= 1:
            frac = len(m.group(1)) / max(1, len(tok.text))
            cut = tok.x0 + (tok.x1 - tok.x0) * frac
            out.append(Token(m.group(1), tok.score, tok.x0, cut))
            out.append(Token(m.group(2), tok.score, cut, tok.x1))
        else:
            out.append(tok)
    return out


def split_city_state_zip(words: Sequence[Word], labels: dict[str, Box]) -> tuple[dict[str, str], dict[str, float]]:
    """CITY, STATE and ZIP from the words of the shared box.

    Rules: the trailing run of digit tokens (5 digits or ZIP+4) is ZIP; the one or two tokens
    before it that form a state code/name (:func:`state_code`) are STATE; the rest is CITY.
    When the rules leave it open, the x-positions of the STATE and ZIP labels decide; the
    offline ZIP database picks between candidate splits. Case is never changed.
    """
    tokens = _split_glued(words_to_tokens(words))
    tokens = [t for t in tokens if filter_chars(t.text, "CITY") or re.search(r"\d", t.text)]
    values = {"CITY": NONE, "STATE": NONE, "ZIP": NONE}
    conf = {"CITY": math.nan, "STATE": math.nan, "ZIP": math.nan}
    if not tokens:
        return values, conf
    state_x = labels["STATE"][0]
    zip_x = labels["ZIP"][0]

    # ZIP: trailing digit-like tokens (at least one real digit each), or tokens right of the
    # ZIP label that are digit-like
    n_zip = 0
    for tok in reversed(tokens):
        text = tok.text.strip(".,;:!'\"")
        if re.fullmatch(r"\d+[.,]\d+", text):  # "27.006": a stray dot inside the digits
            text = re.sub(r"[.,]", "", text)
        n_digits = sum(ch.isdigit() for ch in text)
        if not n_digits:
            break
        if (_ZIP_TOKEN.match(text) and n_digits >= max(1, len(text) // 2)) or (
                n_zip == 0 and n_digits >= 4 and n_digits >= len(text) - 1) or (
                n_zip == 0 and _ZIP_TOKEN.match(text) and len(zip_text(text)) in (5, 10)):
            n_zip += 1
        else:
            break
    zip_tokens = tokens[len(tokens) - n_zip:] if n_zip else []
    rest = tokens[: len(tokens) - n_zip]
    if zip_tokens:
        values["ZIP"] = zip_text("".join(re.sub(r"(?<=\d)[.,](?=\d)", "", t.text) for t in zip_tokens)) or NONE
        conf["ZIP"] = _mean([t.score for t in zip_tokens])

    # candidate splits of the rest into CITY | STATE (STATE = last 0..3 tokens)
    candidates = []
    for n_state in range(0, min(3, len(rest)) + 1):
        city_toks = rest[: len(rest) - n_state]
        state_toks = rest[len(rest) - n_state:]
        city = filter_chars(" ".join(t.text for t in city_toks), "CITY").strip(" -")
        city = city.rstrip(" ,") if city else city
        state = state_variant(" ".join(t.text for t in state_toks))
        if n_state and not state:
            continue
        score = 0.0
        code = state_code(state) if state else None
        if n_state:
            score += 3.0 if code else -2.0
            # position evidence: the state's first token starts near/after the STATE label
            first = state_toks[0]
            if first.xc >= state_x - 0.04 * (zip_x - state_x + 400):
                score += 1.5
            elif first.x1 < state_x - 150:
                score -= 1.5
            score -= 0.5 * (n_state - 1)
        else:
            # no state: plausible only if nothing sits under the STATE label
            if rest and rest[-1].x1 > state_x + 30:
                score -= 2.0
        if city_toks and city_toks[-1].xc > zip_x:
            score -= 2.0
        if not city and city_toks == [] and n_state:
            score -= 0.5
        fields = {"CITY": city or NONE, "STATE": state or NONE, "ZIP": values["ZIP"]}
        if zip_consistent(fields):
            score += 2.0
        elif code and is_valid_zip(values["ZIP"]) and zip_consistent({"STATE": state, "ZIP": values["ZIP"]}):
            score += 1.0
        candidates.append((score, -n_state, city, state, city_toks, state_toks))
    if candidates:
        _, _, city, state, city_toks, state_toks = max(candidates, key=lambda c: (c[0], c[1]))
        if city:
            values["CITY"], conf["CITY"] = city, _mean([t.score for t in city_toks])
        if state:
            values["STATE"], conf["STATE"] = state, _mean([t.score for t in state_toks])
    return values, conf


# --------------------------------------------------------------------------- gazetteer
def _align(source: str, target: str) -> list[tuple[int | None, int | None]]:
    """Levenshtein alignment (case-insensitive, rapidfuzz) as (source index, target index) pairs;
    None on one side for an insertion or deletion."""
    pairs: list[tuple[int | None, int | None]] = []
    for tag, i1, i2, j1, j2 in Levenshtein.opcodes(source.upper(), target.upper()):
        if tag in ("equal", "replace"):
            pairs.extend(zip(range(i1, i2), range(j1, j2)))
        elif tag == "delete":
            pairs.extend((i, None) for i in range(i1, i2))
        else:
            pairs.extend((None, j) for j in range(j1, j2))
    return pairs


def _distance(a: str, b: str) -> int:
    return Levenshtein.distance(a.upper(), b.upper())


def respell(written: str, reference: str) -> str:
    """``reference``'s letters and spaces with the case of ``written`` (the writer's case is kept
    letter by letter; an inserted letter takes its left neighbour's case)."""
    letters = re.sub(r"[^A-Za-z]", "", written)
    ref_letters = re.sub(r"[^A-Za-z]", "", reference)
    out, last_upper = [], letters[:1].isupper() if letters else True
    for i, j in _align(letters, ref_letters):
        if j is None:
            continue
        upper = letters[i].isupper() if i is not None else last_upper
        out.append(ref_letters[j].upper() if upper else ref_letters[j].lower())
        last_upper = upper
    # spaces where the reference has them
    result, k = [], 0
    for ch in reference:
        if ch == " ":
            result.append(" ")
        elif ch.isalpha():
            result.append(out[k])
            k += 1
        else:
            result.append(ch)
    return "".join(result)


def _state_spellings(code: str) -> list[str]:
    return list(dict.fromkeys([code, STATE_NAMES[code], *[a for a, c in STATE_ABBREVIATIONS.items() if c == code]]))


def gazetteer_check(values: dict[str, str]) -> dict[str, str]:
    """Pick between candidate readings with the offline ZIP database; never changes case.

    * STATE that is no state, one edit away from a spelling of the ZIP's state -> that
      spelling in the writer's case ("Cn" + 92056 -> "CA", "HASS" + 02368 -> "MASS").
    * CITY a few edits away from a city the ZIP's database entry lists -> that city's letters
      and spaces in the writer's case ("EIKGrove Village" -> "ElK Grove Village" style fixes).
    * ZIP one digit away from the only ZIP listed for CITY + STATE -> that ZIP.
    """
    out = dict(values)
    zip5 = out["ZIP"][:5]
    places = zip_places(zip5) if is_valid_zip(out["ZIP"]) else ()
    code = state_code(out["STATE"]) if out["STATE"] != NONE else None
    if places and out["STATE"] != NONE and code is None:
        states = {st for _, st in places}
        if len(states) == 1:
            written = re.sub(r"[^A-Za-z]", "", out["STATE"])
            limit = 2 if len(written) >= 6 else 1  # "OLAItOMA" -> "OKLAHOMA", "UA" -> "VA"
            options = [sp for sp in _state_spellings(states.pop())
                       if 1 <= _distance(written, sp.replace(" ", "")) <= limit and len(written) >= 2]
            if len(options) == 1:
                dots = out["STATE"].endswith(".")
                out["STATE"] = respell(written, options[0]) + ("." if dots else "")
                code = state_code(out["STATE"])
    city = out["CITY"]
    if places and city != NONE and "." not in city:
        written = re.sub(r"[^A-Za-z]", "", city)
        cities = {c for c, st in places if code is None or st == code}
        scored = sorted((_distance(written, c.replace(" ", "")), c) for c in cities)
        limit = 1 if len(written) <= 6 else 2 if len(written) <= 12 else 3
        if scored and scored[0][0] <= limit and (len(scored) == 1 or scored[1][0] > scored[0][0]):
            best = scored[0][1]
            if scored[0][0] or best.count(" ") != city.strip().count(" "):  # spelling or spacing
                out["CITY"] = respell(city, best.title())
    if out["CITY"] != NONE and out["STATE"] != NONE and code:
        known = zips_for_place(out["CITY"], out["STATE"])
        digits = re.sub(r"\D", "", out["ZIP"])
        if known and digits[:5] not in known and len(digits) in (4, 5, 6):
            close = [z for z in known if _distance(digits[:5] if len(digits) != 4 else digits, z) == 1]
            if len(close) == 1 and (len(digits) == 5 or "-" not in out["ZIP"]):
                out["ZIP"] = close[0]
    return out


def drop_fragments(words: Sequence[Word], min_ratio: float = 0.45) -> list[Word]:
    """Drop low, flat detections (bits of the printed labels or rules next to a box): a text
    line much lower than the tallest one in the same box is not handwriting."""
    if not words:
        return []
    tallest = max(w.box[3] - w.box[1] for w in words)
    return [w for w in words if (w.box[3] - w.box[1]) >= min_ratio * tallest]


# letters whose small and capital forms look alike in handwriting (the OCR guesses their case)
_CASE_AMBIGUOUS = set("cikmopsuvwxz")


def settle_case(text: str, min_upper: float = 0.6) -> str:
    """Capitalise the case-ambiguous letters of a word written mostly in capitals
    ("UpLAND" -> "UPLAND", "CALiForNiA" -> "CALIFORNIA"); other words are left as read."""
    def fix(word: str) -> str:
        letters = [ch for ch in word if ch.isalpha()]
        if len(letters) < 2:
            return word
        upper = sum(ch.isupper() for ch in letters)
        lower = [ch for ch in letters if ch.islower()]
        if lower and upper / len(letters) >= min_upper and all(ch in _CASE_AMBIGUOUS for ch in lower):
            return word.upper()
        return word

    return " ".join(fix(w) for w in text.split(" ")) if text != NONE else text


def assign_fields(date_words: Sequence[Word], csz_words: Sequence[Word],
                  labels: dict[str, Box]) -> tuple[dict[str, str], dict[str, float]]:
    """The four fields (and confidences) from the words read in the two boxes."""
    date, date_conf = read_date(drop_fragments(date_words))
    values, conf = split_city_state_zip(drop_fragments(csz_words), labels)
    for key in ("CITY", "STATE"):
        values[key] = settle_case(values[key])
    values.update(gazetteer_check(values))
    values["DATE"], conf["DATE"] = date, date_conf
    return {k: values[k] for k in KEYS}, {k: conf[k] for k in KEYS}


def _is_label(word: Word, oy: int, box: Box) -> bool:
    """A printed label read inside a box region (it lies above the box, text is a key)."""
    y_center = (word.box[1] + word.box[3]) / 2 + oy
    return y_center < box[1] + 5 and normalize_key(word.text) is not None


def read_form(image: Image.Image, read_region: ReadRegion, read_labels: bool = True,
              read_labels_with: ReadRegion | None = None) -> tuple[dict[str, str], dict[str, float], dict]:
    """Whole offline reading of one crop with an engine's ``read_region`` (labels read with
    ``read_labels_with`` when given, else ``read_region``; template label positions when
    ``read_labels`` is False).

    Returns fields, confidences and a JSON-able raw record (layout + words per box).
    """
    grey, layout = analyse(image, (read_labels_with or read_region) if read_labels else None)
    grey = grey.copy()
    for key in layout.found_labels:  # printed labels must not be read as handwriting
        x0, y0, x1, y1 = layout.labels[key]
        grey[max(0, y0 - 3):min(y1 + 2, layout.date_box[1]), max(0, x0 - 3):x1 + 3] = 255
    words = {}
    for name, box in (("DATE", layout.date_box), ("CSZ", layout.csz_box)):
        region, ox, oy = box_region(grey, box)
        found = read_region(region)
        words[name] = [Word(w.text, w.score, (w.box[0] + ox, w.box[1] + oy, w.box[2] + ox, w.box[3] + oy))
                       for w in found if not _is_label(w, oy, box)]
    fields, conf = assign_fields(words["DATE"], words["CSZ"], layout.labels)
    raw = {
        "date_box": list(layout.date_box), "csz_box": list(layout.csz_box),
        "found_boxes": layout.found_boxes, "found_labels": layout.found_labels,
        "labels": {k: list(v) for k, v in layout.labels.items()},
        "words": {k: [[w.text, round(float(w.score), 4), list(w.box)] for w in v] for k, v in words.items()},
    }
    return fields, conf, raw


__all__ = [
    "Box", "Word", "Layout", "ReadRegion", "to_grey", "find_boxes", "find_labels", "analyse",
    "box_region", "normalise_text", "filter_chars", "zip_text", "repair_date", "respell_months",
    "read_date", "state_variant", "split_city_state_zip", "respell", "gazetteer_check",
    "drop_fragments", "settle_case", "assign_fields", "read_form",
]


class LayoutEngine(Engine):
    """Base of the offline OCR engines that share this module's box/label layout and field rules.

    Subclasses implement :meth:`read_region` (text words in a grey region) and may override
    :meth:`read_labels_region` (how the printed labels are read).
    """

    def read_region(self, grey: np.ndarray) -> list[Word]:
        raise NotImplementedError

    def read_labels_region(self, grey: np.ndarray) -> list[Word]:
        """Words of the strip with the printed labels (default: like any region)."""
        return self.read_region(grey)

    def read(self, image: Image.Image, file_name: str = "") -> EngineResult:
        start = time.perf_counter()
        try:
            fields, conf, raw = read_form(image, self.read_region, read_labels=self.config["read_labels"],
                                          read_labels_with=self.read_labels_region)
        except Exception as err:  # noqa: BLE001 - a bad image must not stop the run
            logger.warning("%s could not read %s: %s", self.name, file_name or "image", err)
            return EngineResult(error=f"{type(err).__name__}: {err}", seconds=time.perf_counter() - start)
        conf = {k: (v if v == v else math.nan) for k, v in conf.items()}
        return EngineResult(fields=fields, confidence=conf, raw=raw, usage={"pages": 0},
                            seconds=time.perf_counter() - start)
