"""A local HTTP server that speaks just enough of the Textract JSON protocol for the real boto3
client (and botocore's own retries) to talk to it: ``AWS_ENDPOINT_URL_TEXTRACT=<url>``.

``plan`` is a list of answers used in request order (the last one repeats): ``"ok"`` (a FORMS
response reading Murray, KY), ``"throttle"`` (400 ThrottlingException, retried by botocore),
``"bad"`` (400 UnsupportedDocumentException, not retried).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _word(i: int, text: str) -> dict:
    return {"BlockType": "WORD", "Id": f"w{i}", "Text": text, "Confidence": 99.0,
            "Geometry": {"BoundingBox": {"Width": 0.05, "Height": 0.1, "Left": 0.1 * i, "Top": 0.5}}}


def forms_response(fields: dict[str, str]) -> dict:
    blocks, n = [], 0
    for k, (key, value) in enumerate(fields.items()):
        blocks += [_word(n, key), _word(n + 1, value)]
        blocks.append({"BlockType": "KEY_VALUE_SET", "Id": f"k{k}", "EntityTypes": ["KEY"], "Confidence": 95.0,
                       "Relationships": [{"Type": "VALUE", "Ids": [f"v{k}"]}, {"Type": "CHILD", "Ids": [f"w{n}"]}]})
        blocks.append({"BlockType": "KEY_VALUE_SET", "Id": f"v{k}", "EntityTypes": ["VALUE"], "Confidence": 90.0,
                       "Relationships": [{"Type": "CHILD", "Ids": [f"w{n + 1}"]}]})
        n += 2
    return {"DocumentMetadata": {"Pages": 1}, "Blocks": blocks, "AnalyzeDocumentModelVersion": "1.0"}


OK = forms_response({"DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42071"})
ERRORS = {"throttle": (400, "ThrottlingException", "Rate exceeded"),
          "bad": (400, "UnsupportedDocumentException", "Request has unsupported document format")}


class FakeTextract:
    def __init__(self, plan: list[str]) -> None:
        self.plan = list(plan)
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                step = fake.plan[min(fake.requests, len(fake.plan) - 1)]
                fake.requests += 1
                if step == "ok":
                    status, body = 200, OK
                else:
                    status, code, message = ERRORS[step]
                    body = {"__type": code, "message": message}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeTextract":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
