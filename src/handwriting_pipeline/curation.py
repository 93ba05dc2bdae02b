"""The curation's typed settings: the ``curation`` block of ``conf/base/parameters_curation.yml``
(:class:`CurationSettings`) with its ``synthetic``, ``crop``, ``annotate`` and ``split`` blocks.
Defaults are the YAML's (``tests/test_config.py``); the raw folders (``pages_dir``,
``labels_dir``, ``data_dir``, ``hf_name``) are runtime parameters read by the catalog, with no
YAML key.

Floor 2. May import: floors 0-1 (``config``, ``synthetic`` for the generator's options).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from handwriting_pipeline.config import Settings

CURATION_YML = "conf/base/parameters_curation.yml"


@dataclass(frozen=True)
class SyntheticSourceSettings(Settings):
    """``curation.synthetic``: how many seeded synthetic forms, in how many processes; every other
    key is an option of :class:`~handwriting_pipeline.synthetic.SyntheticFormGenerator` (the HSF
    form) and :class:`~handwriting_pipeline.synthetic.SpecFormGenerator` (any other form), which
    take the same options (``blank_rate`` ...), and lands in ``options``."""

    block: ClassVar[str] = "curation.synthetic"
    source: ClassVar[str] = CURATION_YML
    n_forms: int = 300
    seed: int = 0
    workers: int = 2
    options: dict[str, Any] = field(default_factory=dict)  # generator options (no YAML key: all default)

    @classmethod
    def from_params(cls, params: Any, block: str | None = None) -> SyntheticSourceSettings:
        """Own keys as fields, the rest as generator options; a key that is neither raises a
        ValueError naming it, the block and its file."""
        if isinstance(params, cls):
            return params
        from handwriting_pipeline.synthetic.generator import DEFAULTS

        params = dict(params or {})
        own = [f.name for f in dataclasses.fields(cls) if f.name != "options"]
        unknown = [k for k in params if k not in own and k not in DEFAULTS]
        if unknown:
            raise ValueError(f"unknown key '{unknown[0]}' in {block or cls.block} ({cls.source}); known keys: "
                             f"{', '.join(own)} and the generator options {', '.join(sorted(DEFAULTS))}")
        options = {k: v for k, v in params.items() if k not in own}
        return super().from_params({**{k: v for k, v in params.items() if k in own}, "options": options}, block)


@dataclass(frozen=True)
class CropSettings(Settings):
    """``curation.crop``: cutting the top section of full SD19 pages (source ``sd19_pages``)."""

    block: ClassVar[str] = "curation.crop"
    source: ClassVar[str] = CURATION_YML
    box: list[int] = field(default_factory=lambda: [100, 300, 2560, 650])  # left, top, right, bottom
    register: bool = True          # deskew + shift onto the printed box lines before cropping
    max_shift: int = 200           # px; a box row further off fails registration
    max_skew: float = 3.0          # degrees
    threshold: int = 128           # grey level below which a pixel is ink
    blackout_name: bool = True     # black out the NAME box
    page_size: list[int] | None = field(default_factory=lambda: [2560, 3300])  # None: any size
    workers: int = 2               # threads cropping pages


@dataclass(frozen=True)
class AnnotateSettings(Settings):
    """``curation.annotate``: copies of a blank form added to the ``sd19_pages`` forms."""

    block: ClassVar[str] = "curation.annotate"
    source: ClassVar[str] = CURATION_YML
    blank_form: str | None = "f0067_25"
    blank_copies: int = 47         # 0 = none


@dataclass(frozen=True)
class SplitSettings(Settings):
    """``curation.split``: train / validation / test sizes of sources that come unsplit."""

    block: ClassVar[str] = "curation.split"
    source: ClassVar[str] = CURATION_YML
    sizes: dict[str, int] = field(default_factory=lambda: {"train": 1400, "validation": 199, "test": 500})
    surplus: str = "train"         # split that takes the forms beyond the sizes, or "drop"
    seed: int = 42


@dataclass(frozen=True)
class CurationSettings(Settings):
    """``curation``: which source, the size every form must have, and each step's block."""

    block: ClassVar[str] = "curation"
    source: ClassVar[str] = CURATION_YML
    #: YAML key ``source`` (synthetic | sd19_pages | donut_folder | hf_dataset | reviewed): renamed
    #: because ``source`` names the YAML file of every settings class
    source_name: str = "synthetic"
    reviewed_runs: list[str] | str = field(default_factory=list)  # digitize run folders (source "reviewed")
    #: every curated form has this size ([width, height]); None: the run's form's size (its spec's
    #: ``page.area``, 2460x350 for hsf_top); "any": no size check
    image_size: list[int] | str | None = None
    synthetic: SyntheticSourceSettings = field(default_factory=SyntheticSourceSettings)
    crop: CropSettings = field(default_factory=CropSettings)
    annotate: AnnotateSettings = field(default_factory=AnnotateSettings)
    split: SplitSettings = field(default_factory=SplitSettings)
    # runtime parameters (no YAML key): the raw folders, read by the catalog
    pages_dir: str | None = None
    labels_dir: str | None = None
    data_dir: str | None = None
    hf_name: str | None = None

    @classmethod
    def from_params(cls, params: Any, block: str | None = None) -> CurationSettings:
        """The ``curation`` block (its ``source`` key as :attr:`source_name`)."""
        if isinstance(params, cls):
            return params
        params = dict(params or {})
        if "source" in params:
            params["source_name"] = params.pop("source")
        return super().from_params(params, block)
