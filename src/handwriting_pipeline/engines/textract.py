"""AWS Textract ``AnalyzeDocument`` with the FORMS feature (a paid API: every answer is cached).

Credentials: ``aws`` in ``conf/local/credentials.yml`` (aws_access_key_id, aws_secret_access_key,
optional aws_session_token, region_name) or the standard AWS chain (environment variables,
``~/.aws``, instance roles). Throttling and timeouts are retried by botocore itself
(``retries={"max_attempts": N, "mode": "adaptive"}``); a form that still fails gets "None"
values and its error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from PIL import Image

from handwriting_pipeline.config import Settings
from handwriting_pipeline.engines.base import Engine, EngineResult
from handwriting_pipeline.engines.forms_api import fields_from_pairs, png_bytes

logger = logging.getLogger(__name__)

CREDENTIALS_HELP = (
    "The textract engine needs AWS credentials and a region: fill 'aws' (aws_access_key_id, "
    "aws_secret_access_key, region_name) in conf/local/credentials.yml (template: "
    "conf/local/credentials.yml.template), or set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / "
    "AWS_DEFAULT_REGION or AWS_PROFILE; or remove 'textract' from extract.engines."
)
_CREDENTIAL_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "profile_name")


def parse_forms_response(response: dict[str, Any]) -> list[tuple[str, str, float]]:
    """KEY_VALUE_SET blocks of an AnalyzeDocument FORMS response -> (key, value, confidence 0-1).

    Key and value texts are their WORD children joined by spaces (lines of a multi-line key
    joined by a line break, so ``STATE\\nZIP`` stays recognisable).
    """
    blocks = {b["Id"]: b for b in response.get("Blocks", [])}

    def children(block: dict, kind: str) -> list[str]:
        return [i for rel in block.get("Relationships", []) if rel.get("Type") == kind for i in rel.get("Ids", [])]

    def text_of(block: dict) -> str:
        words = [blocks[i] for i in children(block, "CHILD") if i in blocks and blocks[i].get("BlockType") == "WORD"]
        if not words:
            return ""
        lines, current, last_top = [], [], None
        for word in words:
            top = word.get("Geometry", {}).get("BoundingBox", {}).get("Top")
            height = word.get("Geometry", {}).get("BoundingBox", {}).get("Height", 0)
            if current and top is not None and last_top is not None and abs(top - last_top) > max(height, 1e-6):
                lines.append(" ".join(current))
                current = []
            current.append(word.get("Text", ""))
            last_top = top if top is not None else last_top
        lines.append(" ".join(current))
        return "\n".join(lines)

    pairs = []
    for block in blocks.values():
        if block.get("BlockType") != "KEY_VALUE_SET" or "KEY" not in block.get("EntityTypes", []):
            continue
        key_text = text_of(block)
        for value_id in children(block, "VALUE"):
            value = blocks.get(value_id)
            if value is None:
                continue
            confidence = min(block.get("Confidence", 100.0), value.get("Confidence", 100.0)) / 100.0
            pairs.append((key_text, text_of(value).replace("\n", " "), confidence))
    return pairs


@dataclass(frozen=True)
class TextractSettings(Settings):
    """``extract.textract`` (credentials come from their own section, never from here)."""

    source: ClassVar[str] = "conf/base/parameters_extract.yml"
    region_name: str | None = None
    max_attempts: int = 8
    retry_mode: str = "adaptive"
    connect_timeout: float = 10
    read_timeout: float = 60


class TextractEngine(Engine):
    """AWS Textract AnalyzeDocument (FORMS) on the crop; KEY/VALUE pairs to the four keys.

    Args (``extract.textract`` parameters):
        region_name: AWS region (else from credentials / environment).
        max_attempts, retry_mode: botocore retries ("adaptive" or "standard").
        connect_timeout, read_timeout: seconds.
        credentials: the ``aws`` section of credentials.yml (not part of the cache key, never logged).
        client: a ready boto3 Textract client (tests pass one with a Stubber).
    """

    name = "textract"
    packages = ("boto3", "botocore")
    version = "1"
    process_local = ("_client",)
    paid = True
    parallel = "thread"
    credentials = "aws"
    settings_class = TextractSettings

    def __init__(self, region_name: str | None = None, max_attempts: int = 8, retry_mode: str = "adaptive",
                 connect_timeout: float = 10, read_timeout: float = 60, credentials: dict | None = None,
                 client: Any = None, **config: Any) -> None:
        super().__init__(feature_types=["FORMS"], **config)
        self.region_name = region_name or (credentials or {}).get("region_name") or None
        self.retry = {"max_attempts": int(max_attempts), "mode": str(retry_mode)}
        self.timeouts = (float(connect_timeout), float(read_timeout))
        self._credentials = {k: v for k, v in (credentials or {}).items() if k in _CREDENTIAL_KEYS and v}
        self._client = client

    def __repr__(self) -> str:  # never show credentials
        return f"TextractEngine(region_name={self.region_name!r}, retries={self.retry})"

    def _session(self):
        import boto3

        return boto3.Session(**self._credentials, region_name=self.region_name)

    def check_ready(self) -> None:
        if self._client is not None:
            return
        try:
            session = self._session()
            creds = session.get_credentials()
        except Exception as err:  # noqa: BLE001 - e.g. a profile that does not exist
            raise RuntimeError(f"{CREDENTIALS_HELP} ({type(err).__name__})") from err
        if creds is None or not session.region_name:
            missing = "credentials" if creds is None else "region"
            raise RuntimeError(f"No AWS {missing} found. {CREDENTIALS_HELP}")

    def botocore_config(self):
        """botocore Config with the retry mode/attempts and timeouts of the parameters."""
        from botocore.config import Config

        return Config(retries=dict(self.retry), connect_timeout=self.timeouts[0], read_timeout=self.timeouts[1])

    @property
    def client(self):
        if self._client is None:
            self._client = self._session().client("textract", config=self.botocore_config())
        return self._client

    def read(self, image: Image.Image, file_name: str = "") -> EngineResult:
        start = time.perf_counter()
        try:
            response = self.client.analyze_document(Document={"Bytes": png_bytes(image)}, FeatureTypes=["FORMS"])
        except Exception as err:  # noqa: BLE001 - after botocore's own retries: record and go on
            logger.warning("textract failed on %s: %s", file_name or "image", err)
            return EngineResult(error=f"{type(err).__name__}: {err}", seconds=time.perf_counter() - start)
        response = {k: v for k, v in response.items() if k != "ResponseMetadata"}
        fields, conf = fields_from_pairs(parse_forms_response(response))
        pages = int(response.get("DocumentMetadata", {}).get("Pages", 1) or 1)
        return EngineResult(fields=fields, confidence=conf, raw=response, usage={"pages": pages},
                            seconds=time.perf_counter() - start)
