"""Typed settings: frozen dataclasses built from the parameter blocks of ``conf/base``.

Every block a node reads is turned into a :class:`Settings` dataclass by
:meth:`Settings.from_params`, which rejects a key the dataclass does not know (a typo in the YAML
or on the command line) and a missing required key, naming the block and its YAML file. The
dataclasses hold no default that differs from the YAML: a key that ``conf/base`` gives is either
required or defaults to the YAML value (``tests/test_config.py`` checks this against the YAML
files); fields with a default and no YAML key are optional extras that are off by default.

Training settings are here (:class:`TrainSettings`: ``train``, ``parameters_train.yml``;
:class:`FieldReaderTrainSettings`: ``train_fieldreader``, ``parameters_train_fieldreader.yml``);
each engine declares its ``extract.<method>`` settings next to its class
(:attr:`~handwriting_pipeline.engines.base.Engine.settings`).

Floor 0 (ground). May import: nothing from this project.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

S = TypeVar("S", bound="Settings")


@dataclass(frozen=True)
class Settings:
    """Base of the settings dataclasses: :meth:`from_params` with key checks."""

    #: the parameter block (``train.finetune``) and its file, for error messages
    block: ClassVar[str] = ""
    source: ClassVar[str] = ""

    @classmethod
    def from_params(cls: type[S], params: Mapping[str, Any] | S | None, block: str | None = None) -> S:
        """The settings of one parameter block; nested blocks become nested settings.

        Raises a ValueError naming the key, the block and its YAML file for a key the dataclass
        does not know or a required key the block lacks.
        """
        if isinstance(params, cls):
            return params
        block = block or cls.block
        where = f"{block} ({cls.source})" if cls.source else block
        params = dict(params or {})
        names = [f.name for f in dataclasses.fields(cls)]
        for key in params:
            if key not in names:
                raise ValueError(f"unknown key '{key}' in {where}; known keys: {', '.join(names)}")
        for f in dataclasses.fields(cls):
            if f.name not in params and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{where} lacks the key '{f.name}'")
        hints = typing.get_type_hints(cls)
        values = {}
        for key, value in params.items():
            kind = hints.get(key)
            nested = isinstance(kind, type) and issubclass(kind, Settings)
            values[key] = kind.from_params(value, f"{block}.{key}") if nested else value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain (nested) dict."""
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- train (Donut)
TRAIN_YML = "conf/base/parameters_train.yml"


@dataclass(frozen=True)
class TextLinesSettings(Settings):
    """``train.model.text_lines``: the field reader's backbone as the Donut encoder."""

    block: ClassVar[str] = "train.model.text_lines"
    source: ClassVar[str] = TRAIN_YML
    fieldreader_dir: str | None = None
    line_widths: list[int] = field(default_factory=lambda: [160, 400])
    augment: float = 1.0
    freeze_steps: int = 150
    lr_scale: float = 0.1
    cache_copies: int = 0  # > 0: backbone frozen, its features cached for the plain + N augmented lines


@dataclass(frozen=True)
class ModelSettings(Settings):
    """``train.model``: how the Donut is built (``presets`` is the table of sizes)."""

    block: ClassVar[str] = "train.model"
    source: ClassVar[str] = TRAIN_YML
    presets: dict[str, Any]
    init: str = "from_config"
    preset: str = "tiny"
    encoder: str = "donut_swin"
    text_lines: TextLinesSettings = field(default_factory=TextLinesSettings)
    pretrained_name_or_path: str = "naver-clova-ix/donut-base"
    roi: list[int] | None = field(default_factory=lambda: [700, 140, 2300, 340])
    max_length: int = 96
    position_channels: bool = True


@dataclass(frozen=True)
class CtcSettings(Settings):
    """``train.ctc``: the auxiliary CTC loss on the encoder columns (0 = off)."""

    block: ClassVar[str] = "train.ctc"
    source: ClassVar[str] = TRAIN_YML
    weight: float = 1.0
    expand: int = 3


@dataclass(frozen=True)
class TokenizerSettings(Settings):
    """``train.tokenizer`` (``from_config`` only)."""

    block: ClassVar[str] = "train.tokenizer"
    source: ClassVar[str] = TRAIN_YML
    vocab_size: int = 0
    min_frequency: int = 2
    synthetic_forms: int = 2000


@dataclass(frozen=True)
class AugmentSettings(Settings):
    """``train.augment``: the keyword arguments of :class:`~handwriting_pipeline.donut.data.Augmenter`."""

    block: ClassVar[str] = "train.augment"
    source: ClassVar[str] = TRAIN_YML
    enabled: bool = True
    shift_px: list[float] = field(default_factory=lambda: [30, 15])
    scale: float = 0.05
    rotate_deg: float = 1.0
    stroke_prob: float = 0.2


@dataclass(frozen=True)
class TrainerSettings(Settings):
    """``train.trainer``: hardware, data loading, validation and checkpoints."""

    block: ClassVar[str] = "train.trainer"
    source: ClassVar[str] = TRAIN_YML
    accelerator: str = "auto"
    devices: Any = "auto"
    precision: Any = "auto"
    gradient_clip_val: float = 1.0
    num_workers: int = 0
    val_batch_size: int = 16
    val_num_beams: int = 1
    val_max_forms: int | None = None
    progress_bar: bool = True
    log_every_n_steps: int = 10
    checkpoint_dir: str | None = "data/06_models/checkpoints"
    resume: bool = False


@dataclass(frozen=True)
class EarlyStoppingSettings(Settings):
    """``train.early_stopping``: on ``val_ned`` (lower is better)."""

    block: ClassVar[str] = "train.early_stopping"
    source: ClassVar[str] = TRAIN_YML
    monitor: str = "val_ned"
    patience: int = 3
    min_delta: float = 0.0


@dataclass(frozen=True)
class StageSettings(Settings):
    """``train.finetune`` (and the training part of ``train.pretrain``): one training stage.

    Keys whose YAML values differ between the stages are required. The optional extras default
    to "off"; ``None`` in ``patience`` / ``val_max_forms`` means the ``train.early_stopping`` /
    ``train.trainer`` value, and in ``ctc_weight`` / ``ctc_expand`` / ``encoder_freeze_steps`` /
    ``encoder_lr_scale`` the ``train.ctc`` / ``train.model.text_lines`` value (filled in by the
    train nodes; :func:`~handwriting_pipeline.donut.training.fit_stage` alone: no CTC loss, no
    frozen encoder).
    """

    block: ClassVar[str] = "train.finetune"
    source: ClassVar[str] = TRAIN_YML
    epochs: int
    learning_rate: float
    max_minutes: float | None  # wall-clock cap for the stage (None = none)
    restore_best: bool  # end with the best val_ned checkpoint's weights (false: the last weights)
    batch_size: int = 8
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    # optional extras (no YAML key)
    patience: int | None = None
    val_max_forms: int | None = None
    max_steps: int | None = None
    val_check_interval: Any = None
    accumulate_grad_batches: int = 1
    min_lr_ratio: float = 0.05
    schedule_by_time: bool = False  # with max_minutes: the cosine decay follows the wall clock
    ctc_weight: float | None = None
    ctc_expand: int | None = None
    encoder_freeze_steps: int | None = None
    encoder_lr_scale: float | None = None


@dataclass(frozen=True)
class PretrainSettings(StageSettings):
    """``train.pretrain``: stage 1 on synthetic forms generated on the fly."""

    block: ClassVar[str] = "train.pretrain"
    enabled: bool = True
    num_forms: int = 100
    seed: int = 1000
    generator: dict[str, Any] = field(default_factory=dict)
    augment: bool = False


@dataclass(frozen=True)
class TrainSettings(Settings):
    """``train``: the Donut's training (``parameters_train.yml``)."""

    block: ClassVar[str] = "train"
    source: ClassVar[str] = TRAIN_YML
    model: ModelSettings
    pretrain: PretrainSettings
    finetune: StageSettings
    models: list[str] | str = "all"  # the trained engines `train` trains (all: every one registered)
    seed: int = 42
    ctc: CtcSettings = field(default_factory=CtcSettings)
    tokenizer: TokenizerSettings = field(default_factory=TokenizerSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    early_stopping: EarlyStoppingSettings = field(default_factory=EarlyStoppingSettings)

    def stage(self, name: str) -> StageSettings:
        """The settings of stage ``pretrain`` or ``finetune``."""
        if name not in ("pretrain", "finetune"):
            raise ValueError(f"unknown training stage {name!r}: pretrain or finetune")
        return getattr(self, name)


# --------------------------------------------------------------------------- train_fieldreader
FIELDREADER_YML = "conf/base/parameters_train_fieldreader.yml"


@dataclass(frozen=True)
class ReaderTrainerSettings(Settings):
    """``train_fieldreader.trainer``: the field reader's fine-tuning."""

    block: ClassVar[str] = "train_fieldreader.trainer"
    source: ClassVar[str] = FIELDREADER_YML
    epochs: int = 2
    batch_size: int = 16
    learning_rate: float = 5.0e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.05
    augment: float = 1.0
    max_minutes: float | None = 10
    patience: int = 3
    min_delta: float = 0.0
    gradient_clip_val: float = 1.0
    seed: int = 42
    progress_bar: bool = True
    accelerator: str = "auto"
    devices: Any = "auto"
    precision: Any = "auto"


@dataclass(frozen=True)
class LexiconSettings(Settings):
    """``train_fieldreader.lexicon``: the decoding settings tried on the held-out forms."""

    block: ClassVar[str] = "train_fieldreader.lexicon"
    source: ClassVar[str] = FIELDREADER_YML
    grid: dict[str, list[float]] = field(default_factory=lambda: {
        "penalty": [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0], "case_weight": [0.0, 0.5]})
    max_edits: int = 2


@dataclass(frozen=True)
class StyleSettings(Settings):
    """``train_fieldreader.style``: the style layer (case, dots, spaces from the glyphs)."""

    block: ClassVar[str] = "train_fieldreader.style"
    source: ClassVar[str] = FIELDREADER_YML
    enabled: bool = True
    features: list[str] = field(default_factory=lambda: ["all", "writer", "glyphs"])  # feature sets tried
    grid: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 1.0, 2.0, 4.0])  # weights tried per kind


@dataclass(frozen=True)
class CrossfitSettings(Settings):
    """``train_fieldreader.crossfit``: out-of-fold readings of the train forms
    (:mod:`~handwriting_pipeline.fieldreader.crossfit`). The train forms are split into ``folds``
    folds (a writer's forms stay together; ``seed``); per fold, a reader is fine-tuned as the
    main one on the forms outside it and reads the fold. The fold readers are saved under
    ``model_dir`` (``fold_<k>/model``); a fold already complete there is loaded, not retrained.
    ``jobs`` > 1 trains that many folds at once, each in its own process with its share of the
    cores (folds are independent; a fold reads and trains exactly as it would alone)."""

    block: ClassVar[str] = "train_fieldreader.crossfit"
    source: ClassVar[str] = FIELDREADER_YML
    folds: int = 0                      # 0 = off; else K >= 2
    seed: int = 0                       # fold assignment
    model_dir: str = "data/06_models/fieldreader_crossfit"
    beam: int = 8                       # beam width of the fold readers' reading (no lexicon)
    jobs: int = 1                       # folds trained side by side, one process each (1: one after another)


@dataclass(frozen=True)
class FieldReaderTrainSettings(Settings):
    """``train_fieldreader`` (``parameters_train_fieldreader.yml``)."""

    block: ClassVar[str] = "train_fieldreader"
    source: ClassVar[str] = FIELDREADER_YML
    holdout_forms: int = 100
    holdout_share: float = 0.1
    freeze: float = 0.4
    checkpoint_dir: str | None = "data/06_models/fieldreader_checkpoints"
    resume: bool = False
    trainer: ReaderTrainerSettings = field(default_factory=ReaderTrainerSettings)
    lexicon: LexiconSettings = field(default_factory=LexiconSettings)
    style: StyleSettings = field(default_factory=StyleSettings)
    crossfit: CrossfitSettings = field(default_factory=CrossfitSettings)
    # which labels the fit lines train on (fieldreader/labels.py): first (metadata.jsonl only),
    # drop_disagreements (lines whose second annotation differs are left out) or both (their CTC
    # loss is the mean over the two labels); ``second_annotation`` is read only when not "first"
    labels: str = "first"
    second_annotation: str = "../shared/data/hsf_top/second_annotation.csv"
    # rows of each line as the recognizer sees it (the stock model's 48; up to 95 its network takes):
    # letter case shows better in more rows, at (height / 48)^2 the compute
    line_height: int = 48
