"""Field logic shared by every stage: everything that knows what a DATE, CITY, STATE or ZIP
looks like lives here, so engines, ensembles, training and evaluation agree on one definition.

* :mod:`.formspec` a form as a YAML file: the form spec's models, checks and shipped forms
  (``conf/base/forms``); the HSF form's spec is where the four keys come from
* :mod:`.charsets` the characters of each field type (what an engine may output, what a person types)
* :mod:`.types`    the field types as a registry (date, us_state, us_zip, us_city, digits,
  amount, phone, text, choice, checkbox): validate, normalize, candidates
* :mod:`.schema`   the four keys (from the HSF spec), "None", value clean-up, noisy key normalisation
* :mod:`.states`   USPS states, ZIP validators, the offline ``zipcodes`` gazetteer, STATE look-alikes
* :mod:`.text`     OCR text clean-up: look-alikes, allowed characters, respelling in the writer's case
* :mod:`.dates`    month names, date parsing, the plausible-date validator and date OCR repairs
* :mod:`.parse`    OCR words -> DATE and the CITY / STATE / ZIP split (named weights)
* :mod:`.gazetteer` readings checked against the offline ZIP database (layout engines)
* :mod:`.repairs`  layout slips undone without touching the writer's letters (engines, vote)
* :mod:`.normalize` canonical values beside the written ones (DATE_iso, STATE_code, CITY_name, ZIP5)

Donut's token grammar lives in :mod:`handwriting_pipeline.donut.grammar`.

Floor 0 (ground). May import: nothing from this project.
"""

from handwriting_pipeline.fields.dates import MONTHS, is_plausible_date, parse_date, repair_date, respell_months
from handwriting_pipeline.fields.gazetteer import gazetteer_check
from handwriting_pipeline.fields.repairs import move_state_digits_to_zip, repair_fields
from handwriting_pipeline.fields.schema import (
    ALLOWED_CHARS,
    KEYS,
    NONE,
    clean_fields,
    clean_value,
    empty_fields,
    is_missing,
    normalize_key,
    row_fields,
)
from handwriting_pipeline.fields.states import (
    CONTRADICTION_FIELDS,
    STATE_ABBREVIATIONS,
    STATE_NAMES,
    gazetteer_contradiction,
    is_valid_state,
    is_valid_zip,
    state_code,
    state_variant,
    zip_consistent,
    zip_places,
    zips_for_place,
)
from handwriting_pipeline.fields.text import filter_chars, respell, settle_case

__all__ = [
    "CONTRADICTION_FIELDS", "gazetteer_contradiction",
    "ALLOWED_CHARS", "KEYS", "MONTHS", "NONE", "STATE_ABBREVIATIONS", "STATE_NAMES", "clean_fields", "clean_value",
    "empty_fields", "filter_chars", "gazetteer_check", "is_missing", "is_plausible_date", "is_valid_state",
    "is_valid_zip", "move_state_digits_to_zip", "normalize_key", "parse_date", "repair_date", "repair_fields",
    "respell", "respell_months", "row_fields", "settle_case", "state_code", "state_variant", "zip_consistent", "zip_places",
    "zips_for_place",
]
