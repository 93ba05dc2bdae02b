"""From a method choice to ready engines: the one set-up that extract, ensemble and digitize share.

Floor 6. May import: floors 0-5 (``engines``, ``ensemble`` and everything below them:
``registry``, ``config``, ``datasets`` ...) — never ``digitize`` or ``pipelines``.

* :func:`chosen_engines` reads an engines parameter (``extract.engines``, ``digitize.engines``):
  ``default`` -> every registered engine whose class says ``default = True`` (for new scans:
  only those that read images), otherwise the names given (explicit).
* :func:`ready_engines` decides, before any form is read, which of them run: one rule for every
  caller. An engine without its trained model is skipped in a default run and stops an explicit
  one ("train it first"); an engine that cannot read images is skipped / stops the same way where
  images are read (digitize); an engine whose :meth:`~Engine.check_ready` fails is skipped when it
  is ``optional`` and stops the run otherwise. It returns :class:`EngineSpec` s: how to build each
  engine (its ``extract.<method>`` settings, credentials section and catalog inputs), picklable.
* :class:`ExtractSettings`: the ``extract`` block (``conf/base/parameters_extract.yml``, defaults =
  the YAML's): which engines, how many workers, the progress bar, and each engine's own
  ``extract.<method>`` block (checked by the engine's ``settings_class`` when it is built).
* :func:`model_calibrations` and :func:`vote_calibration`: the vote's calibration of every
  engine, with **one precedence**: the calibration that comes with a trained model (fitted on
  that model's held-out training forms) wins over ``ensemble.vote.calibration`` in the
  parameters. Those parameters were fitted on the HSF form; on another form a trained model also
  carries the calibration of the untrained engines (:func:`form_engine_calibrations`: RapidOCR,
  Tesseract), fitted on the same held-out forms of its form.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from handwriting_pipeline.config import Settings
from handwriting_pipeline.engines.base import Engine
from handwriting_pipeline.fields.formspec import FormSpec, is_hsf_layout
from handwriting_pipeline.registry import engine_class, engine_methods, method_list

logger = logging.getLogger(__name__)

#: the value of an engines parameter that means "every default engine"
DEFAULT = "default"
READY = "ready"
TRAIN_HINT = "train it first: kedro run --pipeline train"


@dataclass(frozen=True)
class ExtractSettings(Settings):
    """``extract``: which engines read the forms and how (defaults = the YAML's); ``blocks`` holds
    each registered engine's ``extract.<method>`` block as given."""

    block: ClassVar[str] = "extract"
    source: ClassVar[str] = "conf/base/parameters_extract.yml"
    engines: list[str] | str = DEFAULT  # "default" or the engines' names
    workers: int = 2                    # forms read in parallel (per the engine's strategy)
    progress: bool = True
    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)  # method -> its extract.<method> block

    @classmethod
    def from_params(cls, params: Any, block: str | None = None) -> ExtractSettings:
        """The ``extract`` block; a key that is neither a setting nor a registered engine raises a
        ValueError naming it and the YAML file."""
        if isinstance(params, cls):
            return params
        params = dict(params or {})
        own = ("engines", "workers", "progress")
        engines = engine_methods()
        unknown = [k for k in params if k not in own and k not in engines]
        if unknown:
            raise ValueError(f"unknown key '{unknown[0]}' in extract ({cls.source}); known keys: "
                             f"{', '.join(own)} and one block per engine: {', '.join(engines)}")
        blocks = {k: dict(v or {}) for k, v in params.items() if k in engines}
        return super().from_params({**{k: v for k, v in params.items() if k in own}, "blocks": blocks}, block)


def default_engines(images_only: bool = False) -> list[str]:
    """Every registered engine whose class says ``default = True`` (``images_only``: that reads
    images - recorded replays of labelled folders cannot read new scans)."""
    return [m for m in engine_methods() if engine_class(m).default and (engine_class(m).needs_image or not images_only)]


def chosen_engines(value: Any, images_only: bool = False) -> tuple[list[str], bool]:
    """``(engines, explicitly named?)`` of an engines parameter: ``default`` or nothing ->
    :func:`default_engines`; a list, or from the command line a string separated by ``;``,
    ``+``, ``,`` or spaces: ``--params "extract.engines=rapidocr;recorded_textract"``."""
    if value is None or method_list(value) == [DEFAULT]:
        return default_engines(images_only), False
    return list(dict.fromkeys(method_list(value))), True


def engine_inputs(cls: type[Engine], datasets: Mapping[str, Any] | None) -> dict[str, Any]:
    """The engine's :attr:`~Engine.catalog_inputs` (keyword -> dataset) filled from ``datasets``."""
    return {keyword: (datasets or {}).get(dataset) for keyword, dataset in cls.catalog_inputs.items()}


@dataclass
class EngineSpec:
    """How to build one engine, in this process or another one (a Dask worker)."""

    method: str
    cls: type[Engine]
    settings: dict[str, Any]
    credentials: dict[str, Any]
    inputs: dict[str, Any]
    #: what the engine is told of the run's form (:meth:`Engine.form_inputs`)
    for_form: dict[str, Any] = field(default_factory=dict)

    def build(self) -> Engine:
        return self.cls.from_params(self.method, self.settings, self.credentials, **self.inputs, **self.for_form)


def engine_spec(method: str, settings: Mapping[str, Any], credentials: Mapping[str, Any] | None = None,
                datasets: Mapping[str, Any] | None = None) -> EngineSpec:
    """The spec of ``method``: its ``extract.<method>`` block (``settings`` is the whole
    ``extract`` block), its credentials section and its catalog inputs from ``datasets``."""
    cls = engine_class(method)
    section = (credentials or {}).get(cls.credentials) if cls.credentials else None
    return EngineSpec(method, cls, dict(settings.get(method) or {}), dict(section or {}), engine_inputs(cls, datasets))


def build_engine(method: str, settings: Mapping[str, Any], credentials: Mapping[str, Any] | None = None,
                 **inputs: Any) -> Engine:
    """The engine for ``method`` built now (``inputs``: its catalog inputs by keyword)."""
    spec = engine_spec(method, settings, credentials)
    spec.inputs = inputs
    return spec.build()


def _why_not(spec: EngineSpec, explicit: bool, images_only: bool, form: Any = None) -> tuple[str | None, bool]:
    """``(why the engine cannot run, does that stop the run?)``; ``(None, False)`` when it can."""
    cls = spec.cls
    missing = cls.unavailable(**spec.inputs)
    if missing:
        return f"no trained model ({missing}); {TRAIN_HINT}", explicit
    other_form = cls.form_problem(form, **spec.inputs) if form is not None else None
    if other_form:
        return other_form, explicit
    if images_only and not cls.needs_image:
        return "it reads no image (a replay of recorded outputs), so it cannot read new scans", explicit
    if cls.requires_training():
        return None, False  # a trained engine loads its model where it reads
    try:
        spec.build().check_ready()
    except Exception as err:  # noqa: BLE001
        return str(err), not cls.optional
    return None, False


def ready_engines(wanted: list[str], explicit: bool, settings: Mapping[str, Any],
                  credentials: Mapping[str, Any] | None, datasets: Mapping[str, Any] | None, *, where: str,
                  images_only: bool = False, form: Any = None) -> tuple[list[EngineSpec], dict[str, str]]:
    """The engines among ``wanted`` that run, and why each other one is skipped (logged).
    ``form``: the run's form spec; an engine that cannot read it (:meth:`Engine.form_problem`)
    is skipped, or stops the run when named explicitly (None: no check, the HSF form).

    Raises a RuntimeError naming every problem (unknown engine, an explicitly named engine
    without its model, a paid engine without credentials) before any form is read; ``where``
    (``extract``, ``digitize``) opens the message.
    """
    specs, skipped, problems = [], {}, []
    for method in wanted:
        try:
            spec = engine_spec(method, settings, credentials, datasets)
        except KeyError as err:
            problems.append(str(err.args[0]) if err.args else str(err))
            continue
        if form is not None:
            spec.for_form = spec.cls.form_inputs(form)
        why, fatal = _why_not(spec, explicit, images_only, form)
        if why is None:
            specs.append(spec)
        elif fatal:
            problems.append(f"{method}: {why}")
        else:
            skipped[method] = why
            logger.warning("%s: engine %s skipped: %s", where, method, why)
    if problems:
        raise RuntimeError(f"{where}: enabled engines are not ready (nothing was read):\n  " + "\n  ".join(problems))
    if not explicit:  # a ready engine that supersedes others stands in for them in a default run
        replaced = {old: spec.method for spec in specs for old in spec.cls.supersedes}
        for method in [s.method for s in specs if s.method in replaced]:
            skipped[method] = f"superseded by {replaced[method]} (name it in the engines to run it too)"
            logger.info("%s: engine %s left out: %s", where, method, skipped[method])
        specs = [s for s in specs if s.method not in replaced]
    return specs, skipped


def untrained_engines(extract_params: Mapping[str, Any], form: FormSpec | None = None,
                      where: str = "calibration") -> list[EngineSpec]:
    """The ready specs of the default engines that read images and need no trained model (the
    layout engines: RapidOCR, Tesseract when installed), built for ``form`` (None: the HSF form);
    an engine that cannot read the form or is not ready is left out (logged)."""
    wanted = [m for m in default_engines(images_only=True) if not engine_class(m).requires_training()]
    specs, _ = ready_engines(wanted, False, extract_params, {}, {}, where=where, images_only=True, form=form)
    return specs


def form_engine_calibrations(forms: Any, names: list[str], extract_params: Mapping[str, Any], form: FormSpec,
                             cache: Any = None) -> dict[str, Any]:
    """``{engine: calibration}`` of the :func:`untrained_engines` on a form the shipped
    ``ensemble.vote`` calibrations do not cover: each reads the labelled forms ``names`` (e.g. a
    trained reader's held-out forms, never trained on) and is calibrated there
    (:func:`~handwriting_pipeline.training.calibration.fit_calibration` over the spec's fields);
    {} on the HSF form (:func:`_parameters_apply`) or without such forms."""
    from handwriting_pipeline.engines.runner import run_engine
    from handwriting_pipeline.training.calibration import fit_calibration

    if _parameters_apply(form) or not names:
        return {}
    workers = int(extract_params.get("workers") or 1)
    read = {s.method: run_engine(s.build(), list(names), forms.images, cache=cache, workers=workers, keys=form.keys)
            for s in untrained_engines(extract_params, form, where=f"calibration on form '{form.name}'")}
    labels = forms.labels[forms.labels["file_name"].isin(set(names))]
    found = fit_calibration(labels, read, form=form)
    if found:
        logger.info("calibrated %s on %d held-out forms of '%s'", ", ".join(found), len(labels), form.name)
    return found


# --------------------------------------------------------------------------- what models carry
def _from_models(datasets: Mapping[str, Any] | None, hook: str) -> dict[str, Any]:
    """``{engine: what its class's ``hook`` gives}`` for every trained engine (``datasets``:
    catalog inputs by dataset name, e.g. ``fieldreader_model``); empty answers are left out."""
    out = {}
    for method in engine_methods():
        cls = engine_class(method)
        if cls.catalog_inputs:
            found = getattr(cls, hook)(**engine_inputs(cls, datasets))
            if found:
                out[method] = found
    return out


def model_calibrations(datasets: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{engine: calibration}`` that trained engines carry with their models: each model's own,
    over the calibrations of untrained engines fitted with a model on its form's held-out forms
    (:meth:`~Engine.form_calibrations`)."""
    others = {e: c for found in _from_models(datasets, "form_calibrations").values() for e, c in found.items()}
    return {**{m: dict(c) for m, c in others.items()},
            **{m: dict(c) for m, c in _from_models(datasets, "vote_calibration").items()}}


def model_choices(datasets: Mapping[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
    """``{engine: [choice, ...]}``: the components trained engines chose on forms their models
    never trained on (:meth:`~Engine.model_choices`), for the report."""
    return {m: list(c) for m, c in _from_models(datasets, "model_choices").items()}


def model_guarantees(datasets: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"<method>:<engines>": {level: entry}}``: the digitize guarantees trained engines carry
    with their models (:meth:`~Engine.model_guarantees`, fitted with the model)."""
    return {key: entry for found in _from_models(datasets, "model_guarantees").values() for key, entry in found.items()}


def model_recalibrations(datasets: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{engine set: recalibration}`` that trained engines carry with their models
    (:meth:`~Engine.vote_recalibration`, fitted with the model on forms it never trained on)."""
    return {key: recal for found in _from_models(datasets, "vote_recalibration").values() for key, recal in found.items()}


def _parameters_apply(form: FormSpec | None) -> bool:
    """Whether ``ensemble.vote``'s own calibration and recalibration apply to ``form``: they were
    fitted on the HSF form's readings (None: the HSF form); on another form only what trained
    models carry (fitted on that form) does, and an engine without it is uncalibrated."""
    return is_hsf_layout(form)


def _recalibration(params_recalibration: Mapping[str, Any] | None, models: Mapping[str, Any] | None,
                   form: FormSpec | None) -> dict[str, Any]:
    """``vote.recalibration`` (HSF form only) with the trained models' recalibrations on top."""
    own = dict(params_recalibration or {}) if _parameters_apply(form) else {}
    return {**own, **dict(models or {})}


def with_models(vote: Any, calibrations: Mapping[str, Any] | None, recalibrations: Mapping[str, Any] | None,
                form: FormSpec | None = None) -> Any:
    """``vote`` (:class:`~handwriting_pipeline.ensemble.settings.VoteSettings`) with the trained
    models' calibrations and recalibrations on top of its own (a model's own wins; on another form
    than the HSF one, only the models')."""
    return dataclasses.replace(vote, calibration=vote_calibration(vote.calibration, calibrations, form),
                               recalibration=_recalibration(vote.recalibration, recalibrations, form))


def with_recalibrations(ensemble_params: Mapping[str, Any], recalibrations: Mapping[str, Any] | None,
                        form: FormSpec | None = None) -> dict[str, Any]:
    """The ``ensemble`` parameters with the trained models' recalibrations on top of
    ``vote.recalibration`` (unchanged without any; on another form only the models')."""
    if not recalibrations and _parameters_apply(form):
        return dict(ensemble_params)
    vote = dict(ensemble_params.get("vote") or {})
    vote["recalibration"] = _recalibration(vote.get("recalibration"), recalibrations, form)
    return {**ensemble_params, "vote": vote}


def vote_calibration(params_calibration: Mapping[str, Any] | None, models: Mapping[str, Any] | None,
                     form: FormSpec | None = None) -> dict[str, Any]:
    """The vote's calibration: ``ensemble.vote.calibration`` with the trained models' own
    calibrations on top (a model's calibration wins: it was fitted for that very model); on
    another form than the HSF one, the models' only (:func:`_parameters_apply`)."""
    own = dict(params_calibration or {}) if _parameters_apply(form) else {}
    return {**own, **dict(models or {})}
