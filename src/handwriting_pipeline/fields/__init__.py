"""Field logic shared by every stage: everything that knows what a DATE, CITY, STATE or ZIP
looks like lives here, so engines, ensembles, training and evaluation agree on one definition.

* :mod:`.schema`   the four keys, "None", value clean-up, noisy key normalisation
* :mod:`.states`   USPS states, ZIP validators and the offline ``zipcodes`` gazetteer
* :mod:`.dates`    month names, date parsing and the plausible-date validator
* :mod:`.repairs`  layout slips undone without touching the writer's letters (engines, vote)
* :mod:`.normalize` canonical values beside the written ones (DATE_iso, STATE_code, CITY_name, ZIP5)

Donut's token grammar lives in :mod:`handwriting_pipeline.donut.grammar`.
"""

from handwriting_pipeline.fields.dates import MONTHS, is_plausible_date, parse_date
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
)
from handwriting_pipeline.fields.states import (
    STATE_ABBREVIATIONS,
    STATE_NAMES,
    is_valid_state,
    is_valid_zip,
    state_code,
    zip_consistent,
    zip_places,
    zips_for_place,
)

__all__ = [
    "ALLOWED_CHARS", "KEYS", "MONTHS", "NONE", "STATE_ABBREVIATIONS", "STATE_NAMES", "clean_fields", "clean_value",
    "empty_fields", "is_missing", "is_plausible_date", "is_valid_state", "is_valid_zip", "move_state_digits_to_zip",
    "normalize_key", "parse_date", "repair_fields", "state_code", "zip_consistent", "zip_places", "zips_for_place",
]
