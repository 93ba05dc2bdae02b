"""A form as a YAML file: the form spec's models, its checks and the shipped forms.

One file per form, ``conf/base/forms/<name>.yml``::

    name: hsf_top
    title: NIST HSF form, top section
    page:
      size: [2560, 3300]             # the template page, pixels [width, height]
      registration: {method: box_lines}
      crop: [100, 300, 2560, 650]    # x0, y0, x1, y1 on the page (optional)
    lines:                           # what is written on one line, in order
      - {name: DATE, box: [770, 188, 1135, 295], fields: [DATE]}
      - {name: CSZ, box: [1185, 188, 2143, 295], fields: [CITY, STATE, ZIP]}
    fields:                          # the answer's keys, in order
      - {name: DATE, type: date}
      - {name: ZIP, type: us_zip}
      - {name: ORDER_NO, type: digits, digits: {length: 8}}

Line boxes are in crop coordinates when the page has a ``crop``, else in page coordinates.
A field type's options sit under a key named after the type (``digits: {length: 8}``,
``choice: {options: [...]}``). :func:`load_form` checks a spec when it is read and raises a
:class:`FormSpecError` naming the file and the key: an unknown key or field type, a box
outside the page (or crop), two fields or lines with one name, a line naming an undeclared
field, a field on no line (or on two).

The models live on the ground floor because the field constants of the HSF form
(``fields.KEYS``, ``ALLOWED_CHARS``, ``WRITTEN_CHARS``) are derived from its spec;
:mod:`handwriting_pipeline.forms.spec` is the form-facing entry (registration, boxes).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr, ValidationError, field_validator

from handwriting_pipeline.fields.charsets import TYPE_NAMES

#: where the shipped form specs live (the project's ``conf/base/forms``)
FORMS_DIR = Path(__file__).resolve().parents[3] / "conf" / "base" / "forms"
#: the form the pipeline reads today (``form`` in ``conf/base/parameters.yml``)
HSF_FORM = "hsf_top"

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels, x1/y1 exclusive)


class FormSpecError(ValueError):
    """A form spec that cannot be used: the message names the file and the key."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_box(box: Box | None) -> Box | None:
    if box is not None and not (0 <= box[0] < box[2] and 0 <= box[1] < box[3]):
        raise ValueError(f"a box is [x0, y0, x1, y1] with 0 <= x0 < x1 and 0 <= y0 < y1, got {list(box)}")
    return box


# --------------------------------------------------------------------------- page
class BoxLinesRegistration(_Model):
    """The page is registered on its printed box lines (deskew, then the box row moved onto the
    template's), as :mod:`handwriting_pipeline.forms.registration` does for the HSF form."""

    method: Literal["box_lines"]


class FeaturesRegistration(_Model):
    """Registration on image features against a blank ``template`` image of the form, for forms
    without a printed box row: ORB key points matched to the template's, a similarity transform
    fitted with RANSAC, refined with ECC (:func:`handwriting_pipeline.forms.features.register_features`)."""

    method: Literal["features"]
    template: str  # the blank form's image (the template page), relative to the spec file
    max_features: PositiveInt = 5000
    min_matches: PositiveInt = 25  # fewer inlier matches: the page is not registered (an error names it)


Registration = Annotated[BoxLinesRegistration | FeaturesRegistration, Field(discriminator="method")]


class Page(_Model):
    """The template page: its size, how a scan is registered onto it and the part kept."""

    size: tuple[PositiveInt, PositiveInt]
    registration: Registration = BoxLinesRegistration(method="box_lines")
    crop: Box | None = None
    #: how the line boxes are found on a registered image (:func:`..forms.boxes.find_line_boxes`):
    #: ``outline`` - each box's printed outline near its template place; ``row`` - the boxes sit
    #: side by side in one printed row, found together (the HSF top section)
    line_boxes: Literal["outline", "row"] = "outline"

    _box = field_validator("crop")(_check_box)

    @property
    def area(self) -> tuple[int, int]:
        """(width, height) of what line boxes are measured on: the crop, else the page."""
        if self.crop is None:
            return self.size
        return self.crop[2] - self.crop[0], self.crop[3] - self.crop[1]


# --------------------------------------------------------------------------- lines and fields
class Line(_Model):
    """One handwritten line: its box (where it applies) and the fields written on it, in order."""

    name: str
    box: Box | None = None
    fields: tuple[str, ...] = Field(min_length=1)

    _box = field_validator("box")(_check_box)


class DateOptions(_Model):
    two_digit_year_from: int = 1900  # 2-digit years fall in [from, from + 99]


class DigitsOptions(_Model):
    length: PositiveInt | None = None  # exactly this many digits
    min_length: PositiveInt | None = None
    max_length: PositiveInt | None = None


class AmountOptions(_Model):
    decimals: int = Field(2, ge=0, le=6)  # places of the normalized decimal string


class PhoneOptions(_Model):
    country_code: str = Field("1", pattern=r"^\d{1,3}$")  # prefixed as +<code> when not written
    national_digits: PositiveInt = 10


class TextOptions(_Model):
    max_length: PositiveInt | None = None


class ChoiceOptions(_Model):
    options: tuple[str, ...] = Field(min_length=1)


#: the option block each type may have (the key under a field is the type's name)
OPTION_MODELS: dict[str, type[_Model]] = {
    "date": DateOptions, "digits": DigitsOptions, "amount": AmountOptions, "phone": PhoneOptions,
    "text": TextOptions, "choice": ChoiceOptions,
}
#: types that cannot be used without their option block
OPTIONS_REQUIRED = ("choice",)


class FieldSpec(_Model):
    """One field of the answer: its key, its type and the type's options."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")
    type: str
    title: str | None = None
    date: DateOptions | None = None
    digits: DigitsOptions | None = None
    amount: AmountOptions | None = None
    phone: PhoneOptions | None = None
    text: TextOptions | None = None
    choice: ChoiceOptions | None = None

    @property
    def options(self) -> _Model | None:
        """The type's option block (its defaults when the spec gives none; None for a type
        without options, or a ``choice`` without its block, which :func:`load_form` refuses)."""
        model = OPTION_MODELS.get(self.type)
        given = getattr(self, self.type, None) if model else None
        if given is not None or model is None or self.type in OPTIONS_REQUIRED:
            return given
        return model()


class FormSpec(_Model):
    """One form: page, lines and fields (see the module docstring)."""

    _folder: Path | None = PrivateAttr(default=None)  # the spec file's folder (relative template paths)
    _path: Path | None = PrivateAttr(default=None)  # the spec file it was read from

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    page: Page
    lines: tuple[Line, ...] = Field(min_length=1)
    fields: tuple[FieldSpec, ...] = Field(min_length=1)

    @property
    def keys(self) -> tuple[str, ...]:
        """The field names in order: the answer's keys."""
        return tuple(f.name for f in self.fields)

    @property
    def line_names(self) -> tuple[str, ...]:
        return tuple(line.name for line in self.lines)

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"form '{self.name}' has no field '{name}'; fields: {', '.join(self.keys)}")

    def line(self, name: str) -> Line:
        for line in self.lines:
            if line.name == name:
                return line
        raise KeyError(f"form '{self.name}' has no line '{name}'; lines: {', '.join(self.line_names)}")

    @property
    def reference(self) -> str:
        """What :func:`load_form` takes to load this spec again: its name for a shipped form (or a
        spec built in code), else the path of the file it was read from."""
        shipped = shipped_forms().get(self.name)
        if self._path is None or (shipped is not None and shipped.resolve() == self._path):
            return self.name
        return str(self._path)

    def template_path(self) -> Path | None:
        """The blank template image of a ``features`` registration, resolved against the folder of
        the spec file it was read from (the shipped forms' folder for a spec built in code)."""
        registration = self.page.registration
        if registration.method != "features":
            return None
        path = Path(registration.template).expanduser()
        return path if path.is_absolute() else (self._folder or FORMS_DIR) / path

    def layout(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """The lines with their fields and types, in order: what a reader written for one form
        needs another form to share (its names and sizes aside)."""
        return [(line.name, [(f, self.field(f).type) for f in line.fields]) for line in self.lines]

    def same_layout(self, other: "FormSpec") -> bool:
        """Whether the two forms have the same lines, fields and field types (:meth:`layout`)."""
        return self.layout() == other.layout()

    def line_of(self, field: str) -> Line:
        """The line a field is written on."""
        for line in self.lines:
            if field in line.fields:
                return line
        raise KeyError(f"form '{self.name}' has no field '{field}' on a line")


# --------------------------------------------------------------------------- checks
def _loc(data: object, loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the YAML key: ``fields[2] (ZIP).type``."""
    out, node = "", data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list | tuple) and part < len(node) else None
            if isinstance(node, dict) and "name" in node:
                out += f" ({node['name']})"
        elif isinstance(node, dict) and part not in node and node.get("method") == part:
            continue  # the tag pydantic adds for a union member (registration method)
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def _named_twice(kind: str, names: list[str]) -> list[str]:
    """``<kind>[i] (name).name: two <kind> named ...`` for every name given a second time."""
    first: dict[str, int] = {}
    errors = []
    for i, name in enumerate(names):
        if name in first:
            errors.append(f"{kind}[{i}] ({name}).name: two {kind} named '{name}' ({kind}[{first[name]}] and {kind}[{i}])")
        first.setdefault(name, i)
    return errors


def _cross_checks(spec: FormSpec) -> list[str]:
    """``key: message`` for what the models alone cannot see."""
    errors = _named_twice("fields", [f.name for f in spec.fields]) + _named_twice("lines", [ln.name for ln in spec.lines])
    seen = {f.name for f in spec.fields}
    for i, f in enumerate(spec.fields):
        key = f"fields[{i}] ({f.name})"
        if f.type not in TYPE_NAMES:
            errors.append(f"{key}.type: unknown field type '{f.type}'; known types: {', '.join(TYPE_NAMES)}")
            continue
        for other in OPTION_MODELS:
            if other != f.type and getattr(f, other) is not None:
                errors.append(f"{key}.{other}: options of type '{other}' on a field of type '{f.type}'")
        if f.type in OPTIONS_REQUIRED and getattr(f, f.type) is None:
            errors.append(f"{key}.{f.type}: a '{f.type}' field needs its options ({f.type}: {{options: [...]}})")
        digits = f.digits
        if digits and digits.length and (digits.min_length or digits.max_length):
            errors.append(f"{key}.digits: give either length or min_length/max_length")
    width, height = spec.page.size
    crop = spec.page.crop
    if crop is not None and (crop[2] > width or crop[3] > height):
        errors.append(f"page.crop: {list(crop)} lies outside the page ({width}x{height})")
    area_w, area_h = spec.page.area
    where = "the crop" if crop is not None else "the page"
    placed: dict[str, str] = {}
    for i, line in enumerate(spec.lines):
        key = f"lines[{i}] ({line.name})"
        if line.box is not None and (line.box[2] > area_w or line.box[3] > area_h):
            errors.append(f"{key}.box: {list(line.box)} lies outside {where} ({area_w}x{area_h})")
        for name in line.fields:
            if name not in seen:
                errors.append(f"{key}.fields: '{name}' is not a declared field; fields: {', '.join(spec.keys)}")
            elif name in placed:
                errors.append(f"{key}.fields: '{name}' is on two lines ({placed[name]} and {line.name})")
            else:
                placed[name] = line.name
    for i, f in enumerate(spec.fields):
        if f.name not in placed:
            errors.append(f"fields[{i}] ({f.name}): on no line; every field is written on one line")
    return errors


def parse_form(data: object, source: str = "<spec>") -> FormSpec:
    """A form spec from its YAML data; FormSpecError naming ``source`` and the key otherwise."""
    if not isinstance(data, dict):
        raise FormSpecError(f"{source}: a form spec is a mapping (name, title, page, lines, fields)")
    try:
        spec = FormSpec.model_validate(data)
    except ValidationError as err:
        lines = [f"{source}: {_loc(data, e['loc'])}: {e['msg']}" for e in err.errors()]
        raise FormSpecError("\n".join(lines)) from None
    errors = _cross_checks(spec)
    if errors:
        raise FormSpecError("\n".join(f"{source}: {e}" for e in errors))
    return spec


def shipped_forms() -> dict[str, Path]:
    """The forms that ship with the project: name -> ``conf/base/forms/<name>.yml``."""
    return {path.stem: path for path in sorted(FORMS_DIR.glob("*.yml"))}


@lru_cache(maxsize=32)
def _load(path: Path) -> FormSpec:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise FormSpecError(f"{path}: not valid YAML: {err}") from None
    spec = parse_form(data, str(path))
    spec._folder, spec._path = path.parent, path
    return spec


def load_form(name_or_path: str | Path) -> FormSpec:
    """A shipped form by name (``hsf_top``) or a spec file by path; read and checked once
    (cached). Raises FormSpecError for an unknown name, a missing file or a bad spec."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith((".yml", ".yaml")) or "/" in text or "\\" in text:
        path = Path(name_or_path).expanduser().resolve()
        if not path.is_file():
            raise FormSpecError(f"{path}: no such form spec file")
        return _load(path)
    forms = shipped_forms()
    if text not in forms:
        raise FormSpecError(f"unknown form '{text}'; shipped forms ({FORMS_DIR}): {', '.join(forms) or 'none'}")
    return _load(forms[text].resolve())


def data_root(form: str | Path | None) -> str:
    """Where a run of ``form`` keeps its data: ``data`` for the HSF form, ``data/forms/<name>`` for
    another (its curated forms, models, predictions and reports stay apart). The catalog's paths
    start with it (the ``form_data`` resolver, ``settings.py``)."""
    name = Path(str(form)).stem if form else HSF_FORM
    return "data" if name in ("", HSF_FORM) else f"data/forms/{name}"


def is_hsf_layout(spec: FormSpec | None) -> bool:
    """Whether ``spec`` has the HSF top section's layout - its lines, fields and field types
    (None: the HSF form itself). The parts written for that form (its renderer and box-row crop,
    the lexicon and style layer, the layout engines, the ensembles, the trust levels) run only
    then; shared code asks this, never a form's name."""
    return spec is None or spec.layout() == _hsf_layout()


@lru_cache(maxsize=1)
def _hsf_layout() -> list[tuple[str, list[tuple[str, str]]]]:
    return hsf_form().layout()


def hsf_form() -> FormSpec:
    """The HSF top-section form (:data:`HSF_FORM`), the layout the pipeline reads today."""
    return load_form(HSF_FORM)


def active_form(name: str | Path | None) -> FormSpec:
    """The form a run reads (``form`` in ``parameters.yml``; None: the HSF form), read and checked
    before the run starts: an unknown name, a missing file or a bad spec stops it with the file
    and the key named (:class:`FormSpecError`)."""
    return load_form(name or HSF_FORM)
