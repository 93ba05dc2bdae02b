"""Text of OCR output, field by field: look-alike clean-up, allowed characters, respelling a
reference in the writer's case and settling case-ambiguous letters. Rules shared by the date,
state and gazetteer repairs and by the engines that read words."""

from __future__ import annotations

import math
import re
import unicodedata

from rapidfuzz.distance import Levenshtein

from handwriting_pipeline.fields.schema import ALLOWED_CHARS, NONE

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


# --------------------------------------------------------------------------- respelling
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


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance ignoring letter case."""
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


#: the names of :func:`writing_features`, in order
WRITING_FEATURES = ("mixed_case", "lower_share", "ambiguous_share", "has_dot", "has_space", "log_length",
                    "digit_share")


def writing_features(text: str) -> dict[str, float]:
    """How a reading is written, as numbers a confidence model can weigh: both letter cases in it,
    the share of small letters, of letters whose two cases look alike in handwriting, a dot, a
    space, log(1 + length) and the share of digits ("None" counts as empty)."""
    text = "" if text == NONE else text
    letters = [ch for ch in text if ch.isalpha()]
    n = max(1, len(letters))
    return {"mixed_case": float(any(ch.isupper() for ch in letters) and any(ch.islower() for ch in letters)),
            "lower_share": sum(ch.islower() for ch in letters) / n,
            "ambiguous_share": sum(ch.lower() in _CASE_AMBIGUOUS for ch in letters) / n,
            "has_dot": float("." in text), "has_space": float(" " in text.strip()),
            "log_length": math.log1p(len(text)), "digit_share": sum(ch.isdigit() for ch in text) / max(1, len(text))}

