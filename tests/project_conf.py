"""The project's configuration as a ``kedro run`` of the HSF form resolves it (``${form_data:...}``
and ``${runtime_params:...}`` in conf/base), for tests that read the catalog or a parameter block."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

CONF = Path(__file__).resolve().parents[1] / "conf"


@functools.cache
def _resolved(kind: str) -> dict[str, Any]:
    from kedro.config import OmegaConfigLoader

    from handwriting_pipeline.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(str(CONF), base_env="base", default_run_env="base",
                               custom_resolvers=CONFIG_LOADER_ARGS["custom_resolvers"])
    return dict(loader[kind])


def resolved(kind: str) -> dict[str, Any]:
    """``catalog`` or ``parameters``, resolved (a fresh copy: tests may change it)."""
    return copy.deepcopy(_resolved(kind))
