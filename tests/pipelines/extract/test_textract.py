"""Textract engine through botocore's Stubber with realistic AnalyzeDocument FORMS responses."""

from __future__ import annotations

import logging

import boto3
import pytest
from botocore.stub import ANY, Stubber
from PIL import Image

from handwriting_pipeline.engines.textract import TextractEngine, parse_forms_response


def _word(i: int, text: str, top: float = 0.5, conf: float = 99.0) -> dict:
    return {"BlockType": "WORD", "Id": f"w{i}", "Text": text, "Confidence": conf, "TextType": "HANDWRITING",
            "Geometry": {"BoundingBox": {"Width": 0.05, "Height": 0.1, "Left": 0.3 + 0.01 * i, "Top": top}}}


def forms_response(pairs: list[tuple[list[tuple[str, float]], list[str], float]]) -> dict:
    """A FORMS response: PAGE, then per pair a KEY block (WORD children, VALUE link) and a VALUE block."""
    blocks = [{"BlockType": "PAGE", "Id": "page", "Geometry": {"BoundingBox": {"Width": 1, "Height": 1, "Left": 0, "Top": 0}}}]
    n = 0
    for k, (key_words, value_words, conf) in enumerate(pairs):
        key_ids, value_ids = [], []
        for text, top in key_words:
            blocks.append(_word(n, text, top))
            key_ids.append(f"w{n}")
            n += 1
        for text in value_words:
            blocks.append(_word(n, text, 0.6))
            value_ids.append(f"w{n}")
            n += 1
        blocks.append({"BlockType": "KEY_VALUE_SET", "Id": f"k{k}", "EntityTypes": ["KEY"], "Confidence": 95.0,
                       "Relationships": [{"Type": "VALUE", "Ids": [f"v{k}"]}, {"Type": "CHILD", "Ids": key_ids}]})
        blocks.append({"BlockType": "KEY_VALUE_SET", "Id": f"v{k}", "EntityTypes": ["VALUE"], "Confidence": conf,
                       **({"Relationships": [{"Type": "CHILD", "Ids": value_ids}]} if value_ids else {})})
    return {"DocumentMetadata": {"Pages": 1}, "Blocks": blocks, "AnalyzeDocumentModelVersion": "1.0"}


NOISY = forms_response([
    ([("NAME", 0.4)], ["blacked"], 40.0),                       # NAME-like key: dropped
    ([(".DATE", 0.4)], ["8-3-89"], 81.0),
    ([("CITY", 0.4)], ["MINDEN", "CITY"], 80.0),
    ([("STATE", 0.30), ("ZIP", 0.45)], ["mi"], 35.0),           # multi-line key "STATE\nZIP"
    ([("E", 0.4), ("ZIP", 0.4)], ["48456"], 37.0),              # "E ZIP"
])
STATE_WITH_ZIP = forms_response([
    ([("DATE®", 0.4)], ["9/17/89"], 90.0),
    ([("·CITY", 0.4)], ["Dill", "City"], 88.0),
    ([("STATE", 0.4)], ["OK", "73641"], 70.0),                  # digits in STATE -> ZIP
])


@pytest.fixture()
def image() -> Image.Image:
    return Image.new("1", (246, 35), 1)


def stubbed(engine_kwargs: dict | None = None) -> tuple[TextractEngine, Stubber]:
    engine = TextractEngine(region_name="us-east-1", max_attempts=5, retry_mode="adaptive", **(engine_kwargs or {}))
    client = boto3.client("textract", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test",
                          config=engine.botocore_config())
    engine._client = client
    return engine, Stubber(client)


def test_parse_keeps_multiline_keys() -> None:
    keys = [k for k, _, _ in parse_forms_response(NOISY)]
    assert "STATE\nZIP" in keys and "E ZIP" in keys and ".DATE" in keys


def test_noisy_keys_mapped_values_kept_as_written(image) -> None:
    engine, stub = stubbed()
    expected = {"Document": {"Bytes": ANY}, "FeatureTypes": ["FORMS"]}
    stub.add_response("analyze_document", NOISY, expected)
    stub.add_response("analyze_document", STATE_WITH_ZIP, expected)
    with stub:
        first = engine.read(image, "a.png")
        second = engine.read(image, "b.png")
        stub.assert_no_pending_responses()
    # "STATE\nZIP" counts as ZIP (nearest the value); "E ZIP" then finds ZIP filled; NAME dropped
    assert first.fields == {"DATE": "8-3-89", "CITY": "MINDEN CITY", "STATE": "None", "ZIP": "mi"}
    assert first.confidence["DATE"] == pytest.approx(0.81)
    assert first.usage == {"pages": 1} and first.error is None
    assert second.fields == {"DATE": "9/17/89", "CITY": "Dill City", "STATE": "OK", "ZIP": "73641"}
    assert second.raw["Blocks"]  # raw response kept for the cache


def test_throttling_then_success_records_error_and_goes_on(image, caplog) -> None:
    engine, stub = stubbed()
    stub.add_client_error("analyze_document", service_error_code="ThrottlingException",
                          service_message="Rate exceeded", http_status_code=400)
    stub.add_response("analyze_document", STATE_WITH_ZIP)
    with stub, caplog.at_level(logging.WARNING):
        failed = engine.read(image, "a.png")
        ok = engine.read(image, "a.png")
    assert failed.error and "ThrottlingException" in failed.error
    assert failed.fields == {"DATE": "None", "CITY": "None", "STATE": "None", "ZIP": "None"}
    assert ok.error is None and ok.fields["ZIP"] == "73641"
    assert "textract failed on a.png" in caplog.text


def test_retries_configured_in_botocore() -> None:
    engine, _ = stubbed({"connect_timeout": 3, "read_timeout": 7})
    config = engine.client.meta.config
    assert config.retries["mode"] == "adaptive"
    assert config.retries["total_max_attempts"] == 6  # botocore: 5 retries + the first call
    assert (config.connect_timeout, config.read_timeout) == (3, 7)
    # botocore's adaptive/standard retryer treats Textract throttling as retryable
    from botocore.retries import standard

    checker = standard.ThrottledRetryableChecker()
    ctx = standard.RetryContext(attempt_number=1, parsed_response={"Error": {"Code": "ThrottlingException"}})
    assert checker.is_retryable(ctx)


def test_missing_credentials_clear_error(monkeypatch, tmp_path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(RuntimeError, match="credentials.yml"):
        TextractEngine().check_ready()
    secret = "s3cr3t-value"
    engine = TextractEngine(credentials={"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": secret,
                                         "region_name": "us-east-1"})
    engine.check_ready()
    assert secret not in repr(engine) and secret not in str(engine.config)
