"""Azure Form Recognizer engine with the SDK's HTTP transport replaced by recorded responses."""

from __future__ import annotations

import json

import pytest
import requests
from azure.core.pipeline.transport import HttpTransport, RequestsTransportResponse
from PIL import Image

from handwriting_pipeline.engines.azure import AzureFormRecognizerEngine

ENDPOINT = "https://hwp-test.cognitiveservices.azure.com/"
OPERATION = f"{ENDPOINT}formrecognizer/documentModels/prebuilt-document/analyzeResults/3b2a1c?api-version=2023-07-31"


def _region(x0: int, y0: int, x1: int, y1: int) -> list[dict]:
    return [{"pageNumber": 1, "polygon": [x0, y0, x1, y0, x1, y1, x0, y1]}]


def _kv(key: str, value: str | None, offset: int, confidence: float) -> dict:
    pair = {"key": {"content": key, "boundingRegions": _region(800, 130, 950, 175),
                    "spans": [{"offset": offset, "length": len(key)}]}, "confidence": confidence}
    if value is not None:
        pair["value"] = {"content": value, "boundingRegions": _region(780, 180, 1100, 270),
                         "spans": [{"offset": offset + len(key) + 1, "length": len(value)}]}
    return pair


# shaped like a real 2023-07-31 prebuilt-document analyzeResults body (trimmed to what matters)
ANALYZE_RESULT = {
    "status": "succeeded",
    "createdDateTime": "2024-03-01T10:00:00Z",
    "lastUpdatedDateTime": "2024-03-01T10:00:02Z",
    "analyzeResult": {
        "apiVersion": "2023-07-31",
        "modelId": "prebuilt-document",
        "stringIndexType": "textElements",
        "content": "NAME DATE 9-26-89 CITY RHINELANDER STATE ZIP Wisconsin 54501",
        "pages": [{"pageNumber": 1, "angle": 0, "width": 2460, "height": 350, "unit": "pixel",
                   "spans": [{"offset": 0, "length": 62}], "words": [], "lines": []}],
        "paragraphs": [], "tables": [], "styles": [],
        "keyValuePairs": [
            _kv("NAME", None, 0, 0.3),
            _kv("-DATE", "9-26-89", 5, 0.759),
            _kv("CITY", "RHINELANDER", 18, 0.862),
            _kv("STATE", "Wisconsin 54501", 35, 0.976),   # digits move to ZIP
        ],
    },
}


class RecordedTransport(HttpTransport):
    """Answers the analyze POST with 202 + Operation-Location and the poll GET with the result."""

    def __init__(self, result: dict, fail_first: int = 0) -> None:
        self.result, self.fail_first, self.requests = result, fail_first, []

    def __enter__(self):
        return self

    def __exit__(self, *args) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def send(self, request, **kwargs):
        self.requests.append((request.method, request.url, dict(request.headers)))
        raw = requests.Response()
        raw.url = request.url
        raw.reason = "OK"
        raw.headers["content-type"] = "application/json"
        if request.method == "POST" and self.fail_first > 0:
            self.fail_first -= 1
            raw.status_code, raw.reason = 429, "Too Many Requests"
            raw.headers["Retry-After"] = "0"
            raw._content = json.dumps({"error": {"code": "429", "message": "Rate limit exceeded"}}).encode()
        elif request.method == "POST":
            raw.status_code, raw._content = 202, b""
            raw.headers["Operation-Location"] = OPERATION
            raw.headers["apim-request-id"] = "3b2a1c"
        else:
            raw.status_code, raw._content = 200, json.dumps(self.result).encode()
        return RequestsTransportResponse(request, raw)


@pytest.fixture()
def image() -> Image.Image:
    return Image.new("1", (246, 35), 1)


def engine_with(transport: RecordedTransport, **kwargs) -> AzureFormRecognizerEngine:
    return AzureFormRecognizerEngine(credentials={"endpoint": ENDPOINT, "key": "k" * 32}, transport=transport,
                                     polling_interval=0, retry_backoff_factor=0, **kwargs)


def test_key_value_pairs_to_fields(image) -> None:
    transport = RecordedTransport(ANALYZE_RESULT)
    engine = engine_with(transport)
    engine.check_ready()
    result = engine.read(image, "f1954_31.png")
    assert result.error is None
    assert result.fields == {"DATE": "9-26-89", "CITY": "RHINELANDER", "STATE": "Wisconsin", "ZIP": "54501"}
    assert result.confidence["CITY"] == pytest.approx(0.862)
    assert result.usage["pages"] == 1
    method, url, headers = transport.requests[0]
    assert method == "POST" and "prebuilt-document:analyze" in url
    assert headers.get("Ocp-Apim-Subscription-Key") == "k" * 32  # sent to the service, never logged


def test_rate_limited_then_success_via_sdk_retries(image) -> None:
    transport = RecordedTransport(ANALYZE_RESULT, fail_first=2)
    result = engine_with(transport, retry_total=3).read(image, "f.png")
    assert result.error is None and result.fields["ZIP"] == "54501"
    assert [m for m, _, _ in transport.requests][:3] == ["POST", "POST", "POST"]


def test_still_failing_form_records_error(image) -> None:
    transport = RecordedTransport(ANALYZE_RESULT, fail_first=10)
    result = engine_with(transport, retry_total=1).read(image, "f.png")
    assert result.error is not None and ("429" in result.error or "Rate limit" in result.error)
    assert set(result.fields.values()) == {"None"}


def test_missing_credentials_clear_error(monkeypatch) -> None:
    monkeypatch.delenv("AZURE_FORM_RECOGNIZER_ENDPOINT", raising=False)
    monkeypatch.delenv("AZURE_FORM_RECOGNIZER_KEY", raising=False)
    with pytest.raises(RuntimeError, match="AZURE_FORM_RECOGNIZER_KEY"):
        AzureFormRecognizerEngine().check_ready()
    engine = AzureFormRecognizerEngine(credentials={"endpoint": ENDPOINT, "key": "topsecret"})
    assert "topsecret" not in repr(engine) and "topsecret" not in str(engine.config)
