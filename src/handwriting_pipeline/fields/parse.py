"""OCR words -> field values: the DATE from the words of the DATE box, CITY / STATE / ZIP split
from the words of the shared box by rules (a trailing ZIP, a state before it, the rest CITY),
with the x-positions of the printed STATE and ZIP labels as evidence and the offline ZIP
database to pick between candidate splits (:func:`split_city_state_zip`, weights in
:class:`SplitWeights`). Where the boxes and labels are is :mod:`handwriting_pipeline.engines.layout`'s
business; this module only sees words with their page coordinates."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from handwriting_pipeline.fields.dates import repair_date, respell_months
from handwriting_pipeline.fields.schema import NONE
from handwriting_pipeline.fields.states import is_valid_zip, state_code, state_variant, zip_consistent
from handwriting_pipeline.fields.text import filter_chars, normalise_text, zip_text

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels, x1/y1 exclusive)


@dataclass
class Word:
    """One piece of text an OCR engine found, in page coordinates."""

    text: str
    score: float
    box: Box

    @property
    def x_center(self) -> float:
        return (self.box[0] + self.box[2]) / 2


def split_word(word: Word) -> list[tuple[str, Box]]:
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


@dataclass
class Token:
    """One space-separated piece of a word, with its share of the word's x-extent."""

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
        for piece, box in split_word(Word(text, word.score, word.box)):
            if piece:
                tokens.append(Token(piece, word.score, box[0], box[2]))
    return tokens


def _mean(values: Sequence[float]) -> float:
    values = [v for v in values if v == v]
    return float(sum(values) / len(values)) if values else math.nan


def read_date(words: Sequence[Word]) -> tuple[str, float]:
    """DATE from the words of the DATE box: pieces in x order, allowed characters only."""
    tokens = words_to_tokens(words)
    text = filter_chars(" ".join(t.text for t in tokens), "DATE")
    text = text.strip(" ,.'-") if not re.search(r"[A-Za-z]\.$", text) else text.strip(" ,'-")
    if not text:
        return NONE, math.nan
    return repair_date(respell_months(text)), _mean([t.score for t in tokens])


_ZIP_TOKEN = re.compile(r"^[\dOoDQlIiSBZzgq|-]*\d[\dOoDQlIiSBZzgq|-]*$")


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


@dataclass(frozen=True)
class SplitWeights:
    """Scores of one candidate CITY | STATE split in :func:`split_city_state_zip` (the highest
    sum wins; ties: fewer STATE tokens). Tuned by hand on 250 train crops, checked on the 199
    validation crops; bonuses are added, penalties subtracted."""

    state_is_state: float = 3.0         # bonus: the STATE tokens read as a state code, name or abbreviation
    state_not_state: float = 2.0        # penalty: they do not
    state_under_label: float = 1.5      # bonus: the STATE's first token is centred near or right of the STATE label
    state_left_of_label: float = 1.5    # penalty: it ends well left of the STATE label
    label_slack_share: float = 0.04     # "near": within this share of (STATE-to-ZIP label distance + ...
    label_slack_px: float = 400         # ... these pixels) left of the STATE label
    left_of_label_px: float = 150       # "well left": more than this many pixels
    extra_state_token: float = 0.5     # penalty per STATE token after the first
    text_under_state_label: float = 2.0  # penalty for no STATE while the last token ends right of the STATE label ...
    under_label_px: float = 30          # ... by more than this many pixels
    city_right_of_zip_label: float = 2.0  # penalty: the CITY's last token is centred right of the ZIP label
    state_without_city: float = 0.5     # penalty: a STATE and no CITY at all
    gazetteer_all_agree: float = 2.0    # bonus: CITY, STATE and ZIP agree in the offline ZIP database
    gazetteer_state_zip_agree: float = 1.0  # bonus: only STATE and ZIP agree there


SPLIT_WEIGHTS = SplitWeights()


def _zip_token_count(tokens: Sequence[Token]) -> int:
    """How many trailing tokens are the ZIP: digit-like tokens (at least one real digit each),
    or one last token that is mostly digits or reads as a 5- or 9-digit ZIP."""
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
    return n_zip


def _split_score(city: str, state: str, city_toks: Sequence[Token], state_toks: Sequence[Token],
                 rest: Sequence[Token], zip_value: str, labels: dict[str, Box],
                 w: SplitWeights = SPLIT_WEIGHTS) -> float:
    """Score of one candidate split (:class:`SplitWeights`)."""
    state_x, zip_x = labels["STATE"][0], labels["ZIP"][0]
    n_state = len(state_toks)
    score = 0.0
    code = state_code(state) if state else None
    if n_state:
        score += w.state_is_state if code else -w.state_not_state
        # position evidence: the state's first token starts near/after the STATE label
        first = state_toks[0]
        if first.xc >= state_x - w.label_slack_share * (zip_x - state_x + w.label_slack_px):
            score += w.state_under_label
        elif first.x1 < state_x - w.left_of_label_px:
            score -= w.state_left_of_label
        score -= w.extra_state_token * (n_state - 1)
    else:
        # no state: plausible only if nothing sits under the STATE label
        if rest and rest[-1].x1 > state_x + w.under_label_px:
            score -= w.text_under_state_label
    if city_toks and city_toks[-1].xc > zip_x:
        score -= w.city_right_of_zip_label
    if not city and not city_toks and n_state:
        score -= w.state_without_city
    fields = {"CITY": city or NONE, "STATE": state or NONE, "ZIP": zip_value}
    if zip_consistent(fields):
        score += w.gazetteer_all_agree
    elif code and is_valid_zip(zip_value) and zip_consistent({"STATE": state, "ZIP": zip_value}):
        score += w.gazetteer_state_zip_agree
    return score


def split_city_state_zip(words: Sequence[Word], labels: dict[str, Box]) -> tuple[dict[str, str], dict[str, float]]:
    """CITY, STATE and ZIP from the words of the shared box.

    Rules: the trailing run of digit tokens (5 digits or ZIP+4) is ZIP; the one or two tokens
    before it that form a state code/name (:func:`state_code`) are STATE; the rest is CITY.
    When the rules leave it open, the x-positions of the STATE and ZIP labels decide; the
    offline ZIP database picks between candidate splits (:func:`_split_score`). Case is never
    changed.
    """
    tokens = _split_glued(words_to_tokens(words))
    tokens = [t for t in tokens if filter_chars(t.text, "CITY") or re.search(r"\d", t.text)]
    values = {"CITY": NONE, "STATE": NONE, "ZIP": NONE}
    conf = {"CITY": math.nan, "STATE": math.nan, "ZIP": math.nan}
    if not tokens:
        return values, conf
    n_zip = _zip_token_count(tokens)
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
        score = _split_score(city, state, city_toks, state_toks, rest, values["ZIP"], labels)
        candidates.append((score, -n_state, city, state, city_toks, state_toks))
    if candidates:
        _, _, city, state, city_toks, state_toks = max(candidates, key=lambda c: (c[0], c[1]))
        if city:
            values["CITY"], conf["CITY"] = city, _mean([t.score for t in city_toks])
        if state:
            values["STATE"], conf["STATE"] = state, _mean([t.score for t in state_toks])
    return values, conf
