"""The style layer: case, dots, commas and spaces decided from the glyphs and the writer.

The field reader decides each character from a 48-pixel line alone; the style layer looks at how
*this* writer wrote it (:mod:`.glyphs`: glyph height against the line's own cap and x-height,
position against the baseline, the marks in the gaps) and what the writer does elsewhere in the
line (the case of the other letters of the word and line, the same letter elsewhere).

* :class:`StyleModel`: three small scikit-learn classifiers (``HistGradientBoostingClassifier``)
  trained on the fit forms, where the labels give the truth (each label forced-aligned to its
  line, :mod:`.align`): per letter upper/lower, per gap none/``.``/``,`` and space/no space.
* :class:`StyleReranker`: decoding that uses it. The best reading (after the lexicon) keeps its
  letters; candidates vary only case, dots, commas and spaces (each single change, the style
  model's choice, and combinations of both), are scored exactly against the image
  (:func:`~.decode.text_log_likelihood`) plus the lexicon prior plus weighted style log-probs,
  with the weights fitted on the held-out train forms (:func:`fit_weights`). It never respells:
  a candidate with other letters than the reading is never made.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handwriting_pipeline.fieldreader.align import align
from handwriting_pipeline.fieldreader.decode import text_log_likelihood
from handwriting_pipeline.fieldreader.glyphs import (
    CASE_FEATURES,
    GAP_FEATURES,
    GEOMETRY,
    PUNCT,
    LineStyle,
    Parsed,
    gap_text,
    letter_indices,
    line_style,
    split_gap,
)
from handwriting_pipeline.fieldreader.text import fields_from_lines
from handwriting_pipeline.forms.lines import LineSettings

logger = logging.getLogger(__name__)
STYLE_FILE = "style.joblib"
KINDS = ("case", "punct", "space")
PUNCT_CLASSES = ("", *PUNCT)
OTHER = {"DATE": "CSZ", "CSZ": "DATE"}  # a form's other line (the same writer)


def punct_class(gap: str) -> int:
    """0 none, 1 '.', 2 ',' (-1: anything else, e.g. two marks)."""
    punct = split_gap(gap)[0]
    return PUNCT_CLASSES.index(punct) if punct in PUNCT_CLASSES else -1


@dataclass
class Examples:
    """Style training rows: letters (case) and gaps (punctuation, space)."""

    case_x: list[np.ndarray] = field(default_factory=list)
    case_y: list[np.ndarray] = field(default_factory=list)
    gap_x: list[np.ndarray] = field(default_factory=list)
    punct_y: list[np.ndarray] = field(default_factory=list)
    space_y: list[np.ndarray] = field(default_factory=list)

    def add(self, style: LineStyle) -> None:
        p = style.parsed
        self.case_x.append(style.case)
        self.case_y.append(np.array([p.glyphs[i].isupper() for i in letter_indices(p)], dtype=int))
        self.gap_x.append(style.gaps)
        self.punct_y.append(np.array([punct_class(g) for g in p.gaps], dtype=int))
        self.space_y.append(np.array([-1 if "|" in g else int(" " in g) for g in p.gaps], dtype=int))

    def arrays(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        def cat(xs, width):
            return np.concatenate(xs) if xs else np.zeros((0, width))
        gap_x = cat(self.gap_x, len(GAP_FEATURES))
        punct_y, space_y = cat(self.punct_y, 0).astype(int), cat(self.space_y, 0).astype(int)
        return {"case": (cat(self.case_x, len(CASE_FEATURES)), cat(self.case_y, 0).astype(int)),
                "punct": (gap_x[punct_y >= 0], punct_y[punct_y >= 0]),
                "space": (gap_x[space_y >= 0], space_y[space_y >= 0])}


# the writer's other letters and lines (their case and dots as read)
WRITER = {"word_upper", "line_upper", "same_letter_upper", "other_line_upper", "other_dots", "other_commas"}
FEATURE_SETS = {"all": (True, True), "writer": (False, True), "glyphs": (True, False)}  # (geometry, writer)


def _columns(kind: str, geometry: bool, writer: bool = True) -> list[int]:
    names = CASE_FEATURES if kind == "case" else GAP_FEATURES
    geometric = GEOMETRY | {n for n in GAP_FEATURES if n.startswith(("gap_", "mark"))}
    return [i for i, n in enumerate(names) if (geometry or n not in geometric) and (writer or n not in WRITER)]


@dataclass
class StyleModel:
    """Per letter P(upper), per gap P(none / . / ,) and P(space), from glyph geometry and the writer."""

    models: dict[str, Any] = field(default_factory=dict)  # kind -> fitted classifier (absent: no opinion)
    geometry: bool = True  # False: without the glyph geometry features (ablation)
    writer: bool = True  # False: without the writer features (the other letters' case and dots as read)
    weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 1.0))
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, examples: Examples, geometry: bool = True, writer: bool = True, seed: int = 0) -> "StyleModel":
        from sklearn.ensemble import HistGradientBoostingClassifier

        models, summary = {}, {}
        for kind, (x, y) in examples.arrays().items():
            summary[kind] = {"rows": int(len(y)), "classes": np.bincount(y).tolist() if len(y) else []}
            if len(y) < 20 or len(set(y.tolist())) < 2:
                continue
            columns = _columns(kind, geometry, writer)
            names = [(CASE_FEATURES if kind == "case" else GAP_FEATURES)[i] for i in columns]
            categorical = [n in ("letter", "left_kind", "right_kind") for n in names]
            model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, max_leaf_nodes=15,
                                                   l2_regularization=1.0, categorical_features=categorical,
                                                   random_state=seed)
            x = x[:, columns].copy()
            x[:, np.isnan(x).all(axis=0)] = 0.0  # a feature never seen (e.g. no other line): one constant bin
            models[kind] = model.fit(x, y)
        return cls(models, geometry, writer, summary=summary)

    def log_probs(self, styles: Sequence[LineStyle]) -> list[dict[str, np.ndarray]]:
        """Per line and unit log-probabilities: case [letters, 2] (lower, upper), punct [gaps, 3]
        (none, '.', ','), space [gaps, 2] (one classifier call per kind for all lines)."""
        out: list[dict[str, np.ndarray]] = [{} for _ in styles]
        for kind, attr, width in (("case", "case", 2), ("punct", "gaps", 3), ("space", "gaps", 2)):
            blocks = [getattr(s, attr) for s in styles]
            x = np.concatenate(blocks) if blocks else np.zeros((0, 1))
            probs = np.full((len(x), width), 1.0 / width)
            model = self.models.get(kind)
            if model is not None and len(x):
                probs[:] = 0.0
                probs[:, model.classes_] = model.predict_proba(x[:, _columns(kind, self.geometry, self.writer)])
            logs = np.log(np.clip(probs, 1e-4, None))
            for i, part in enumerate(np.split(logs, np.cumsum([len(b) for b in blocks])[:-1])):
                out[i][kind] = part
        return out

    def save(self, folder: str | Path) -> Path:
        import joblib

        path = Path(folder) / STYLE_FILE
        joblib.dump(self, path)
        return path

    @classmethod
    def load(cls, folder: str | Path) -> "StyleModel | None":
        import joblib

        path = Path(folder) / STYLE_FILE
        return joblib.load(path) if path.is_file() else None


# --------------------------------------------------------------------------- training rows
def style_of(log_probs: np.ndarray, line: np.ndarray, text: str, name: str,
             settings: LineSettings, other: str = "") -> LineStyle | None:
    """The style features of reading ``text`` in ``line`` (None when it cannot be aligned);
    ``other``: the reading of the form's other line."""
    if not text:
        return None
    try:
        columns = align(log_probs, text, line.shape, settings)
    except ValueError:
        return None
    return None if columns is None else line_style(line, text, columns, name == "DATE", other)


def collect_examples(reader: Any, lines: Sequence[Mapping[str, np.ndarray]], texts: Sequence[Mapping[str, str]],
                     progress: bool = True) -> Examples:
    """Training rows of the style model: each line's true text aligned to the line."""
    from tqdm.auto import tqdm

    from handwriting_pipeline.forms.lines import has_ink, to_array

    examples = Examples()
    items = [(lines_[k], t[k], k, t.get(OTHER[k], "")) for lines_, t in zip(lines, texts) for k in lines_
             if t.get(k) and has_ink(lines_[k])]
    for start in tqdm(range(0, len(items), 64), desc="style rows", disable=not progress, leave=False):
        chunk = items[start:start + 64]
        log_probs = reader.log_probs([to_array(line, reader.config.lines) for line, _, _, _ in chunk])
        for (line, text, name, other), lp in zip(chunk, log_probs):
            style = style_of(lp, line, text, name, reader.config.lines, other)
            if style is not None:
                examples.add(style)
    return examples


# --------------------------------------------------------------------------- decoding
@dataclass
class Variant:
    """One reading in the base reading's letters: its case per letter, punctuation and space per gap."""

    upper: tuple[bool, ...]
    punct: tuple[int, ...]  # PUNCT_CLASSES index (-1: keep the base gap's own punctuation)
    space: tuple[int, ...]  # 1/0 (-1: keep the base gap's own spacing, e.g. at a separator)

    def render(self, base: Parsed) -> str:
        letters = dict(zip(letter_indices(base), self.upper))
        out = [base.lead]
        for i, (glyph, gap) in enumerate(zip(base.glyphs, base.gaps)):
            if i in letters:
                out.append(glyph.upper() if letters[i] else glyph.lower())
            else:
                out.append(glyph)
            if self.punct[i] < 0 and self.space[i] < 0:
                out.append(gap)
                continue
            punct, space, sep = split_gap(gap) if gap else ("", False, "")
            out.append(gap_text(PUNCT_CLASSES[self.punct[i]] if self.punct[i] >= 0 else punct,
                                bool(self.space[i]) if self.space[i] >= 0 else space, sep))
        return "".join(out)

    def style(self, lp: Mapping[str, np.ndarray]) -> np.ndarray:
        """Style log-probability of this variant per kind (case, punct, space)."""
        case = sum(lp["case"][i, int(u)] for i, u in enumerate(self.upper))
        punct = sum(lp["punct"][i, p] for i, p in enumerate(self.punct) if p >= 0)
        space = sum(lp["space"][i, s] for i, s in enumerate(self.space) if s >= 0)
        return np.array([case, punct, space], dtype=np.float64)


def base_variant(parsed: Parsed) -> Variant:
    upper = tuple(parsed.glyphs[i].isupper() for i in letter_indices(parsed))
    punct = tuple(punct_class(g) for g in parsed.gaps)
    space = tuple(-1 if "|" in g or punct_class(g) < 0 else int(" " in g) for g in parsed.gaps)
    return Variant(upper, punct, space)


def _choice(lp: Mapping[str, np.ndarray], base: Variant) -> Variant:
    """Every unit as the style model would have it."""
    upper = tuple(bool(lp["case"][i].argmax()) for i in range(len(base.upper)))
    punct = tuple(int(lp["punct"][i].argmax()) if p >= 0 else -1 for i, p in enumerate(base.punct))
    space = tuple(int(lp["space"][i].argmax()) if s >= 0 else -1 for i, s in enumerate(base.space))
    return Variant(upper, punct, space)


def _replace(v: Variant, kind: str, i: int, value: Any) -> Variant:
    values = list(getattr(v, kind))
    values[i] = value
    return Variant(**{**v.__dict__, kind: tuple(values)})


def variants(base: Variant, lp: Mapping[str, np.ndarray] | None, floor: float = np.log(0.02)) -> list[Variant]:
    """The base reading's case/dot/space variants worth scoring: every single change of the base
    (with a style model: those it gives at least ``exp(floor)``), its choice, per kind, and its
    choice less any one unit."""
    def worth(kind: str, i: int, option: int) -> bool:
        return lp is None or lp[kind][i, option] >= floor

    out = [base]
    for i, u in enumerate(base.upper):
        if worth("case", i, int(not u)):
            out.append(_replace(base, "upper", i, not u))
    for i, p in enumerate(base.punct):
        out += [_replace(base, "punct", i, q) for q in range(len(PUNCT_CLASSES))
                if p >= 0 and q != p and worth("punct", i, q)]
    for i, s in enumerate(base.space):
        if s >= 0 and worth("space", i, 1 - s):
            out.append(_replace(base, "space", i, 1 - s))
    for case in (True, False):  # the whole line in capitals / in small letters
        out.append(Variant(tuple(case for _ in base.upper), base.punct, base.space))
    if lp is None:
        return out
    choice = _choice(lp, base)
    out.append(choice)
    for kind in ("upper", "punct", "space"):
        out.append(Variant(**{**base.__dict__, kind: getattr(choice, kind)}))
        for i, (a, b) in enumerate(zip(getattr(base, kind), getattr(choice, kind))):
            if a != b:
                out.append(_replace(choice, kind, i, a))
    return out


@dataclass
class Choices:
    """One line's candidates: their texts, ``log P(text | image) + prior`` and style log-probs."""

    texts: list[str]
    score: np.ndarray
    style: np.ndarray  # [candidates, 3]

    def totals(self, weights: Mapping[str, float]) -> np.ndarray:
        return self.score + self.style @ np.array([weights.get(k, 0.0) for k in KINDS])

    def ranked(self, weights: Mapping[str, float]) -> list[tuple[str, float]]:
        totals = self.totals(weights)
        order = np.argsort(-totals, kind="stable")
        return [(self.texts[i], float(totals[i])) for i in order]


class StyleReranker:
    """A :data:`~.predict.Reranker`: the lexicon's re-ranking, then the style layer's variants.

    :meth:`batch` re-ranks many lines at once (one style-model call per kind for all of them);
    calling it on one line works too.
    """

    def __init__(self, settings: LineSettings, style: StyleModel | None = None, lexicon: Any = None,
                 weights: Mapping[str, float] | None = None, use_style: bool = True) -> None:
        self.settings, self.style, self.lexicon = settings, style, lexicon
        self.weights = dict(weights if weights is not None else (style.weights if style else {}))
        self.use_style = use_style and style is not None

    def choices(self, log_probs: Sequence[np.ndarray], beams: Sequence[list[tuple[str, float]]], names: Sequence[str],
                images: Sequence[np.ndarray | None], forms: Sequence[int] | None = None) -> list[Choices | None]:
        """Each line's candidates (the base reading's case/dot/space variants and the beam);
        ``forms``: which form each line belongs to (its other line's reading is a writer feature)."""
        ranked = [self.lexicon.rerank(lp, beam, name) if self.lexicon else beam
                  for lp, beam, name in zip(log_probs, beams, names)]
        best = {(f, n): r[0][0] for f, n, r in zip(forms or [], names, ranked) if r}
        others = [best.get((f, OTHER.get(n)), "") for f, n in zip(forms, names)] if forms else [""] * len(names)
        styles = [style_of(lp, image, r[0][0], name, self.settings, other)
                  if (r and image is not None and self.use_style) else None
                  for lp, r, name, image, other in zip(log_probs, ranked, names, images, others)]
        found = [s for s in styles if s is not None]
        unit_lps = iter(self.style.log_probs(found) if found else [])
        return [self.weigh(lp, r, name, next(unit_lps) if s is not None else None) if r else None
                for lp, r, name, s in zip(log_probs, ranked, names, styles)]

    def weigh(self, log_probs: np.ndarray, ranked: list[tuple[str, float]], name: str,
              lp: Mapping[str, np.ndarray] | None) -> Choices:
        """The candidates of one line: ``ranked`` (the lexicon's readings, best first) and the best
        reading's case/dot/space variants, with the style log-probs ``lp`` of its units (None: none)."""
        base_text = ranked[0][0]
        parsed = Parsed.of(base_text)
        key = parsed.key()
        base = base_variant(parsed)
        texts = {base_text: base}
        for v in variants(base, lp):
            texts.setdefault(v.render(parsed), v)
        for text, _ in ranked:  # the beam's own readings in the same letters (other case, dots, spaces)
            other = Parsed.of(text)
            if text not in texts and other.key() == key:
                texts[text] = base_variant(other)
        # every candidate in these letters scored alike: exact likelihood (the beam's is a lower bound) + prior
        likelihoods = dict(zip(texts, text_log_likelihood(log_probs, list(texts))))
        prior = self.lexicon.prior if self.lexicon else (lambda text, line: 0.0)
        out_texts, scores, styles = [], [], []
        for text, v in texts.items():
            score = likelihoods[text] + prior(text, name)
            if np.isfinite(score):
                out_texts.append(text)
                scores.append(score)
                styles.append(v.style(lp) if lp is not None else np.zeros(3))
        base_style = base.style(lp) if lp is not None else np.zeros(3)
        for text, score in ranked:  # other letters: the style layer has no opinion on them
            if text not in texts:
                out_texts.append(text)
                scores.append(score)
                styles.append(base_style)
        return Choices(out_texts, np.array(scores), np.array(styles).reshape(-1, 3))

    def batch(self, log_probs: Sequence[np.ndarray], beams: Sequence[list[tuple[str, float]]], names: Sequence[str],
              images: Sequence[np.ndarray | None], forms: Sequence[int] | None = None) -> list[list[tuple[str, float]]]:
        return [c.ranked(self.weights) if c else beam
                for c, beam in zip(self.choices(log_probs, beams, names, images, forms), beams)]

    def __call__(self, log_probs: np.ndarray, beam: list[tuple[str, float]], name: str,
                 image: np.ndarray | None = None) -> list[tuple[str, float]]:
        return self.batch([log_probs], [beam], [name], [image])[0]


@dataclass
class LineBeams:
    """The lines of many forms read once: (form index, line name, grey line), log-probs, beams."""

    items: list[tuple[int, str, np.ndarray]]
    log_probs: list[np.ndarray]
    beams: list[list[tuple[str, float]]]
    forms: int

    @classmethod
    def read(cls, reader: Any, lines_per_form: Sequence[Mapping[str, np.ndarray]], beam: int = 8) -> "LineBeams":
        from handwriting_pipeline.fieldreader.decode import beam_search
        from handwriting_pipeline.forms.lines import has_ink, to_array

        items = [(i, name, line) for i, lines in enumerate(lines_per_form) for name, line in lines.items()
                 if has_ink(line)]
        log_probs = reader.log_probs([to_array(line, reader.config.lines) for _, _, line in items])
        return cls(items, log_probs, [beam_search(lp, beam) for lp in log_probs], len(lines_per_form))


def line_choices(reader: Any, lines_per_form: Sequence[Mapping[str, np.ndarray]] | LineBeams,
                 reranker: StyleReranker, beam: int = 8) -> list[dict[str, Choices | None]]:
    """Per form and line, the candidates the style layer weighs (what :func:`fit_weights` needs);
    ``lines_per_form`` may be lines already read (:class:`LineBeams`)."""
    read = lines_per_form if isinstance(lines_per_form, LineBeams) else LineBeams.read(reader, lines_per_form, beam)
    found = reranker.choices(read.log_probs, read.beams, [n for _, n, _ in read.items],
                             [line for _, _, line in read.items], [i for i, _, _ in read.items])
    out: list[dict[str, Choices | None]] = [{} for _ in range(read.forms)]
    for (i, name, _), choices in zip(read.items, found):
        out[i][name] = choices
    return out


# --------------------------------------------------------------------------- weights
def _correct(date_text: str, csz_text: str, gold: Mapping[str, str]) -> tuple[bool, int]:
    fields = fields_from_lines(date_text, csz_text)
    right = [fields[k] == gold[k] for k in gold]
    return all(right), sum(right)


def fit_weights(choices: Sequence[Mapping[str, Choices | None]], gold: Sequence[Mapping[str, str]],
                grid: Sequence[float] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)) -> tuple[dict[str, float], float]:
    """The style weights (per kind) that read the held-out forms best: most forms exactly right,
    then most fields right, then the smallest weights. Returns (weights, FLA share)."""
    best, best_key = {}, None
    for combo in itertools.product(grid, repeat=len(KINDS)):
        weights = dict(zip(KINDS, combo))
        forms, fields = 0, 0
        for lines, g in zip(choices, gold):
            texts = {k: (c.ranked(weights)[0][0] if c else "") for k, c in lines.items()}
            exact, right = _correct(texts.get("DATE", ""), texts.get("CSZ", ""), g)
            forms, fields = forms + exact, fields + right
        key = (forms, fields, -sum(combo))
        if best_key is None or key > best_key:
            best, best_key = weights, key
    return best, (best_key[0] / max(1, len(gold)) if best_key else 0.0)


__all__ = ["Choices", "Examples", "StyleModel", "StyleReranker", "collect_examples", "fit_weights", "style_of"]
