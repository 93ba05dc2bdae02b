"""Field types: what a value of a form's field may look like and its canonical form.

One class per type and one line in :data:`FIELD_TYPES` (the way engines are registered in
:mod:`handwriting_pipeline.registry`). A form spec names a type per field
(:mod:`.formspec`); :func:`field_type` gives the type with the field's options::

    zip_type = field_type("us_zip")
    zip_type.validate("30134-1234")            # True
    zip_type.normalize("30134-1234")           # "30134"
    field_type("digits", DigitsOptions(length=8)).validate("1234567")  # False

Each type brings

* ``allowed_chars``: what an engine may output; ``written_chars``: what a person may type
  (both from :data:`.charsets.CHARS`, the table the HSF constants are derived from);
* ``validate(value) -> bool``: the value is a well-formed value of the type;
* ``normalize(value, context=None) -> str | None``: its canonical form (ISO date, USPS code,
  the gazetteer's city, ZIP5, digits, a decimal string, ``+<country><number>``, the choice
  as the spec spells it, ``"true"``/``"false"``), None when there is none. ``context`` holds the
  form's other written fields by type name (``{"us_state": "GA", "us_zip": "30134"}``): the
  city needs its state and ZIP;
* ``candidates(context=None)``: the lexicon a reading may be matched against (US states,
  ZIP codes, gazetteer cities, the choice's options), None for types without one.

The US types wrap the existing rules (:mod:`.dates`, :mod:`.states`, :mod:`.normalize`), so
they agree with the HSF pipeline's normalized columns. Their ``normalize`` may be more lenient
than ``validate``: ``validate`` says the value is well-formed as written, ``normalize`` finds
the canonical value where it can (a state name one letter off, a city a few edits from the
gazetteer's).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, ClassVar

from pydantic import BaseModel

from handwriting_pipeline.fields.charsets import CHARS
from handwriting_pipeline.fields.dates import is_plausible_date
from handwriting_pipeline.fields.formspec import (
    OPTION_MODELS,
    AmountOptions,
    ChoiceOptions,
    DateOptions,
    DigitsOptions,
    FieldSpec,
    FormSpec,
    PhoneOptions,
    TextOptions,
)
from handwriting_pipeline.fields.normalize import (
    normalize_city,
    normalize_date,
    normalize_state,
    normalize_zip,
    zip_cities,
)
from handwriting_pipeline.fields.schema import clean_value, is_missing
from handwriting_pipeline.fields.states import STATE_NAMES, is_valid_state, is_valid_zip, zips_for_place

Context = Mapping[str, str] | None


class FieldType:
    """Base of the field types; ``options`` is the type's option model (its defaults if None)."""

    name: ClassVar[str] = ""

    def __init__(self, options: BaseModel | None = None) -> None:
        model = OPTION_MODELS.get(self.name)
        if options is None and model is not None:
            options = model()
        if model is not None and not isinstance(options, model):
            raise TypeError(f"field type '{self.name}' takes {model.__name__} options, got {type(options).__name__}")
        self.options = options

    @property
    def allowed_chars(self) -> str:
        return CHARS[self.name].allowed

    @property
    def written_chars(self) -> str:
        return CHARS[self.name].written

    def validate(self, value: Any) -> bool:
        raise NotImplementedError

    def normalize(self, value: Any, context: Context = None) -> str | None:
        raise NotImplementedError

    def candidates(self, context: Context = None) -> list[str] | None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options!r})" if self.options is not None else f"{type(self).__name__}()"


def _context(context: Context, type_name: str) -> str:
    value = (context or {}).get(type_name, "")
    return "" if is_missing(value) else str(value)


# --------------------------------------------------------------------------- US types (HSF)
class DateType(FieldType):
    """A written date; normalized to ``YYYY-MM-DD`` (:func:`.normalize.normalize_date`)."""

    name = "date"
    options: DateOptions

    def validate(self, value: Any) -> bool:
        return not is_missing(value) and is_plausible_date(str(value))

    def normalize(self, value: Any, context: Context = None) -> str | None:
        return normalize_date(clean_value(value), self.options.two_digit_year_from) or None


class USStateType(FieldType):
    """A US state as written (code, name, traditional abbreviation); normalized to its USPS code."""

    name = "us_state"

    def validate(self, value: Any) -> bool:
        return not is_missing(value) and is_valid_state(str(value))

    def normalize(self, value: Any, context: Context = None) -> str | None:
        return normalize_state(clean_value(value)) or None

    def candidates(self, context: Context = None) -> list[str] | None:
        return list(STATE_NAMES)


@lru_cache(maxsize=1)
def _all_zips() -> tuple[str, ...]:
    import zipcodes

    return tuple(sorted({row["zip_code"] for row in zipcodes.list_all()}))


class USZipType(FieldType):
    """A US ZIP or ZIP+4; normalized to the five-digit ZIP."""

    name = "us_zip"

    def validate(self, value: Any) -> bool:
        return not is_missing(value) and is_valid_zip(str(value))

    def normalize(self, value: Any, context: Context = None) -> str | None:
        return normalize_zip(clean_value(value))[0] or None

    def candidates(self, context: Context = None) -> list[str] | None:
        """The ZIPs of the context's city and state (``us_city``, ``us_state``), else every ZIP
        of the offline database."""
        city, state = _context(context, "us_city"), normalize_state(_context(context, "us_state"))
        if city and state:
            return list(zips_for_place(city, state))
        return list(_all_zips())


@lru_cache(maxsize=1)
def _all_cities() -> tuple[str, ...]:
    import zipcodes

    return tuple(sorted({row["city"] for row in zipcodes.list_all()}))


class USCityType(FieldType):
    """A US city; normalized to the gazetteer's spelling when the context's ZIP lies in its
    state and the city matches one of that ZIP's cities, else title-cased
    (:func:`.normalize.normalize_city`, the ``CITY_name`` column); None for text that is not a
    city (no letter, characters outside ``written_chars``)."""

    name = "us_city"

    def validate(self, value: Any) -> bool:
        text = clean_value(value)
        return (not is_missing(value) and any(c.isalpha() for c in text)
                and all(c in self.written_chars for c in text))

    def normalize(self, value: Any, context: Context = None) -> str | None:
        if not self.validate(value):  # no letters, or characters no city has
            return None
        state = normalize_state(_context(context, "us_state"))
        zip5 = normalize_zip(_context(context, "us_zip"))[0]
        name, _ = normalize_city(clean_value(value), state, zip5)
        return name or None

    def candidates(self, context: Context = None) -> list[str] | None:
        """The cities of the context's ZIP (in its state, when given), else every gazetteer city."""
        zip5 = normalize_zip(_context(context, "us_zip"))[0]
        if zip5:
            state = normalize_state(_context(context, "us_state"))
            return list(dict.fromkeys(c for c, st in zip_cities(zip5) if not state or st == state))
        return list(_all_cities())


# --------------------------------------------------------------------------- general types
def _digits_of(value: Any) -> str | None:
    """The digits of a value written with optional spaces or hyphens, None otherwise."""
    text = clean_value(value)
    if is_missing(value) or not re.fullmatch(r"\d[\d \-]*", text):
        return None
    return re.sub(r"\D", "", text)


class DigitsType(FieldType):
    """A number written as digits (an order number, an account); spaces and hyphens between
    digit groups allowed; normalized to the digits."""

    name = "digits"
    options: DigitsOptions

    def validate(self, value: Any) -> bool:
        digits = _digits_of(value)
        if digits is None:
            return False
        o = self.options
        return ((o.length is None or len(digits) == o.length) and (o.min_length is None or len(digits) >= o.min_length)
                and (o.max_length is None or len(digits) <= o.max_length))

    def normalize(self, value: Any, context: Context = None) -> str | None:
        return _digits_of(value) if self.validate(value) else None


_AMOUNT = re.compile(r"\$?\s*(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\$?\s*\.\d+")


class AmountType(FieldType):
    """A money amount (``$1,234.50``, ``12.5``, ``300``); normalized to a decimal string with
    ``decimals`` places (``1234.50``)."""

    name = "amount"
    options: AmountOptions

    def validate(self, value: Any) -> bool:
        return not is_missing(value) and bool(_AMOUNT.fullmatch(clean_value(value)))

    def normalize(self, value: Any, context: Context = None) -> str | None:
        if not self.validate(value):
            return None
        text = re.sub(r"[$,\s]", "", clean_value(value))
        try:
            amount = Decimal(text)
        except InvalidOperation:
            return None
        return str(amount.quantize(Decimal(1).scaleb(-self.options.decimals)))


class PhoneType(FieldType):
    """A phone number (``(404) 555-0123``, ``404.555.0123``, ``+1 404 555 0123``); normalized
    E.164-style: ``+<country code><national number>``."""

    name = "phone"
    options: PhoneOptions

    def _number(self, value: Any) -> str | None:
        text = clean_value(value)
        if is_missing(value) or not re.fullmatch(r"\+?[\d\s().\-]+", text):
            return None
        digits = re.sub(r"\D", "", text)
        code, national = self.options.country_code, self.options.national_digits
        if len(digits) == national and not text.startswith("+"):
            return f"+{code}{digits}"
        if len(digits) == len(code) + national and digits.startswith(code):
            return f"+{digits}"
        return None

    def validate(self, value: Any) -> bool:
        return self._number(value) is not None

    def normalize(self, value: Any, context: Context = None) -> str | None:
        return self._number(value)


class TextType(FieldType):
    """Free text (a name, a street); normalized to the text with its spaces collapsed."""

    name = "text"
    options: TextOptions

    def validate(self, value: Any) -> bool:
        text = clean_value(value)
        limit = self.options.max_length
        return not is_missing(value) and (limit is None or len(text) <= limit)

    def normalize(self, value: Any, context: Context = None) -> str | None:
        return clean_value(value) if self.validate(value) else None


def _fold(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(text).lower())


class ChoiceType(FieldType):
    """One of the spec's options, matched ignoring case, spaces and punctuation; normalized
    to the option as the spec spells it."""

    name = "choice"
    options: ChoiceOptions

    def _option(self, value: Any) -> str | None:
        if is_missing(value):
            return None
        hits = [o for o in self.options.options if _fold(o) == _fold(value)]
        return hits[0] if hits else None

    def validate(self, value: Any) -> bool:
        return self._option(value) is not None

    def normalize(self, value: Any, context: Context = None) -> str | None:
        return self._option(value)

    def candidates(self, context: Context = None) -> list[str] | None:
        return list(self.options.options)


_CHECKED = {"x", "true", "yes", "y", "1", "checked"}
_UNCHECKED = {"", "false", "no", "n", "0", "unchecked"}


class CheckboxType(FieldType):
    """A tick box: a mark (``X``) or nothing; normalized to ``"true"`` / ``"false"``. Empty is
    a valid value here (the box left blank)."""

    name = "checkbox"

    def _state(self, value: Any) -> str | None:
        text = "" if is_missing(value) else clean_value(value).lower()
        return "true" if text in _CHECKED else "false" if text in _UNCHECKED else None

    def validate(self, value: Any) -> bool:
        return self._state(value) is not None

    def normalize(self, value: Any, context: Context = None) -> str | None:
        return self._state(value)


# --------------------------------------------------------------------------- the registry
#: type name -> class: one line per type
FIELD_TYPES: dict[str, type[FieldType]] = {
    "date": DateType,
    "us_state": USStateType,
    "us_zip": USZipType,
    "us_city": USCityType,
    "digits": DigitsType,
    "amount": AmountType,
    "phone": PhoneType,
    "text": TextType,
    "choice": ChoiceType,
    "checkbox": CheckboxType,
}


def field_type(name: str, options: BaseModel | None = None) -> FieldType:
    """The type registered as ``name`` with ``options`` (its defaults when None); an unknown
    name raises a KeyError naming every type."""
    if name not in FIELD_TYPES:
        raise KeyError(f"Unknown field type '{name}'. Known field types: {', '.join(FIELD_TYPES)}")
    return FIELD_TYPES[name](options)


def type_of(field: FieldSpec) -> FieldType:
    """The type of a form spec's field, with the field's options."""
    return field_type(field.type, field.options)


def form_context(spec: FormSpec, values: Mapping[str, Any]) -> dict[str, str]:
    """The ``context`` of :meth:`FieldType.normalize` for one form: its written values by type
    name (the first field of each type), e.g. ``{"us_state": "GA", "us_zip": "30134"}``."""
    out: dict[str, str] = {}
    for f in spec.fields:
        if f.name in values and f.type not in out:
            out[f.type] = clean_value(values[f.name])
    return out


__all__ = ["AmountOptions", "ChoiceOptions", "DigitsOptions", "FIELD_TYPES", "FieldType", "PhoneOptions",
           "TextOptions", "field_type", "form_context", "type_of"]
