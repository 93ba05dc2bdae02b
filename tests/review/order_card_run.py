"""A digitize run folder of the example order card (``conf/base/forms/order_card.yml``), built
without reading anything: the files digitize writes (``forms.jsonl``, ``forms.csv``,
``review_queue.csv``, ``summary.json`` naming the form and its fields, the review crops) with
readings made up for the test. Each card is drawn with its three boxed lines; a doubtful field's
crop is its line's box with digitize's margin, ``top`` the whole card.

Cards: ``card_001`` (ORDER_NO one digit short, AMOUNT written ``$1,234.5``, STATE ``Ga.``
doubtful), ``card_002`` (ORDER_NO and CITY doubtful), ``card_003`` (nothing doubtful) and
``card_004`` (not readable: an error, no fields).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from handwriting_pipeline.fields import NONE
from handwriting_pipeline.fields.formspec import FormSpec, load_form

FORM = "order_card"
MARGIN = 25  # digitize's review margin around a line box

#: card -> (its fields as read, the doubtful fields with their candidates per engine)
CARDS: dict[str, tuple[dict[str, str], dict[str, dict[str, str]]]] = {
    "card_001": ({"ORDER_NO": "1234567", "DATE": "3/14/2024", "AMOUNT": "$1,234.5", "PHONE": "(404) 555-0123",
                  "CITY": "Douglasville", "STATE": "Ga.", "ZIP": "30134"},
                 {"ORDER_NO": {"fieldreader": "1234567", "rapidocr": "12345678"},
                  "AMOUNT": {"fieldreader": "$1,234.5", "rapidocr": "$1,234.5"},
                  "STATE": {"fieldreader": "Ga.", "rapidocr": "Ga"}}),
    "card_002": ({"ORDER_NO": "8765432l", "DATE": "12-01-2023", "AMOUNT": "45.00", "PHONE": "770.555.0199",
                  "CITY": "MILFORD", "STATE": "MI", "ZIP": "48381"},
                 {"ORDER_NO": {"fieldreader": "8765432l", "rapidocr": "87654321"},
                  "CITY": {"fieldreader": "MILFORD", "rapidocr": "MILF0RD"}}),
    "card_003": ({"ORDER_NO": "55501234", "DATE": "1/2/24", "AMOUNT": "300", "PHONE": "404-555-0100",
                  "CITY": "Atlanta", "STATE": "GA", "ZIP": "30301"}, {}),
}
ERROR = "800x600: neither an order card page nor its crop"


def _card(spec: FormSpec, values: dict[str, str]) -> Any:
    """The card as a scan: its line boxes, each line's values written left to right."""
    from PIL import Image, ImageDraw

    image = Image.new("L", spec.page.size, 255)
    draw = ImageDraw.Draw(image)
    for line in spec.lines:
        x0, y0, x1, y1 = line.box
        draw.rectangle((x0, y0, x1, y1), outline=0, width=3)
        text = "   ".join(values.get(k, "") for k in line.fields)
        draw.text((x0 + 20, y0 + (y1 - y0) // 2 - 5), text, fill=0)
    return image


def _confidence(key: str, doubtful: dict[str, Any]) -> float:
    return 0.41 if key in doubtful else 0.995


def make_order_card_run(folder: Path) -> Path:
    """Write the run folder ``folder`` (created) and return it."""
    spec = load_form(FORM)
    keys = spec.keys
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "review").mkdir(exist_ok=True)
    records: list[dict[str, Any]] = []
    for stem, (values, doubtful) in CARDS.items():
        source = f"/scans/cards/{stem}.png"
        conf = {k: _confidence(k, doubtful) for k in keys}
        record: dict[str, Any] = {"source": source, "page": 1, "kind": "page", **values,
                                  **{f"{k}_conf": conf[k] for k in keys}, "needs_review": list(doubtful),
                                  "method": "vote", "engines": "fieldreader;rapidocr", "seconds": 0.8, "error": None,
                                  **{f"{k}_written_conf": conf[k] for k in keys},
                                  **{f"{k}_value_conf": conf[k] for k in keys}}
        if doubtful:
            card = _card(spec, values)
            top = f"review/{stem}_top.png"
            card.save(folder / top)
            review = []
            for key, candidates in doubtful.items():
                x0, y0, x1, y1 = spec.line_of(key).box
                crop = f"review/{stem}_{key}.png"
                card.crop((max(0, x0 - MARGIN), max(0, y0 - MARGIN), min(card.width, x1 + MARGIN),
                           min(card.height, y1 + MARGIN))).save(folder / crop)
                review.append({"field": key, "chosen": values[key], "confidence": conf[key], "candidates": candidates,
                               "crop": crop, "top": top, "written_conf": conf[key], "value_conf": conf[key],
                               "why": [f"low confidence (writing {conf[key]:g} < 0.6)"], "normalized": ""})
            record["review"] = review
        records.append(record)
    records.append({"source": "/scans/cards/card_004.png", "page": 1, "kind": "", **{k: NONE for k in keys},
                    **{f"{k}_conf": None for k in keys}, "needs_review": [], "method": "vote",
                    "engines": "fieldreader;rapidocr", "seconds": 0.0, "error": ERROR,
                    **{f"{k}_written_conf": None for k in keys}, **{f"{k}_value_conf": None for k in keys}})

    with open(folder / "forms.jsonl", "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    columns = ["source", "page", "kind", *keys, *[f"{k}_conf" for k in keys], "needs_review", "method", "engines",
               "seconds", "error", *[f"{k}_written_conf" for k in keys], *[f"{k}_value_conf" for k in keys]]
    with open(folder / "forms.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            writer.writerow({**r, "needs_review": ";".join(r["needs_review"]), "error": r["error"] or ""})
    queue = ["source", "page", "field", "chosen", "confidence", "candidates", "crop", *keys, "written_conf",
             "value_conf", "why", "normalized"]
    with open(folder / "review_queue.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=queue, extrasaction="ignore")  # as digitize: no top
        writer.writeheader()
        for r in records:
            for item in r.get("review") or []:
                writer.writerow({"source": r["source"], "page": r["page"], **{k: r[k] for k in keys}, **item,
                                 "candidates": json.dumps(item["candidates"]), "why": "; ".join(item["why"])})
    read = [r for r in records if not r["error"]]
    n_doubtful = sum(len(r["needs_review"]) for r in read)
    summary = {"form": spec.name, "fields": list(keys), "files": len(records), "forms": len(records),
               "read": len(read), "needs_review": sum(bool(r["needs_review"]) for r in read),
               "fields_to_review": n_doubtful, "fields_to_review_pct": round(100.0 * n_doubtful / (len(keys) * len(read)), 2),
               "rejected": 1, "rejected_by_reason": {ERROR: 1}, "method": "vote",
               "guarantee": {"method": "vote", "engines": ["fieldreader", "rapidocr"], "review_on": "writing",
                             "statement": "no measured guarantee", "applies": False, "review_threshold": 0.6}}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return folder
