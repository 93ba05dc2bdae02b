"""What the vote reads from a form spec, per field type: the fields in order, the gazetteer-linked
group voted jointly, each field's validator and the field the CITY-style alignment applies to.

:func:`vote_spec` turns a :class:`~handwriting_pipeline.fields.formspec.FormSpec` (None: the HSF
top section) into a :class:`VoteSpec`. Every field is voted alone, except the fields the offline
gazetteer links: the spec's ``us_city`` (optional), ``us_state`` and ``us_zip`` fields, found by
type (:class:`GazetteerGroup`), chosen jointly when the spec has a ``us_state`` and a ``us_zip``
field. A field's vote validator is its type's rule: :data:`VOTE_RULES` for the HSF types (the
rules the vote's factors were fitted with), else the type's own ``validate``
(:mod:`handwriting_pipeline.fields.types`). Nothing here asks for a field's or a form's name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from handwriting_pipeline.fields import CONTRADICTION_FIELDS, NONE, is_plausible_date, is_valid_zip, state_code
from handwriting_pipeline.fields.formspec import FormSpec, hsf_form, load_form
from handwriting_pipeline.fields.types import type_of

#: the types the offline gazetteer links, in the order the group lists them
GAZETTEER_TYPES = ("us_city", "us_state", "us_zip")
#: the type whose readings get the character-alignment consensus as an extra candidate
ALIGNED_TYPE = "us_city"


def strict_state_code(value: str) -> str | None:
    """:func:`fields.state_code` for a state without digits ("OH10" is no state), else None."""
    return None if re.search(r"\d", value) else state_code(value)


#: the vote's validator of a type where it is not the type's ``validate``: the rules the vote's
#: factors and calibration were fitted with on the HSF form (a plausible date, a city without
#: digits, a USPS state without digits, ZIP or ZIP+4)
VOTE_RULES: dict[str, Callable[[str], bool]] = {
    "date": is_plausible_date,
    "us_city": lambda v: not re.search(r"\d", v),
    "us_state": lambda v: strict_state_code(v) is not None,
    "us_zip": is_valid_zip,
}


@lru_cache(maxsize=1)
def _hsf_names() -> dict[str, str]:
    """type -> the HSF form's field of that type: the names the gazetteer helpers are keyed by."""
    return {f.type: f.name for f in hsf_form().fields}


@dataclass(frozen=True)
class GazetteerGroup:
    """The spec's fields the offline gazetteer links: its ``us_city`` field (None when the form
    has none), ``us_state`` and ``us_zip`` fields."""

    city: str | None
    state: str
    zip: str

    @property
    def keys(self) -> tuple[str, ...]:
        """The group's fields, city (when there is one), state, ZIP."""
        return tuple(k for k in (self.city, self.state, self.zip) if k is not None)

    def _pairs(self) -> list[tuple[str, str]]:
        """(this form's field, the HSF form's field of the same type)."""
        names = _hsf_names()
        return [(k, names[t]) for k, t in zip((self.city, self.state, self.zip), GAZETTEER_TYPES, strict=True)
                if k is not None]

    def to_hsf(self, values: Mapping[str, str]) -> dict[str, str]:
        """The group's values under the HSF form's names (what :mod:`handwriting_pipeline.fields`'
        gazetteer helpers and repairs read); a missing city is "None"."""
        return {hsf: values.get(k, NONE) for k, hsf in self._pairs()}

    def from_hsf(self, values: Mapping[str, str]) -> dict[str, str]:
        """The group's values back under this form's names."""
        return {k: values[hsf] for k, hsf in self._pairs()}

    def doubted(self, kind: str | None) -> tuple[str, ...]:
        """The fields a gazetteer contradiction of ``kind`` puts in doubt
        (:data:`fields.CONTRADICTION_FIELDS`), under this form's names."""
        back = {hsf: k for k, hsf in self._pairs()}
        return tuple(back[f] for f in CONTRADICTION_FIELDS.get(kind, ()) if f in back)


@dataclass(frozen=True)
class VoteSpec:
    """The vote's view of one form: ``keys`` (the fields in order), ``types`` (field -> type
    name), ``group`` (the gazetteer-linked fields, None when the form has no us_state + us_zip)
    and ``aligned`` (the us_city field that gets the alignment candidate, None without one)."""

    spec: FormSpec
    keys: tuple[str, ...]
    types: dict[str, str]
    group: GazetteerGroup | None
    aligned: str | None

    @property
    def groups(self) -> list[tuple[str, ...]]:
        """What is voted together, in the order of the form's fields: the gazetteer group where
        its first field stands, every other field alone."""
        grouped = self.group.keys if self.group else ()
        out = []
        for key in self.keys:
            if key not in grouped:
                out.append((key,))
            elif key == grouped[0]:
                out.append(grouped)
        return out

    def validate(self, key: str, value: str) -> bool:
        """Whether ``value`` passes the vote's validator of the field's type."""
        rule = VOTE_RULES.get(self.types[key])
        return rule(value) if rule is not None else type_of(self.spec.field(key)).validate(value)


def _first_of_type(spec: FormSpec, type_name: str) -> str | None:
    return next((f.name for f in spec.fields if f.type == type_name), None)


@lru_cache(maxsize=32)
def _vote_spec(spec: FormSpec) -> VoteSpec:
    city, state, zip_code = (_first_of_type(spec, t) for t in GAZETTEER_TYPES)
    group = GazetteerGroup(city, state, zip_code) if state and zip_code else None
    return VoteSpec(spec, spec.keys, {f.name: f.type for f in spec.fields}, group, _first_of_type(spec, ALIGNED_TYPE))


def vote_spec(form: FormSpec | VoteSpec | str | Path | None = None) -> VoteSpec:
    """The vote's view of a form spec (a shipped form's name or a spec file are read with
    :func:`~handwriting_pipeline.fields.formspec.load_form`; None: the HSF form), built once per spec."""
    if isinstance(form, VoteSpec):
        return form
    if form is None:
        return _vote_spec(hsf_form())
    return _vote_spec(form if isinstance(form, FormSpec) else load_form(form))


__all__ = ["ALIGNED_TYPE", "GAZETTEER_TYPES", "VOTE_RULES", "GazetteerGroup", "VoteSpec", "strict_state_code",
           "vote_spec"]
