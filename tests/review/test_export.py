"""Export of a reviewed run and the Label Studio round trip, checked against Label Studio's
documented JSON formats (no server): the task format (``data`` + ``predictions`` with ``result``
items ``id / from_name / to_name / type / value``, guide "Label Studio JSON format of annotated
tasks" and "Import pre-annotated data"), the ``TextArea`` value (``{"text": [str, ...]}``), and
``from_name`` / ``to_name`` naming tags of the labelling config."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema

from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.review.__main__ import main
from handwriting_pipeline.review.export import (
    LABEL_CONFIG,
    export_reviewed,
    import_labelstudio,
    labelstudio_tasks,
    reviewed_records,
)
from handwriting_pipeline.review.run import ReviewRun

RESULT = {"type": "object", "required": ["from_name", "to_name", "type", "value"],
          "properties": {"id": {"type": "string"}, "from_name": {"type": "string"}, "to_name": {"type": "string"},
                         "type": {"enum": ["textarea"]},
                         "value": {"type": "object", "required": ["text"],
                                   "properties": {"text": {"type": "array", "items": {"type": "string"}}}}}}
TASK = {"type": "object", "required": ["data"],
        "properties": {"data": {"type": "object", "required": ["image"], "properties": {"image": {"type": "string"}}},
                       "predictions": {"type": "array", "items": {
                           "type": "object", "required": ["result"],
                           "properties": {"model_version": {"type": "string"}, "score": {"type": "number"},
                                          "result": {"type": "array", "items": RESULT}}}},
                       "annotations": {"type": "array", "items": {
                           "type": "object", "required": ["result"],
                           "properties": {"result": {"type": "array", "items": RESULT},
                                          "was_cancelled": {"type": "boolean"}}}}}}


def _decide(run: ReviewRun) -> dict[str, tuple[str, str]]:
    """Accept the first doubtful field, correct the second, pick a candidate for the third."""
    store = run.store()
    a, b, c = run.items[:3]
    store.record(a.form, a.field, a.chosen, a.chosen, "ann", action="accept")
    corrected = "Milford" if b.field == "CITY" else "MI" if b.field == "STATE" else "48381" if b.field == "ZIP" else "8-2-89"
    store.record(b.form, b.field, corrected, b.chosen, "ann", action="correct")
    pick = c.options()[-1]["value"]
    store.record(c.form, c.field, pick, c.chosen, "ann", action="pick", candidate=";".join(c.options()[-1]["engines"]))
    return {"accept": (a.form, a.field), "correct": (b.form, b.field), "pick": (c.form, c.field)}


def test_export_marks_every_field(run_copy: Path):
    run = ReviewRun.open(run_copy)
    decided = _decide(run)
    result = export_reviewed(run, run.store())
    rows = [json.loads(line) for line in Path(result["jsonl"]).read_text().splitlines()]
    assert len(rows) == len(run.records)
    by_form = {f"{r['source']}#{r['page']}": r for r in rows}
    form, key = decided["accept"]
    assert by_form[form][f"{key}_status"] == "confirmed"
    form, key = decided["correct"]
    assert by_form[form][f"{key}_status"] == "corrected" and by_form[form][key] != run.items[1].chosen
    statuses = [r[f"{k}_status"] for r in rows for k in KEYS]
    assert statuses.count("machine") == len(statuses) - 3
    csv_text = Path(result["csv"]).read_text()
    assert "CITY_status" in csv_text.splitlines()[0] and "corrected" in csv_text


def test_labelstudio_tasks_follow_the_documented_format(run_copy: Path):
    run = ReviewRun.open(run_copy)
    tasks = labelstudio_tasks(run)
    assert tasks and len(tasks) == sum(bool(r.get("needs_review")) for r in run.records)
    config = ET.fromstring(LABEL_CONFIG)
    names = {tag.get("name"): tag.tag for tag in config.iter() if tag.get("name")}
    for task in tasks:
        jsonschema.validate(task, TASK)
        assert task["data"]["image"].startswith("/data/local-files/?d=review/")
        assert (run_copy / task["data"]["image"].split("?d=")[1]).is_file()
        [prediction] = task["predictions"]
        ids = [r["id"] for r in prediction["result"]]
        assert len(set(ids)) == len(ids)
        for result in prediction["result"]:
            assert names[result["from_name"]] == "TextArea" and names[result["to_name"]] == "Image"
        assert sorted(r["from_name"] for r in prediction["result"]) == sorted(KEYS)


def test_labelstudio_annotations_come_back_into_the_store(run_copy: Path, tmp_path: Path):
    run = ReviewRun.open(run_copy)
    tasks = labelstudio_tasks(run)
    exported = []
    for number, task in enumerate(tasks, 1):   # what Label Studio's JSON export holds after annotating
        result = [dict(r) for r in task["predictions"][0]["result"]]
        result[1] = {**result[1], "value": {"text": ["Milford"]}}
        exported.append({"id": number, "data": task["data"], "predictions": task["predictions"],
                         "annotations": [{"id": 100 + number, "completed_by": 7, "was_cancelled": False,
                                          "result": result},
                                         {"id": 200 + number, "completed_by": 8, "was_cancelled": True, "result": []}]})
    exported.append({"id": 99, "data": {"image": "x", "form": "elsewhere.png#1"}, "annotations": []})
    for task in exported:
        jsonschema.validate(task, TASK)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(exported))
    assert main(["labelstudio-import", str(run_copy), str(path)]) == 0
    decisions = run.store().decisions()
    assert len(decisions) == 4 * len(tasks)
    assert {d.reviewer for d in decisions} == {"labelstudio:7"} and {d.origin for d in decisions} == {"labelstudio"}
    assert {d.value for d in decisions if d.field == "CITY"} == {"Milford"}
    summary = import_labelstudio(run, run.store(), exported)           # the same export again adds nothing
    assert summary["decisions"] == 0 and summary["already_stored"] == 4 * len(tasks)
    assert any("elsewhere.png#1" in p for p in summary["problems"])
    records = reviewed_records(run, run.store())
    assert all(r["reviewed"] for r in records if r.get("needs_review"))


def test_command_line_exports(run_copy: Path, tmp_path: Path, capsys):
    run = ReviewRun.open(run_copy)
    _decide(run)
    for item in run.items[3:]:   # the rest of the first form: accepted
        if item.form == run.items[0].form:
            run.store().record(item.form, item.field, item.chosen, item.chosen, "ann")
    assert main(["labelstudio-export", str(run_copy)]) == 0
    assert json.loads((run_copy / "labelstudio" / "tasks.json").read_text())
    assert main(["export", str(run_copy), "--training-folder", str(tmp_path / "train_forms")]) == 0
    assert '"reviewed_forms"' in capsys.readouterr().out
    from handwriting_pipeline.datasets.forms import read_donut_folder

    forms, problems = read_donut_folder(str(tmp_path / "train_forms" / "train"), split="train")
    reviewed = [r for r in reviewed_records(run, run.store()) if r["reviewed"]]
    assert reviewed and len(forms.labels) == len(reviewed) and not problems
    by_name = forms.labels.set_index("file_name")
    for record in reviewed:
        [name] = [n for n in by_name.index if record["source"].rsplit("/", 1)[-1].removesuffix(".png") in n]
        assert {k: by_name.loc[name, k] for k in KEYS} == {k: record[k] for k in KEYS}
        assert forms.images[name].size == (2460, 350)
    assert main([str(tmp_path / "nowhere")]) == 1
