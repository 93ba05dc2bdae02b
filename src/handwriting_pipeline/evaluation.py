"""The evaluation's typed settings: the ``evaluation`` block of ``conf/base/parameters_evaluation.yml``
(:class:`EvaluationSettings`) with its ``input_checks`` (:class:`InputChecksSettings`) and ``cost``
(:class:`~handwriting_pipeline.cost.CostSettings`) blocks. Defaults are the YAML's
(``tests/test_config.py``); ``normalize`` is checked by its owner,
:class:`~handwriting_pipeline.fields.normalize.NormalizeOptions`.

Floor 2. May import: floors 0-1 (``config``, ``cost``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from handwriting_pipeline.config import Settings
from handwriting_pipeline.cost import EVALUATION_YML, CostSettings


@dataclass(frozen=True)
class InputChecksSettings(Settings):
    """``evaluation.input_checks``: what every evaluation image must pass before an engine reads it."""

    block: ClassVar[str] = "evaluation.input_checks"
    source: ClassVar[str] = EVALUATION_YML
    enabled: bool = True
    # [width, height] every image must have; None: the active form's size (its spec's crop, else
    # its page: ``FormSpec.page.area``); "any": no size check
    image_size: list[int] | str | None = None
    min_ink_share: float = 0.01
    max_ink_share: float = 0.6


@dataclass(frozen=True)
class EvaluationSettings(Settings):
    """``evaluation``: which methods to report, the review threshold, normalization, failures,
    input checks and cost."""

    block: ClassVar[str] = "evaluation"
    source: ClassVar[str] = EVALUATION_YML
    methods: list[str] | str | None = None  # None = every method whose predictions table has rows
    review_threshold: float = 0.6
    normalize: dict[str, Any] | None = field(default_factory=lambda: {
        "two_digit_year_from": 1900, "city_max_edits": 2, "state_name_max_edits": 1})
    max_failure_share: float | None = 0
    input_checks: InputChecksSettings = field(default_factory=InputChecksSettings)
    cost: CostSettings = field(default_factory=CostSettings)
    # runtime parameter (no YAML key): a labelled folder to evaluate on, read by the catalog
    data_dir: str | None = None
