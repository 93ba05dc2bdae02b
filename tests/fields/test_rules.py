"""Field rules the layout engines apply to OCR words: the CITY/STATE/ZIP split, date repairs and
the gazetteer check (moved here from engines/layout.py)."""

from __future__ import annotations

from handwriting_pipeline.fields.dates import repair_date
from handwriting_pipeline.fields.gazetteer import gazetteer_check
from handwriting_pipeline.fields.parse import Word, split_city_state_zip

LABELS = {"DATE": (830, 130, 960, 175), "CITY": (1210, 130, 1330, 175), "STATE": (1680, 130, 1850, 175),
          "ZIP": (1870, 130, 1950, 175)}


def test_split_city_state_zip_rules() -> None:
    def split(*texts_x: tuple[str, int, int]) -> dict[str, str]:
        words = [Word(t, 0.9, (x0, 190, x1, 270)) for t, x0, x1 in texts_x]
        return split_city_state_zip(words, LABELS)[0]

    assert split(("South Gate CA 90280", 1190, 2120)) == {"CITY": "South Gate", "STATE": "CA", "ZIP": "90280"}
    assert split(("Dallas, Tx. 75217", 1190, 1900)) == {"CITY": "Dallas", "STATE": "Tx.", "ZIP": "75217"}
    assert split(("Great Falls", 1190, 1580), ("Mt.", 1610, 1750), ("59401", 1800, 2010)) == {
        "CITY": "Great Falls", "STATE": "Mt.", "ZIP": "59401"}
    assert split(("Los Angeles California 90020-1234", 1190, 2120)) == {
        "CITY": "Los Angeles", "STATE": "California", "ZIP": "90020-1234"}
    assert split(("IN46324", 1700, 2000), ("Hammond,", 1190, 1500)) == {"CITY": "Hammond", "STATE": "IN", "ZIP": "46324"}
    assert split(("New York New York 10001", 1190, 2120))["STATE"] == "New York"
    assert split() == {"CITY": "None", "STATE": "None", "ZIP": "None"}


def test_date_repair_and_gazetteer_never_change_case() -> None:
    assert repair_date("9116/89") == "9/16/89"  # '/' read as '1'
    assert repair_date("B-23-89") == "8-23-89"
    assert repair_date("June 30, 1989") == "June 30, 1989"
    fixed = gazetteer_check({"CITY": "Great Fals", "STATE": "Mt.", "ZIP": "59401"})
    assert fixed == {"CITY": "Great Falls", "STATE": "Mt.", "ZIP": "59401"}
    assert gazetteer_check({"CITY": "RANDOLPH", "STATE": "HASS", "ZIP": "02360"}) == {
        "CITY": "RANDOLPH", "STATE": "MASS", "ZIP": "02368"}
    assert gazetteer_check({"CITY": "caldwell", "STATE": "Idaho", "ZIP": "83605"})["CITY"] == "caldwell"
