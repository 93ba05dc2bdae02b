"""Decoding with knowledge, never rewriting the writer.

The beam's readings of a line are re-ranked by ``log P(text | image) + log prior(text)``:

* candidates: the beam, plus for the best readings (a) CITY respelled to a known city one or
  two letters away (training labels and the cities the gazetteer lists for the ZIP read) in the
  writer's case as read, (b) whole-word case variants of CITY and STATE (as read, UPPER, Title,
  lower), (c) STATE with and without its dot;
* every candidate's likelihood is computed exactly against the image (CTC forward algorithm,
  :func:`~handwriting_pipeline.fieldreader.decode.text_log_likelihood`), so a gazetteer city or
  a case the image does not support loses;
* the prior is small and additive: ``-penalty`` for a CITY that is no known city, a STATE that is
  no state, a ZIP that is not 5 digits / ZIP+4, a DATE that is no date; plus the log share of
  the case pattern among the training labels (``case_weight`` times it).

``δ`` (the penalties) is the most likelihood, in nats, that knowledge may overrule.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from handwriting_pipeline.fieldreader.decode import text_log_likelihood
from handwriting_pipeline.fieldreader.text import SEP, fields_from_lines
from handwriting_pipeline.fields import NONE, is_plausible_date, is_valid_zip, state_code, zip_places
from handwriting_pipeline.fields.text import respell


def city_key(text: str) -> str:
    return re.sub(r"[^A-Z ]", "", text.upper()).strip()


def case_pattern(text: str) -> str:
    """upper / title / lower / mixed (letters only)."""
    letters = re.sub(r"[^A-Za-z ]", "", text).strip()
    if not letters:
        return "none"
    if letters.isupper():
        return "upper"
    if letters.islower():
        return "lower"
    if all(w[:1].isupper() and (w[1:].islower() or not w[1:]) for w in letters.split()):
        return "title"
    return "mixed"


def case_variants(text: str) -> list[str]:
    return list(dict.fromkeys([text, text.upper(), text.title(), text.lower()]))


@dataclass
class Lexicon:
    """Known cities (keyed without case and punctuation) and the case statistics of the labels."""

    cities: set[str] = field(default_factory=set)
    case_log_prior: dict[str, dict[str, float]] = field(default_factory=dict)  # field -> pattern -> log share
    penalty: float = 1.5
    case_weight: float = 0.0
    max_edits: int = 2

    @classmethod
    def from_labels(cls, labels: Iterable[Mapping[str, str]], **settings) -> "Lexicon":
        labels = list(labels)
        cities = {city_key(f["CITY"]) for f in labels if f.get("CITY", NONE) != NONE}
        prior = {}
        for key in ("CITY", "STATE"):
            counts = Counter(case_pattern(f[key]) for f in labels if f.get(key, NONE) != NONE)
            total = sum(counts.values()) + 4
            prior[key] = {p: math.log((counts.get(p, 0) + 1) / total) for p in ("upper", "title", "lower", "mixed")}
        return cls(cities - {""}, prior, **settings)

    def to_json(self) -> dict:
        return {"cities": sorted(self.cities), "case_log_prior": self.case_log_prior, "penalty": self.penalty,
                "case_weight": self.case_weight, "max_edits": self.max_edits}

    @classmethod
    def from_json(cls, data: Mapping) -> "Lexicon":
        return cls(set(data["cities"]), dict(data["case_log_prior"]), float(data["penalty"]),
                   float(data["case_weight"]), int(data["max_edits"]))

    # ---------------------------------------------------------------- prior
    def known_city(self, city: str, zip_code: str) -> bool:
        key = city_key(city)
        return key in self.cities or any(city_key(c) == key for c, _ in zip_places(zip_code))

    def prior(self, text: str, line: str) -> float:
        if line == "DATE":
            return 0.0 if not text or is_plausible_date(text) else -self.penalty
        f = fields_from_lines("", text)
        score = 0.0
        if f["CITY"] != NONE and not self.known_city(f["CITY"], f["ZIP"]):
            score -= self.penalty
        if f["STATE"] != NONE and state_code(f["STATE"]) is None:
            score -= self.penalty
        if f["ZIP"] != NONE and not is_valid_zip(f["ZIP"]):
            score -= self.penalty
        for key in ("CITY", "STATE"):
            pattern = case_pattern(f[key]) if f[key] != NONE else "none"
            if self.case_weight and pattern in self.case_log_prior.get(key, {}):
                score += self.case_weight * self.case_log_prior[key][pattern]
        return score

    # ---------------------------------------------------------------- candidates
    def city_candidates(self, city: str, zip_code: str) -> list[str]:
        """Known cities within ``max_edits`` letters of the reading, in the writer's case."""
        key = city_key(city)
        if not key or key in self.cities:
            return []
        choices = self.cities | {city_key(c) for c, _ in zip_places(zip_code)}
        found = process.extract(key, choices, scorer=Levenshtein.distance, limit=5,
                                score_cutoff=self.max_edits if len(key) > 4 else 1)
        return [respell(city, match) for match, _, _ in found]

    def candidates(self, text: str) -> list[str]:
        parts = text.split(SEP)
        if len(parts) != 3:
            return []
        city, state, zip_code = parts
        out = []
        for c in [city, *self.city_candidates(city, zip_code)]:
            for cv in case_variants(c) if self.case_weight else [c]:
                for sv in _state_variants(state, bool(self.case_weight)):
                    out.append(SEP.join([cv, sv, zip_code]))
        return out

    def rerank(self, log_probs: np.ndarray, beam: list[tuple[str, float]], line: str,
               expand: int = 3, image: np.ndarray | None = None) -> list[tuple[str, float]]:
        """The beam re-ranked by likelihood + prior (new candidates scored against the image).

        Returned scores are ``log P(text | image) + prior`` (``image``, the grey line, is not needed).
        """
        if not beam:
            return beam
        texts = dict(beam)
        if line == "CSZ":
            new = [t for text, _ in beam[:expand] for t in self.candidates(text) if t not in texts]
            new = list(dict.fromkeys(new))
            for text, ll in zip(new, text_log_likelihood(log_probs, new)):
                if np.isfinite(ll):
                    texts[text] = float(ll)
        ranked = sorted(((t, ll + self.prior(t, line)) for t, ll in texts.items()), key=lambda x: x[1], reverse=True)
        return ranked


def _state_variants(state: str, cases: bool) -> list[str]:
    base = state.rstrip(".")
    forms = [state, base, base + "."] if base else [state]
    if cases:
        forms = [v for f in forms for v in case_variants(f)]
    return list(dict.fromkeys(forms))


__all__ = ["Lexicon", "case_pattern", "city_key"]
