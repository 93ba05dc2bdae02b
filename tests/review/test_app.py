"""The review page over a real digitize run: pages, decisions, files, escaping, token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from handwriting_pipeline.review.app import create_app, serve
from handwriting_pipeline.review.run import ReviewRun


def _client(run_dir: Path, token: str | None = None) -> tuple[TestClient, ReviewRun]:
    run = ReviewRun.open(run_dir)
    return TestClient(create_app(run, run.store(), "tester", token)), run


def test_page_shows_one_doubtful_field_and_stores_decisions(run_copy: Path):
    client, run = _client(run_copy)
    assert len(run.items) >= 3
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/item/0"
    page = client.get("/item/0")
    item = run.items[0]
    assert page.status_code == 200
    assert f'/files/{item.crop}' in page.text and f"1 of {len(run.items)}" in page.text
    assert client.get(f"/files/{item.crop}").headers["content-type"] == "image/png"
    assert client.get(f"/files/{item.top}").status_code == 200
    answer = client.post("/api/decide", json={"index": 0, "field": item.field, "value": item.chosen, "action": "accept"})
    assert answer.status_code == 200 and answer.json()["next"] == 1
    assert answer.json()["progress"]["fields_done"] == 1
    [stored] = run.store().decisions()
    assert (stored.form, stored.field, stored.value, stored.reviewer, stored.status) == (
        item.form, item.field, item.chosen, "tester", "confirmed")
    assert client.get("/", follow_redirects=False).headers["location"] == "/item/1"
    assert "Decided before" in client.get("/item/0").text


@pytest.mark.parametrize("body, status", [
    ({"index": 0, "field": "NAME", "value": "x", "action": "correct"}, 422),       # not the item's field
    ({"index": 0, "field": "@", "value": "<b>", "action": "correct"}, 422),
    ({"index": 999, "field": "CITY", "value": "x", "action": "correct"}, 404),
    ({"index": 0, "field": "@", "value": "x" * 300, "action": "correct"}, 422),     # too long
])
def test_bad_decisions_are_refused(run_copy: Path, body, status):
    client, run = _client(run_copy)
    body = {**body, "field": run.items[0].field if body["field"] == "@" else body["field"]}
    assert client.post("/api/decide", json=body).status_code == status
    assert run.store().decisions() == []


def test_a_bad_value_says_why(run_copy: Path):
    client, run = _client(run_copy)
    item = run.items[0]
    answer = client.post("/api/decide", json={"index": 0, "field": item.field, "value": "<script>", "action": "correct"})
    assert answer.status_code == 422 and "not allowed" in answer.json()["detail"]
    not_json = client.post("/api/decide", content=b"index=0", headers={"content-type": "application/x-www-form-urlencoded"})
    assert not_json.status_code in (415, 422)


def test_only_images_of_the_run_folder_are_served(run_copy: Path, tmp_path: Path):
    outside = tmp_path / "secret.png"
    outside.write_bytes((run_copy / "forms.jsonl").read_bytes())
    (run_copy / "review" / "link.png").symlink_to(outside)
    (run_copy / "review" / "inside.png").symlink_to(next((run_copy / "review").glob("*_top.png")))
    client, _ = _client(run_copy)
    for path in ["/files/../secret.png", "/files/%2e%2e/secret.png", "/files/review/%2e%2e/%2e%2e/secret.png",
                 f"/files/{outside}", f"/files//{outside}", "/files/forms.jsonl", "/files/corrections.sqlite",
                 "/files/review/link.png", "/files/review/missing.png", "/files/review%5c..%5csecret.png"]:
        assert client.get(path).status_code == 404, path
    assert client.get("/files/review/inside.png").status_code == 200


def test_values_render_as_text(run_copy: Path):
    forms = run_copy / "forms.jsonl"
    records = [json.loads(line) for line in forms.read_text().splitlines()]
    evil = "<script>alert(1)</script>"
    records[0]["CITY"] = evil
    for item in records[0]["review"]:
        item["chosen"] = evil
        item["candidates"] = {"rapidocr": evil, "other": '"><img src=x onerror=alert(2)>'}
    forms.write_text("".join(json.dumps(r) + "\n" for r in records))
    client, _ = _client(run_copy)
    page = client.get("/item/0")
    assert evil not in page.text and "onerror=alert(2)>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "\\u003cscript\\u003e" in page.text  # the JSON the script reads cannot close its tag
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_token_guards_every_request(run_copy: Path):
    client, _ = _client(run_copy, token="s3cret")
    assert client.get("/item/0").status_code == 403
    assert client.get("/item/0?token=wrong").status_code == 403
    assert client.get("/item/0?token=s3cret").status_code == 200   # sets the cookie
    assert client.get("/item/0").status_code == 200
    assert TestClient(client.app).get("/item/0", headers={"X-Review-Token": "s3cret"}).status_code == 200


def test_serving_elsewhere_needs_the_flag(run_copy: Path):
    with pytest.raises(SystemExit, match="--allow-remote"):
        serve(run_copy, host="0.0.0.0")


def test_two_reviewers_never_overwrite_each_other(run_copy: Path):
    run = ReviewRun.open(run_copy)
    ann = TestClient(create_app(run, run.store(), "ann"))
    bob = TestClient(create_app(run, run.store(), "bob"))
    item = run.items[0]
    other = {"DATE": "8-2-88", "CITY": "Milford", "STATE": "MI", "ZIP": "48042"}[item.field]
    first = ann.post("/api/decide", json={"index": 0, "field": item.field, "value": other, "action": "correct"})
    assert first.json()["conflicts"] == []
    second = bob.post("/api/decide", json={"index": 0, "field": item.field, "value": item.chosen, "action": "accept"})
    assert [c["reviewer"] for c in second.json()["conflicts"]] == ["ann"]
    assert len(run.store().decisions()) == 2
    done = bob.get("/done")
    assert "Reviewers disagree on 1 fields" in done.text and other in done.text
    conflict = bob.get("/item/1?conflict=" + "<b>differs</b>")
    assert "&lt;b&gt;differs&lt;/b&gt;" in conflict.text
