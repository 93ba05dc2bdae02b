"""The registries: one table per kind of thing the project registers, and the one :class:`Step`.

Every kind registers the same way: a table maps a name to what to build (an object, or
``"module:attr"`` imported only when asked, so a missing optional dependency - boto3, the Azure
SDK, pytesseract, torch - breaks only what needs it), :func:`lookup` resolves a name and fails
with the list of choices, and the table's order is the report order.

* :data:`ENGINES` (here): method -> :class:`~handwriting_pipeline.engines.base.Engine` subclass.
  Adding an engine is one module (an ``Engine`` subclass that declares its capabilities), one
  line here and one ``extract.<method>`` parameter block; the extract nodes (``extract_<method>``),
  the ``predictions_{method}`` dataset factory, the ensembles' inputs and the evaluation report
  follow from here.
* :data:`ENSEMBLES` (here): method -> the library function that merges the engines' tables
  (vote, llm, cascade); its node is wired in ``pipelines/ensemble/pipeline.py`` (``ENSEMBLE_STEPS``).
* ``TRAINING`` (``pipelines/train/pipeline.py``): trained engine -> its training :class:`Step` s.
* ``SOURCES`` (``pipelines/curation/sources.py``): curation source -> its reader :class:`Step` s.

Floor 0 (ground). May import: nothing from this project (what the tables name is imported only
when asked; the ``Engine`` type only under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handwriting_pipeline.engines.base import Engine


# --------------------------------------------------------------------------- the pattern
def load(target: Any) -> Any:
    """``"module:attr"`` imported now; anything else is returned as it is."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def lookup(table: Mapping[str, Any], name: str, kind: str) -> Any:
    """What ``table`` registers under ``name`` (a ``"module:attr"`` entry imported now); an
    unknown name raises a KeyError naming the ``kind`` and every choice."""
    if name not in table:
        raise KeyError(f"Unknown {kind} '{name}'. Known {kind}s: {', '.join(table)}")
    return load(table[name])


@dataclass(frozen=True)
class Step:
    """One node of a registered graph (a curation source's readers, a trained engine's training,
    an ensemble): ``func(**inputs) -> outputs``, named ``name``.

    ``inputs`` maps keyword -> catalog name (``params:<block>`` for parameters); ``outputs`` is
    one catalog name or a list. ``skipped`` is what the step gives instead when its owner is not
    selected (a trained engine that ``train.models`` leaves out: a zero-argument function giving
    :class:`~handwriting_pipeline.training.not_trained.NotTrained` for the model, an empty
    history); None: the step runs either way. ``func`` and ``skipped`` may be ``"module:attr"``.
    """

    func: Callable[..., Any] | str
    inputs: Mapping[str, str]
    outputs: str | list[str]
    name: str
    skipped: Callable[[], Any] | str | None = None

    def run(self, **inputs: Any) -> Any:
        return load(self.func)(**inputs)

    def skip(self) -> Any:
        return load(self.skipped)()


# --------------------------------------------------------------------------- the tables
#: Extraction engines (pipeline ``extract``), in report order.
ENGINES: dict[str, str | type[Engine]] = {
    "rapidocr": "handwriting_pipeline.engines.rapidocr_engine:RapidOCREngine",
    "tesseract": "handwriting_pipeline.engines.tesseract_engine:TesseractEngine",
    "textract": "handwriting_pipeline.engines.textract:TextractEngine",
    "azure_form_recognizer": "handwriting_pipeline.engines.azure:AzureFormRecognizerEngine",
    "fieldreader": "handwriting_pipeline.engines.fieldreader:FieldReaderEngine",
    "fieldreader_ensemble": "handwriting_pipeline.engines.fieldreader:FieldReaderEnsembleEngine",
    "donut": "handwriting_pipeline.engines.donut:DonutEngine",
    "recorded_textract": "handwriting_pipeline.engines.recorded:RecordedEngine",
    "recorded_azure_form_recognizer": "handwriting_pipeline.engines.recorded:RecordedEngine",
}

#: Ensembles (pipeline ``ensemble``), in report order: method -> the library function that makes
#: its predictions from the engines' tables (``ensemble.methods`` says which run).
ENSEMBLES: dict[str, str | Callable[..., Any]] = {
    "vote": "handwriting_pipeline.ensemble.vote:vote_predictions",
    "llm": "handwriting_pipeline.ensemble.llm:llm_predictions",
    "cascade": "handwriting_pipeline.ensemble.cascade:cascade_predictions",
}


def engine_class(method: str) -> type[Engine]:
    """The engine class registered under ``method`` (imported now)."""
    return lookup(ENGINES, method, "engine")


def ensemble_function(method: str) -> Callable[..., Any]:
    """The library function of the ensemble registered under ``method`` (imported now)."""
    return lookup(ENSEMBLES, method, "ensemble")


def engine_methods() -> tuple[str, ...]:
    """Every registered engine, in report order."""
    return tuple(ENGINES)


def ensemble_methods() -> tuple[str, ...]:
    """Every registered ensemble, in report order."""
    return tuple(ENSEMBLES)


def all_methods() -> tuple[str, ...]:
    """Every method the evaluation reports: the engines, then the ensembles."""
    return engine_methods() + ensemble_methods()


def predictions_dataset(method: str) -> str:
    """Catalog name of a method's predictions table (dataset factory ``predictions_{method}``)."""
    return f"predictions_{method}"


def method_list(value: Any) -> list[str]:
    """A list-of-methods parameter that may come from the command line as one string.

    Kedro splits ``--params`` at commas, so ``"rapidocr;donut"``, ``"vote+llm"``, commas or
    spaces all separate names. None or "" -> [].
    """
    if not value:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,+;]+", value) if v]
    return [str(v) for v in value]


def select_methods(value: Any, known: Sequence[str], what: str, everything: Iterable[str] | None = None,
                   noun: str = "methods") -> list[str]:
    """The methods a parameter names, checked against ``known`` (order kept, repeats dropped).

    None, "" or "all" -> ``everything`` (default: ``known``). Unknown names raise a ValueError
    that names the parameter (``what``) and the choices.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "all"}):
        return list(known if everything is None else everything)
    wanted = method_list(value)
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ValueError(f"{what} names unknown {noun} {unknown}; choose from {list(known)}")
    return list(dict.fromkeys(wanted))


def select_one(value: Any, known: Sequence[str], what: str) -> str:
    """A parameter that names exactly one of ``known`` (``curation.source``), parsed like
    :func:`method_list`; anything else raises a ValueError naming the parameter and the choices."""
    names = method_list(value)
    if len(names) != 1 or names[0] not in known:
        raise ValueError(f"{what} is '{value}'; choose one of {', '.join(known)}")
    return names[0]
