"""The LLM merge against a small OpenAI-compatible server on 127.0.0.1 started by the test:
valid JSON, invalid JSON (re-ask, then fallback), timeout, 429 (client retry), cache hits,
fail-fast checks, and the prompt templates."""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.ensemble.llm import (
    ANSWER_SCHEMA,
    HintIndex,
    LLMMerger,
    LLMSettings,
    format_rejected,
    load_prompt,
    parse_answer,
    prompt_files,
    prompt_template,
    render_prompt,
)
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.pipelines.ensemble.nodes import llm_predictions
from handwriting_pipeline.predictions import COLUMNS, empty_predictions, predictions_from_records

PROJECT = Path(__file__).resolve().parents[3]
PROMPTS = PROJECT / "conf/base/prompts"
GOOD = {"DATE": "8-3-89", "CITY": "MINDEN CITY", "STATE": "mi", "ZIP": "48456"}


class FakeOpenAI:
    """An OpenAI-compatible server: ``script`` is a list of behaviours used one per request
    (the last one repeats): a dict/str answer, ("429",), ("sleep", seconds, answer)."""

    def __init__(self) -> None:
        self.script: list = [GOOD]
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def _send(self, code: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "fake", "object": "model", "owned_by": "test"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                step = server.script[min(len(server.requests) - 1, len(server.script) - 1)]
                if isinstance(step, tuple) and step[0] == "429":
                    self._send(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                               {"retry-after-ms": "10"})
                    return
                if isinstance(step, tuple) and step[0] == "400":
                    self._send(400, {"error": {"message": "response_format is not supported", "type": "invalid_request"}})
                    return
                if isinstance(step, tuple) and step[0] == "only":  # accepts only these response_format types
                    fmt = body.get("response_format") or {"type": "none"}
                    name = fmt["type"] + ("_schema" if fmt["type"] == "json_object" and "schema" in fmt else "")
                    if name not in step[1]:  # as llama-cpp-python's server says it (there with a 500)
                        self._send(int(step[2]), {"error": {"type": "internal_server_error", "message": (
                            f"1 validation error: loc ('body', 'response_format', 'type'): {name} not supported")}})
                        return
                    step = GOOD
                if isinstance(step, tuple) and step[0] == "sleep":
                    time.sleep(step[1])
                    step = step[2]
                content = step if isinstance(step, str) else json.dumps(step)
                self._send(200, {
                    "id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
                })

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    fake = FakeOpenAI()
    yield fake
    fake.close()


def settings(server: FakeOpenAI, **overrides) -> LLMSettings:
    base = {"model": "fake", "base_url": server.base_url, "timeout": 5, "max_retries": 2,
            "api_key_env": "HWP_TEST_NO_SUCH_KEY"}
    return LLMSettings.from_params({**base, **overrides})


def prompt() -> str:
    return render_prompt(load_prompt("v1", PROMPTS), [
        ({"DATE": "8-3-89", "CITY": "MINDEN CITY", "STATE": "mi", "ZIP": "48456"}, None),
        ({"DATE": "8-3-89", "CITY": "Minden City", "STATE": "MI 48456", "ZIP": "None"}, None),
    ])


# --------------------------------------------------------------------------- templates
def test_v2_is_v1_without_blank_lines_and_extra_spaces():
    v1, v2 = (PROMPTS / "v1.txt").read_text(), (PROMPTS / "v2.txt").read_text()
    compact = "\n".join(re.sub(r"[ \t]+", " ", line).strip() for line in v1.splitlines() if line.strip()) + "\n"
    assert v2 == compact and len(v2) < len(v1)
    assert "\n\n" not in v2 and "  " not in v2


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_templates_render_and_their_examples_are_valid_answers(version):
    text = render_prompt(load_prompt(version, PROMPTS), [(GOOD, {k: 0.9 for k in KEYS})],
                         hints=[(GOOD, GOOD)])
    assert "$" not in text and "Reading 1: " in text and "Similar forms" in text
    answers = re.findall(r"^Answer: (\{.*\})$", text, flags=re.M)
    assert len(answers) >= 4  # three few-shot examples + the hint
    assert all(parse_answer(a) is not None for a in answers)
    assert "JSON1" not in text


def test_parse_answer_requires_exactly_four_string_keys():
    assert parse_answer(json.dumps(GOOD)) == GOOD
    assert parse_answer("```json\n" + json.dumps(GOOD) + "\n```") == GOOD
    assert parse_answer(json.dumps({**GOOD, "NAME": "x"})) is None
    assert parse_answer(json.dumps({k: GOOD[k] for k in ("DATE", "CITY", "STATE")})) is None
    assert parse_answer(json.dumps({**GOOD, "ZIP": 48456})) is None
    assert parse_answer("DATE: 8-3-89") is None


# --------------------------------------------------------------------------- client behaviour
def test_valid_json_answer_tokens_and_request(server):
    merger = LLMMerger(settings(server))
    result = merger.merge(prompt())
    assert result["fields"] == GOOD and result["error"] is None
    assert result["usage"] == {"input_tokens": 100, "output_tokens": 20}
    sent = server.requests[0]
    assert sent["temperature"] == 0 and sent["model"] == "fake"
    # constrained output by default: OpenAI's json_schema with the four string keys
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"] == ANSWER_SCHEMA
    assert ANSWER_SCHEMA["required"] == list(KEYS) and ANSWER_SCHEMA["additionalProperties"] is False
    assert "Reading 2:" in sent["messages"][0]["content"]
    LLMMerger(settings(server, constrained="off")).merge(prompt())
    assert server.requests[-1]["response_format"] == {"type": "json_object"}
    LLMMerger(settings(server, constrained="json_object_schema")).merge(prompt())
    assert server.requests[-1]["response_format"] == {"type": "json_object", "schema": ANSWER_SCHEMA}
    merger_plain = LLMMerger(settings(server, json_mode=False))
    merger_plain.merge(prompt())
    assert "response_format" not in server.requests[-1]
    with pytest.raises(ValueError, match="constrained"):
        settings(server, constrained="grammar")


@pytest.mark.parametrize(("accepted", "status", "expected"), [
    (("json_object_schema", "json_object"), "500", "json_object_schema"),  # llama-cpp-python's server
    (("json_object_schema", "json_object"), "422", "json_object_schema"),
    (("json_object",), "400", "json_object"),                               # JSON mode only
])
def test_auto_constrained_falls_back_to_what_the_server_accepts(server, accepted, status, expected):
    server.script = [("only", accepted, status)]
    merger = LLMMerger(settings(server))
    first = merger.merge(prompt())
    assert first["fields"] == GOOD and merger.response_format == expected
    n = len(server.requests)
    assert [r["response_format"]["type"] for r in server.requests][0] == "json_schema"
    second = merger.merge(prompt(), repeat=1)  # the accepted format is kept: no new probing
    assert second["fields"] == GOOD and len(server.requests) == n + 1
    assert merger.rejected_formats and expected not in merger.rejected_formats


def test_a_500_that_is_not_about_response_format_is_no_rejection():
    class Err(Exception):
        status_code = 500

    assert not format_rejected(Err("Error code: 500 - model crashed"))
    assert format_rejected(Err("Error code: 500 - {'loc': ('body', 'response_format', 'type')}"))


def test_accepted_format_is_not_dropped_on_a_later_400(server):
    server.script = [GOOD, ("400",)]
    merger = LLMMerger(settings(server))
    assert merger.merge(prompt())["fields"] == GOOD
    failed = merger.merge(prompt(), repeat=1)
    assert failed["fields"] is None and merger.response_format == "json_schema"
    assert len(server.requests) == 2 and not merger.rejected_formats


def test_constrained_and_plain_answers_have_their_own_cache_keys(server, tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    LLMMerger(settings(server), cache).merge(prompt())
    LLMMerger(settings(server, constrained="off"), cache).merge(prompt())
    assert len(server.requests) == 2
    LLMMerger(settings(server, constrained="off"), cache).merge(prompt())
    assert len(server.requests) == 2


def test_invalid_json_is_asked_again_then_succeeds(server):
    server.script = ["Sure! The answer is DATE=8-3-89", GOOD]
    result = LLMMerger(settings(server)).merge(prompt())
    assert result["fields"] == GOOD and len(server.requests) == 2
    assert server.requests[1]["messages"][-1]["role"] == "user"  # the re-ask
    assert result["usage"]["input_tokens"] == 200  # both calls are paid for


def test_invalid_json_twice_falls_back_with_reason(server, tmp_path):
    server.script = [{"DATE": "8-3-89"}]  # wrong keys every time
    cache = ResponseCache(tmp_path / "cache")
    result = LLMMerger(settings(server), cache).merge(prompt())
    assert result["fields"] is None and "invalid answer after 2" in result["error"]
    assert len(server.requests) == 2 and len(cache) == 0  # failures are not cached


def test_timeout_gives_error_after_client_retries(server):
    server.script = [("sleep", 1.5, GOOD)]
    result = LLMMerger(settings(server, timeout=0.3, max_retries=1)).merge(prompt())
    assert result["fields"] is None and "Timeout" in result["error"]
    assert len(server.requests) == 2  # the first try and the client's one retry


def test_rate_limit_is_retried_by_the_client(server):
    server.script = [("429",), ("429",), GOOD]
    result = LLMMerger(settings(server, max_retries=3)).merge(prompt())
    assert result["fields"] == GOOD and result["error"] is None
    assert len(server.requests) == 3


def test_server_without_json_mode_gets_a_hint(server):
    server.script = [("400",)]
    result = LLMMerger(settings(server, constrained="off")).merge(prompt())
    assert result["fields"] is None and "json_mode: false" in result["error"]
    assert len(server.requests) == 1  # 400 is not retried
    # auto: each of the three formats is tried once, then the same hint
    result = LLMMerger(settings(server)).merge(prompt())
    assert result["fields"] is None and "json_mode: false" in result["error"]
    assert len(server.requests) == 4


def test_cache_hit_makes_no_request(server, tmp_path):
    cache = ResponseCache(tmp_path / "cache")
    first = LLMMerger(settings(server), cache).merge(prompt())
    assert not first["cached"] and len(server.requests) == 1
    again = LLMMerger(settings(server), ResponseCache(tmp_path / "cache")).merge(prompt())
    assert again["cached"] and again["fields"] == GOOD and len(server.requests) == 1
    # another repeat index, model or prompt is another key
    LLMMerger(settings(server), cache).merge(prompt(), repeat=1)
    LLMMerger(settings(server, model="other"), cache).merge(prompt())
    assert len(server.requests) == 3


def test_check_ready_fails_fast_without_server_or_key(server, monkeypatch):
    LLMMerger(settings(server)).check_ready()  # reachable
    dead = settings(server, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(RuntimeError, match="cannot reach an OpenAI-compatible server"):
        LLMMerger(dead).check_ready()
    monkeypatch.delenv("HWP_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(RuntimeError, match="HWP_TEST_NO_SUCH_KEY"):
        LLMMerger(LLMSettings(api_key_env="HWP_TEST_NO_SUCH_KEY")).check_ready()
    # a key from credentials.yml or the environment is used as given
    assert LLMMerger(LLMSettings(api_key_env="HWP_TEST_NO_SUCH_KEY"), api_key="sk-cred").api_key() == "sk-cred"
    monkeypatch.setenv("HWP_TEST_NO_SUCH_KEY", "sk-env")
    assert LLMMerger(LLMSettings(api_key_env="HWP_TEST_NO_SUCH_KEY")).api_key() == "sk-env"


def test_prompts_and_hint_sources_come_from_the_catalog(tmp_path):
    """The LLM node reads no files: the catalog hands it the prompt templates (one partition per
    version) and the hint sources (labelled forms + recorded readings), all lazy."""
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog

    conf = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")
    catalog = DataCatalog.from_config(conf["catalog"])
    prompts = catalog.load("llm_prompts")()
    assert sorted(prompts) == ["v1", "v2"]
    assert prompt_template(prompts, "v1").template == (PROMPTS / "v1.txt").read_text(encoding="utf-8")
    with pytest.raises(KeyError, match="available versions"):
        prompt_template(prompts, "v9")
    assert callable(catalog.load("llm_hint_forms")) and callable(catalog.load("llm_hint_readings"))
    ensemble = pytest.importorskip("handwriting_pipeline.pipelines.ensemble")
    node = next(n for n in ensemble.create_pipeline().nodes if n.name == "ensemble_llm")
    assert {"llm_prompts", "llm_hint_forms", "llm_hint_readings"} <= set(node.inputs)


def test_hint_index_pairs_readings_with_labels_in_reading_order():
    labels = pd.DataFrame([{"file_name": n, **GOOD, "CITY": c} for n, c in (("a.png", "Novi"), ("b.png", "Troy"))])
    readings = predictions_from_records([{"file_name": "x.png", **GOOD}, {"file_name": "b.png", **GOOD, "CITY": "Tr0y"},
                                         {"file_name": "a.png", **GOOD, "CITY": "Nov1"}])
    index = HintIndex.from_tables(labels, readings)
    assert [r["CITY"] for r in index.readings] == ["Tr0y", "Nov1"]
    assert [a["CITY"] for a in index.answers] == ["Troy", "Novi"]
    assert index.nearest({**GOOD, "CITY": "Nov1"}, 1)[0][1]["CITY"] == "Novi"
    with pytest.raises(ValueError, match="match"):
        HintIndex.from_tables(labels.iloc[:0], readings)


# --------------------------------------------------------------------------- node
def _engine(values: dict[str, dict]) -> pd.DataFrame:
    return predictions_from_records(
        [{"file_name": n, **v, **{f"{k}_conf": 0.8 for k in KEYS}} for n, v in values.items()])


def test_llm_node_repeats_fallback_cache_and_variability(server, tmp_path):
    textract = _engine({"a.png": {**GOOD, "STATE": "MI 48456", "ZIP": "None"}, "b.png": GOOD})
    donut = _engine({"a.png": GOOD, "b.png": {**GOOD, "CITY": "Minden"}})
    labels = pd.DataFrame([{"file_name": n, **GOOD} for n in ("a.png", "b.png")])
    # the 2nd call answers garbage twice (a.png repeat 1 -> fallback to textract)
    server.script = [GOOD, "no json", "still no json", GOOD]
    params = {"methods": ["vote", "llm"], "inputs": [], "llm": {
        "model": "fake", "base_url": server.base_url, "repeats": 2,
        "fallback": "textract", "timeout": 5, "max_retries": 0}}
    others = {e: empty_predictions() for e in ("rapidocr", "tesseract", "azure_form_recognizer")}
    cache = ResponseCache(tmp_path / "cache")
    table, report = llm_predictions(LabelledForms(labels), cache, params, prompts=prompt_files(PROMPTS),
                                    textract=textract, donut=donut, **others)
    assert list(table.columns) == COLUMNS and list(table.file_name) == ["a.png", "b.png"]
    a = table.set_index("file_name").loc["a.png"]
    assert "fell back to textract" in a["error"]
    assert a["STATE_conf"] == 0.5 and a["DATE_conf"] == 1.0  # share of repeats agreeing
    assert table["input_tokens"].sum() == 100 * len(server.requests)
    assert report["repeats"] == 2 and report["fallbacks"] == 1
    assert report["agreement"]["DATE"] == 100.0 and report["agreement"]["STATE"] == 50.0
    assert report["FLA_per_repeat"] == [100.0, 50.0] and report["FLA_spread"] == 50.0
    # a second run is served from the cache for every successful answer
    n = len(server.requests)
    server.script = [GOOD]
    again, report2 = llm_predictions(LabelledForms(labels), ResponseCache(tmp_path / "cache"), params,
                                     prompts=prompt_files(PROMPTS), textract=textract, donut=donut, **others)
    assert len(server.requests) == n + 1  # only the answer that failed before is asked again
    assert report2["fallbacks"] == 0


def test_llm_node_disabled_by_default_and_fails_fast_when_unreachable(tmp_path):
    empty = {e: empty_predictions() for e in ("textract", "donut")}
    table, report = llm_predictions(None, ResponseCache(tmp_path), {"methods": ["vote"]}, **empty)
    assert table.empty and "disabled" in report["status"]
    textract = _engine({"a.png": GOOD})
    params = {"methods": ["llm"], "llm": {"base_url": "http://127.0.0.1:9/v1"}}
    with pytest.raises(RuntimeError, match="cannot reach"):
        llm_predictions(None, ResponseCache(tmp_path), params, prompts=prompt_files(PROMPTS), textract=textract,
                        donut=empty_predictions())
