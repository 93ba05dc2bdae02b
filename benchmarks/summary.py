"""The one current-results table, generated from the results JSON files.

Reads ``benchmarks/results/*.json`` (never re-measures anything), writes
``benchmarks/results/summary.md`` and copies the same table into ``README.md`` between the
markers ``<!-- results:begin -->`` and ``<!-- results:end -->``::

    python benchmarks/summary.py           # rewrite summary.md and the README block
    python benchmarks/summary.py --check   # exit 1 if either is out of date (what tests/test_docs.py checks)

Each row names the results file it comes from; that file holds the machine, the date and the
command that measured it. After a benchmark writes a new results file, run this script.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SUMMARY = RESULTS / "summary.md"
README = ROOT / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


#: the field reader with its style layer, as benchmarks/fieldreader/style_benchmark.py reports it
STYLE_ROW = "style layer (features chosen on held-out train forms)"
#: written by benchmarks/ensemble/ensemble_benchmark.py, since removed (the code is at commit 13f3996)
REMOVED_FILE = "fieldreader_ensemble_style.json"
REMOVED_NOTE = "measured by the removed `ensemble_benchmark.py`; its code is at commit 13f3996"


def _load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def rows() -> list[dict]:
    """One dict per row of the table: what was read, validation FLA / CBA / FLA ignoring case,
    speed, and the results file it comes from."""
    out: list[dict] = []
    speed = _load("digitize_benchmark_style_idle.json")["modes"]
    votes = _load("fieldreader_votes.json")  # benchmarks/ensemble/vote_benchmark.py
    rapid = votes["engines"]["rapidocr"]
    reader = _load("fieldreader_style_ablation.json")["rows"][STYLE_ROW]  # benchmarks/fieldreader/style_benchmark.py
    # the offline vote over the field reader *with* its style layer was measured only by the removed
    # ensemble benchmark; its file stays as the record
    vote = _load(REMOVED_FILE)["votes"]["rapidocr + fieldreader (saved calibration)"]["validation"]
    out.append({"reading": "RapidOCR (offline, stock models)", "FLA": rapid["validation"]["FLA"],
                "CBA": rapid["validation"]["CBA"], "FLA_nocase": rapid["normalized"]["FLA_nocase"], "speed": "",
                "file": "fieldreader_votes.json"})
    out.append({"reading": "**field reader** (fine-tuned PP-OCRv6 + lexicon + style layer)", **_scores(reader),
                "speed": f"{speed['crops']['forms_per_s']:.1f} crops/s",
                "file": "fieldreader_style_ablation.json, digitize_benchmark_style_idle.json"})
    out.append({"reading": "offline vote: RapidOCR + field reader", **_scores(vote), "speed": "",
                "file": REMOVED_FILE, "note": REMOVED_NOTE})
    oof = _load("fieldreader_oof_ensemble.json")  # benchmarks/fieldreader/oof_ensemble_benchmark.py
    members = oof["members"]
    found = {(r["members"], r["decoding"]): r for r in oof["validation"]["rows"] if r["reader"].endswith(("member", "members"))}
    ens = found[(members, "chosen")]
    vote_oof = next(r for r in oof["validation"]["rows"] if r["reader"].startswith("vote") and r["members"] == members)
    out.append({"reading": f"**field reader ensemble** ({members} fold readers; choices on "
                           f"{oof['oof']['forms']:,} out-of-fold forms)", "FLA": ens["FLA"], "CBA": ens["CBA"],
                "FLA_nocase": None, "speed": f"{1 / ens['seconds_per_form']:.1f} crops/s (1 process)",
                "file": "fieldreader_oof_ensemble.json"})
    out.append({"reading": "offline vote: RapidOCR + field reader ensemble", "FLA": vote_oof["FLA"],
                "CBA": vote_oof["CBA"], "FLA_nocase": None, "speed": "", "file": "fieldreader_oof_ensemble.json"})
    out.append({"reading": "digitize `cascade` with the single field reader, synthetic full pages", "FLA": None,
                "CBA": None, "FLA_nocase": None, "speed": f"{speed['cascade']['forms_per_s']:.1f} pages/s",
                "file": "digitize_benchmark_style_idle.json"})
    cascade = _load("digitize_benchmark_ensemble.json")["modes"]["cascade"]  # digitize_benchmark.py --ensemble
    out.append({"reading": "digitize `cascade` (default once the ensemble is trained), synthetic full pages",
                "FLA": None, "CBA": None, "FLA_nocase": None, "speed": f"{cascade['forms_per_s']:.1f} pages/s",
                "file": "digitize_benchmark_ensemble.json"})
    donut = _load("donut_text_lines_benchmark.json")
    out.append({"reading": "Donut, text-line encoder (greedy)", "FLA": donut["validation"]["FLA"],
                "CBA": donut["validation"]["CBA"], "FLA_nocase": None,
                "speed": f"{donut['inference_cpu']['forms_per_second']:.1f} forms/s",
                "file": "donut_text_lines_benchmark.json"})
    paid = _load("fieldreader_votes.json")["votes"]["rapidocr;fieldreader;recorded_textract;recorded_azure_form_recognizer"]
    out.append({"reading": "vote: RapidOCR + field reader + recorded Textract + Azure (paid inputs)",
                "FLA": paid["metrics"]["FLA"], "CBA": paid["metrics"]["CBA"],
                "FLA_nocase": paid["normalized"]["FLA_nocase"], "speed": "", "file": "fieldreader_votes.json"})
    return out


def _scores(block: dict) -> dict:
    return {"FLA": block["FLA"], "CBA": block["CBA"], "FLA_nocase": block.get("FLA_ignoring_case")}


def table() -> str:
    """The markdown table (with a one-line heading note), as written to summary.md and the README."""
    lines = [
        "Validation split of the shared NIST crops, 199 forms (one form = 0.5 FLA point; 95 % interval about",
        "±7 points). The field reader's choices were made on 100 held-out train forms, the ensemble's on all",
        "1,400 train forms read out of fold. Speeds: 2 CPU cores, no GPU.",
        "",
        "| reading | FLA | CBA | FLA ignoring case | speed | results file (`benchmarks/results/`) |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for r in rows():
        files = ", ".join(f"`{f.strip()}`" for f in r["file"].split(","))
        if r.get("note"):
            files += f" ({r['note']})"
        lines.append(f"| {r['reading']} | {_num(r['FLA'])} | {_num(r['CBA'])} | {_num(r['FLA_nocase'])} "
                     f"| {r['speed'] or '–'} | {files} |")
    card = _load("form_reader_order_card.json")  # benchmarks/forms/form_reader_benchmark.py
    trust = _load("confidence_model.json")  # benchmarks/review/confidence_model_benchmark.py
    digitize = trust["models"]["digitize"]["validation"]["writing"]
    before = trust["models"]["vote"]["validation"]["writing"]
    sure = {(g["alpha"], g["confidence"]): g["levels"] for g in trust["guarantees"]}
    writing, value = sure[(0.05, "recalibrated")]["writing"]["all"], sure[(0.01, "recalibrated")]["value"]["all"]
    lines += [
        "",
        f"Review (digitize's cascade, these forms): a person fixing the 15 % least sure fields lifts FLA to "
        f"{digitize['after_review']:.2f} ({before['after_review']:.2f} with the vote's own confidence). Under the "
        f"guarantee fitted on the train forms, {writing['review_pct']:.1f} % of fields go to review for at most 5 % "
        f"wrong writing among the sure ones (realized {100 * writing['realized']:.2f} %), {value['review_pct']:.1f} % "
        f"for at most 1 % wrong values (realized {100 * value['realized']:.2f} %): `confidence_model.json`.",
    ]
    lines += [
        "",
        f"Another form: the field reader fine-tuned on {card['train_forms']} synthetic `{card['form']}` forms "
        f"(from its spec alone) reads {card['validation_forms']} more at FLA {card['FLA']:.2f} (all "
        f"{len(card['fields_in_form'])} fields), CBA {card['CBA']:.2f}: `form_reader_{card['form']}.json`.",
        "",
        "The Donut run chose its best checkpoint on these validation forms, so its row is somewhat optimistic.",
        "The paid-inputs vote used the field reader without its style layer. Machine, date and command: in",
        "each results file.",
    ]
    return "\n".join(lines) + "\n"


def readme_block(text: str) -> str:
    """What stands between the markers in ``text`` (the README)."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip("\n") + "\n"


def with_block(text: str, block: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + block + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that summary.md and the README are current")
    args = parser.parse_args(argv)
    current = table()
    readme = README.read_text(encoding="utf-8")
    stale = [p.name for p, ok in ((SUMMARY, SUMMARY.exists() and SUMMARY.read_text(encoding="utf-8") == current),
                                  (README, readme_block(readme) == current)) if not ok]
    if args.check:
        if stale:
            print(f"out of date: {', '.join(stale)} (run: python benchmarks/summary.py)")
        return 1 if stale else 0
    SUMMARY.write_text(current, encoding="utf-8")
    README.write_text(with_block(readme, current), encoding="utf-8")
    print(current)
    return 0


if __name__ == "__main__":
    sys.exit(main())
