"""Azure Form Recognizer (``prebuilt-document``) key/value pairs (a paid API: every answer is cached).

Credentials: ``azure_form_recognizer.endpoint`` and ``.key`` in ``conf/local/credentials.yml`` or
the environment variables AZURE_FORM_RECOGNIZER_ENDPOINT / AZURE_FORM_RECOGNIZER_KEY. Retries
(``retry_total``, backoff) and timeouts are the Azure SDK's own pipeline settings.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from PIL import Image

from handwriting_pipeline.config import Settings
from handwriting_pipeline.engines.base import Engine, EngineResult
from handwriting_pipeline.engines.forms_api import fields_from_pairs, png_bytes

logger = logging.getLogger(__name__)

CREDENTIALS_HELP = (
    "The azure_form_recognizer engine needs an endpoint and a key: fill 'azure_form_recognizer' "
    "(endpoint, key) in conf/local/credentials.yml (template: conf/local/credentials.yml.template) "
    "or set AZURE_FORM_RECOGNIZER_ENDPOINT and AZURE_FORM_RECOGNIZER_KEY; or remove "
    "'azure_form_recognizer' from extract.engines."
)


@dataclass(frozen=True)
class AzureSettings(Settings):
    """``extract.azure_form_recognizer`` (credentials come from their own section)."""

    source: ClassVar[str] = "conf/base/parameters_extract.yml"
    model_id: str = "prebuilt-document"
    retry_total: int = 8
    retry_backoff_factor: float = 0.8
    connection_timeout: float = 10
    read_timeout: float = 120
    polling_interval: float = 1.0


class AzureFormRecognizerEngine(Engine):
    """Azure ``DocumentAnalysisClient.begin_analyze_document("prebuilt-document")``.

    Args (``extract.azure_form_recognizer`` parameters):
        model_id: "prebuilt-document".
        retry_total, retry_backoff_factor: azure-core retry policy.
        connection_timeout, read_timeout: seconds.
        polling_interval: seconds between result polls.
        credentials: the ``azure_form_recognizer`` section of credentials.yml (never logged).
        transport: an azure-core HTTP transport (tests pass a recorded one).
    """

    name = "azure_form_recognizer"
    packages = ("azure-ai-formrecognizer",)
    version = "1"
    process_local = ("_client",)
    paid = True
    parallel = "thread"
    credentials = "azure_form_recognizer"
    settings_class = AzureSettings

    def __init__(self, model_id: str = "prebuilt-document", retry_total: int = 8, retry_backoff_factor: float = 0.8,
                 connection_timeout: float = 10, read_timeout: float = 120, polling_interval: float = 1.0,
                 credentials: dict | None = None, transport: Any = None, **config: Any) -> None:
        super().__init__(model_id=model_id, **config)
        creds = credentials or {}
        self.endpoint = creds.get("endpoint") or os.environ.get("AZURE_FORM_RECOGNIZER_ENDPOINT", "")
        self._key = creds.get("key") or os.environ.get("AZURE_FORM_RECOGNIZER_KEY", "")
        self.settings = {"retry_total": int(retry_total), "retry_backoff_factor": float(retry_backoff_factor),
                         "connection_timeout": float(connection_timeout), "read_timeout": float(read_timeout)}
        self.polling_interval = float(polling_interval)
        self._transport = transport
        self._client = None

    def __repr__(self) -> str:  # never show the key
        return f"AzureFormRecognizerEngine(endpoint={self.endpoint!r}, model_id={self.config['model_id']!r})"

    def check_ready(self) -> None:
        missing = [name for name, value in (("endpoint", self.endpoint), ("key", self._key)) if not value]
        if missing:
            raise RuntimeError(f"Azure Form Recognizer {' and '.join(missing)} not set. {CREDENTIALS_HELP}")
        try:
            import azure.ai.formrecognizer  # noqa: F401
        except ImportError as err:
            raise RuntimeError("pip install 'azure-ai-formrecognizer>=3.3' for the azure_form_recognizer engine") from err

    @property
    def client(self):
        if self._client is None:
            from azure.ai.formrecognizer import DocumentAnalysisClient
            from azure.core.credentials import AzureKeyCredential

            extra = {"transport": self._transport} if self._transport is not None else {}
            self._client = DocumentAnalysisClient(self.endpoint, AzureKeyCredential(self._key), **self.settings, **extra)
        return self._client

    def read(self, image: Image.Image, file_name: str = "") -> EngineResult:
        start = time.perf_counter()
        try:
            poller = self.client.begin_analyze_document(self.config["model_id"], document=png_bytes(image),
                                                        polling_interval=self.polling_interval)
            result = poller.result()
        except Exception as err:  # noqa: BLE001 - after the SDK's retries: record and go on
            logger.warning("azure_form_recognizer failed on %s: %s", file_name or "image", err)
            return EngineResult(error=f"{type(err).__name__}: {err}", seconds=time.perf_counter() - start)
        pairs = [
            (kv.key.content if kv.key else "", kv.value.content if kv.value else "", float(kv.confidence or 0.0))
            for kv in (result.key_value_pairs or [])
        ]
        fields, conf = fields_from_pairs(pairs)
        raw = {"key_value_pairs": [{"key": k, "value": v, "confidence": c} for k, v, c in pairs],
               "pages": len(result.pages or []), "model_id": result.model_id}
        return EngineResult(fields=fields, confidence=conf, raw=raw, usage={"pages": max(1, len(result.pages or []))},
                            seconds=time.perf_counter() - start)
