"""Donut: tokenizer, ROI, training (loss falls, EarlyStopping mode="min"), save/load,
pretrained-path loading, inference on bad images, the donut_model dataset."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from kedro.io.core import DatasetError, Version
from PIL import Image
from pytorch_lightning.callbacks import Callback

from handwriting_pipeline.datasets import DonutModelDataset, DonutModelRef
from handwriting_pipeline.donut.data import DonutEncoder, FormsDataset, SyntheticFormsDataset, collate, synthetic_available
from handwriting_pipeline.donut.grammar import field_tokens, json2token
from handwriting_pipeline.donut.inference import DonutPredictor
from handwriting_pipeline.donut.model import DonutBundle, Preprocessing, build_pretrained
from handwriting_pipeline.donut.training import fit_stage
from handwriting_pipeline.engines.donut import DonutEngine
from handwriting_pipeline.fields import KEYS, NONE


# ------------------------------------------------------------------ tokenizer and ROI
def test_tokenizer_round_trip_on_real_labels(tiny_bundle, real_forms):
    processor = tiny_bundle.processor
    tok = processor.tokenizer
    for token in field_tokens():
        assert len(tok(token, add_special_tokens=False).input_ids) == 1, token
    from handwriting_pipeline.donut.grammar import token2json

    for row in real_forms.labels.to_dict("records"):
        gold = {k: row[k] for k in KEYS}
        ids = tok(json2token(gold) + tok.eos_token, add_special_tokens=False).input_ids
        assert tok.unk_token_id not in ids
        text = tok.decode(ids, skip_special_tokens=False).replace(tok.eos_token, "")
        assert token2json(text, processor=processor) == gold


def _longest_run(line: np.ndarray) -> int:
    padded = np.concatenate([[0], line.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


def _box_lines(image: Image.Image) -> tuple[list[int], list[int]]:
    """Rows / columns of the form's box lines (long dark runs right of the NAME box)."""
    ink = np.array(image.convert("L")) < 128
    ink[:, :740] = False  # the blacked-out NAME box
    rows = np.array([r for r in range(120, 350) if _longest_run(ink[r]) > 400])
    cols = np.where(ink[rows.min():rows.max() + 1].sum(0) > 0.8 * (rows.max() - rows.min()))[0] if len(rows) else []
    return list(rows), list(cols)


def test_roi_holds_the_field_boxes_on_real_and_synthetic_crops(real_forms, train_params):
    """The configured ROI contains every box line of real crops (and synthetic ones)."""
    prep = Preprocessing(roi=train_params["model"]["roi"])
    images = [real_forms.images[n] for n in real_forms.labels["file_name"]]
    if synthetic_available()[0]:
        from handwriting_pipeline.donut.data import make_generator

        gen = make_generator(7)
        images += [gen.sample(i)[0] for i in range(3)]
    x0, y0, x1, y1 = prep.box((2460, 350))
    for image in images:
        rows, cols = _box_lines(image)
        assert rows and len(cols)
        assert y0 <= min(rows) and max(rows) <= y1
        assert x0 <= min(cols) and max(cols) <= x1
    crop = prep.crop(images[0])
    assert crop.size == (x1 - x0, y1 - y0) and crop.mode == "RGB"
    # other sizes: the ROI scales with the image
    assert prep.box((1230, 175)) == (x0 // 2, y0 // 2, x1 // 2, y1 // 2)


# ------------------------------------------------------------------ training
class _StepLosses(Callback):
    def __init__(self):
        self.losses = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))


def test_tiny_model_loss_falls_on_real_and_synthetic_forms(tiny_bundle, real_forms, train_params):
    encoder = DonutEncoder(tiny_bundle.processor, tiny_bundle.preprocessing)
    data = torch.utils.data.ConcatDataset([FormsDataset(real_forms.subset(real_forms.labels["file_name"][:4].tolist()),
                                                        encoder, train=True)])
    if synthetic_available()[0]:
        data = torch.utils.data.ConcatDataset([data, SyntheticFormsDataset(4, encoder, seed=1000)])
    losses = _StepLosses()
    stage = dict(epochs=40, max_steps=24, batch_size=len(data), learning_rate=3e-3, warmup_ratio=0.05, max_minutes=None,
                 restore_best=True)
    rows, reason = fit_stage(tiny_bundle, data, None, "finetune", stage, train_params["trainer"],
                             train_params["early_stopping"], extra_callbacks=[losses])
    assert "max_steps" in reason
    assert len(losses.losses) == 24
    first, last = np.mean(losses.losses[:3]), np.mean(losses.losses[-3:])
    assert last < 0.7 * first, (first, last)


def test_auxiliary_ctc_loss_trains_the_encoder(tiny_bundle, real_forms, train_params):
    """With train.ctc.weight > 0 the CTC head reads the encoder's columns: its loss is finite on
    real labels (field tokens included), falls while training, and is logged in the history;
    the saved model stays a plain VisionEncoderDecoderModel (no CTC weights in it)."""
    from handwriting_pipeline.donut.model import encoder_grid
    from handwriting_pipeline.donut.training import CTCHead

    rows_cols = encoder_grid(tiny_bundle.model)
    h, w = tiny_bundle.preprocessing.image_size
    assert rows_cols == (h // 8, w // 8)  # patch 4, one patch merging in the tiny preset
    encoder = DonutEncoder(tiny_bundle.processor, tiny_bundle.preprocessing)
    forms = FormsDataset(real_forms.subset(real_forms.labels["file_name"][:4].tolist()), encoder)
    batch = collate([forms[i] for i in range(4)])
    tok = tiny_bundle.processor.tokenizer
    head = CTCHead(tiny_bundle.model, len(tok), blank_id=tok.pad_token_id, eos_id=tok.eos_token_id, expand=3)
    hidden = tiny_bundle.model.encoder(pixel_values=batch["pixel_values"]).last_hidden_state
    assert torch.isfinite(head(hidden, batch["labels"]))

    ctc_losses = []

    class _Ctc(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            ctc_losses.append(float(trainer.callback_metrics["train_ctc"]))

    stage = dict(epochs=40, max_steps=20, batch_size=4, learning_rate=3e-3, warmup_ratio=0.05, ctc_weight=1.0,
                 max_minutes=None, restore_best=True)
    rows, _ = fit_stage(tiny_bundle, forms, forms, "finetune", stage, train_params["trainer"],
                        {"patience": 100}, extra_callbacks=[_Ctc()])
    assert len(ctc_losses) == 20 and np.mean(ctc_losses[-3:]) < 0.8 * np.mean(ctc_losses[:3]), ctc_losses
    assert all(math.isfinite(r["train_ctc"]) for r in rows)
    assert not any("ctc" in name for name in tiny_bundle.model.state_dict())


def test_early_stopping_is_mode_min_on_val_ned(tiny_bundle, real_forms, train_params, monkeypatch, tmp_path):
    """val_ned falls for three epochs then rises: training must stop `patience` epochs after the
    minimum (with mode="max" it would stop after the first epochs), best checkpoint = the minimum."""
    import handwriting_pipeline.donut.training as training

    cba_by_epoch = iter([10.0, 20.0, 30.0, 25.0, 22.0, 21.0, 20.0, 19.0, 18.0, 17.0])
    real_aggregate = training.aggregate

    def scripted(per_form, *keys):
        out = real_aggregate(per_form, *keys)
        out["CBA"] = next(cba_by_epoch)  # val_ned = 1 - CBA/100: 0.9, 0.8, 0.7, 0.75, ...
        return out

    monkeypatch.setattr(training, "aggregate", scripted)
    encoder = DonutEncoder(tiny_bundle.processor, tiny_bundle.preprocessing)
    forms = real_forms.subset(real_forms.labels["file_name"][:4].tolist())
    stage = dict(epochs=10, batch_size=4, learning_rate=1e-3, max_minutes=None, restore_best=True)
    rows, reason = fit_stage(tiny_bundle, FormsDataset(forms, encoder), FormsDataset(forms, encoder), "finetune",
                             stage, train_params["trainer"], {"monitor": "val_ned", "patience": 2},
                             checkpoint_dir=tmp_path / "ckpt")
    assert [round(r["val_ned"], 2) for r in rows] == [0.9, 0.8, 0.7, 0.75, 0.78]
    assert reason.startswith("early stopping") and "val_ned=0.7000" in reason
    last = torch.load(tmp_path / "ckpt" / "finetune" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 4  # the latest epoch (resume / crash recovery), not the best one
    assert list((tmp_path / "ckpt" / "finetune").glob("best-epoch=2*.ckpt"))
    with pytest.raises(ValueError, match="val_ned"):
        fit_stage(tiny_bundle, FormsDataset(forms, encoder), None, "finetune", stage, train_params["trainer"],
                  {"monitor": "val_fla"})


def test_resume_continues_from_last_checkpoint(tiny_bundle, real_forms, train_params, tmp_path):
    encoder = DonutEncoder(tiny_bundle.processor, tiny_bundle.preprocessing)
    forms = FormsDataset(real_forms.subset(real_forms.labels["file_name"][:4].tolist()), encoder)
    stage = dict(epochs=1, batch_size=2, learning_rate=1e-3, max_minutes=None, restore_best=True)
    rows, _ = fit_stage(tiny_bundle, forms, forms, "pretrain", stage, train_params["trainer"], {"patience": 5},
                        checkpoint_dir=tmp_path)
    assert [r["epoch"] for r in rows] == [0]
    rows, _ = fit_stage(tiny_bundle, forms, forms, "pretrain", dict(stage, epochs=2), train_params["trainer"],
                        {"patience": 5}, checkpoint_dir=tmp_path, resume=True)
    assert [(r["epoch"], r["step"]) for r in rows] == [(1, 4)]  # epoch 0 not repeated


# ------------------------------------------------------------------ save / load / inference
def test_save_load_gives_identical_predictions(tiny_bundle, real_forms, tmp_path):
    images = [real_forms.images[n] for n in real_forms.labels["file_name"][:4]]
    before = DonutPredictor(tiny_bundle, batch_size=3).predict(images)
    dataset = DonutModelDataset(path=str(tmp_path / "donut_model"), version=Version(None, None))
    dataset.save(tiny_bundle)
    ref = DonutModelDataset(path=str(tmp_path / "donut_model"), version=Version(None, None)).load()
    assert ref.available and ref.reason == "" and Path(ref.path).is_dir()
    model, processor = ref.load()
    assert len(processor.tokenizer) == len(tiny_bundle.processor.tokenizer)
    assert ref.preprocessing == tiny_bundle.preprocessing
    results = DonutEngine.from_model(ref, batch_size=2).read_batch(images, ["a", "b", "c", "d"])
    assert [r.fields for r in results] == [p.fields for p in before]
    assert [r.raw["sequence"] for r in results] == [p.raw for p in before]
    for r, p in zip(results, before):
        assert r.seconds > 0 and r.error is None
        assert all(math.isclose(r.confidence[k], p.confidence[k], rel_tol=1e-4) or math.isnan(p.confidence[k])
                   for k in KEYS)
    # a non-versioned entry on the versioned folder loads the newest version
    assert DonutModelDataset(path=str(tmp_path / "donut_model")).load().path == ref.path


def test_retraining_into_the_same_folder_changes_the_engine_cache_key(tiny_bundle, tmp_path):
    """A model folder overwritten by a new training run must not reuse the old model's cached
    predictions: the engine's cache key includes the weights' fingerprint."""
    folder = tmp_path / "model"
    tiny_bundle.save(folder)
    first = DonutEngine.from_model(folder).cache_key("same-image")
    assert DonutEngine.from_model(folder).cache_key("same-image") == first  # stable for the same weights
    with torch.no_grad():
        next(tiny_bundle.model.parameters()).add_(0.01)
    tiny_bundle.save(folder)
    assert DonutEngine.from_model(folder).cache_key("same-image") != first
    assert DonutModelRef(None, reason="none").fingerprint is None


def test_pretrained_path_loader_works_on_a_locally_saved_model(tiny_bundle, real_forms, train_params, tmp_path):
    """init=pretrained with a local folder: field tokens present, input size/ROI set, trains."""
    folder = tiny_bundle.save(tmp_path / "local_donut")
    from handwriting_pipeline.donut.recipe import build_model, build_tokenizer

    params = {**train_params, "model": {**train_params["model"], "init": "pretrained",
                                        "pretrained_name_or_path": str(folder)}}
    tokenizer = build_tokenizer(real_forms, params)
    bundle = build_model(tokenizer, params)
    assert isinstance(bundle, DonutBundle)
    for token in field_tokens():
        assert token in bundle.processor.tokenizer.get_vocab()
    assert bundle.preprocessing.roi == train_params["model"]["roi"]
    assert bundle.model.generation_config.decoder_start_token_id == bundle.processor.tokenizer.convert_tokens_to_ids("<s_hsf>")
    same = build_pretrained(str(folder), [48, 384], None)
    assert same.preprocessing.roi is None
    encoder = DonutEncoder(bundle.processor, bundle.preprocessing)
    rows, reason = fit_stage(bundle, FormsDataset(real_forms.subset(real_forms.labels["file_name"][:2].tolist()), encoder),
                             None, "finetune",
                             dict(epochs=1, max_steps=1, batch_size=2, learning_rate=1e-4, max_minutes=None, restore_best=True),
                             train_params["trainer"], {})
    assert "max_steps" in reason


def _corrupt_png() -> Image.Image:
    buffer = io.BytesIO()
    Image.new("L", (2460, 350), 255).save(buffer, format="PNG")
    data = buffer.getvalue()[:200]  # truncated: opens, fails on load
    return Image.open(io.BytesIO(data))


def test_inference_on_bad_images_gives_none_without_crashing(tiny_bundle, real_forms):
    good = real_forms.images[real_forms.labels["file_name"][0]]
    bad = {
        "blank_white": Image.new("1", (2460, 350), 1),
        "blank_black": Image.new("L", (2460, 350), 0),
        "corrupt": _corrupt_png(),
        "not_an_image": b"\x89PNG garbage",
        "none": None,
    }
    odd = {  # readable but unusual: must not crash, fields are strings
        "tiny_rgb": Image.effect_noise((120, 30), 60).convert("RGB"),
        "rgba": good.convert("RGBA"),
        "palette": good.convert("P"),
        "int16": good.convert("I;16"),
        "tall": good.convert("L").rotate(90, expand=True),
    }
    engine = DonutEngine(DonutModelRef(None, reason="unused"), batch_size=4)
    engine._predictor = DonutPredictor(tiny_bundle, batch_size=4)
    images = [good, *bad.values(), *odd.values()]
    results = engine.read_batch(images, ["good", *bad, *odd])
    assert len(results) == len(images)
    for name, result in zip(bad, results[1:1 + len(bad)]):
        assert result.fields == {k: NONE for k in KEYS}, name
        assert result.error, name
    for name, result in zip(odd, results[1 + len(bad):]):
        assert set(result.fields) == set(KEYS) and all(isinstance(v, str) for v in result.fields.values()), name
        assert result.error is None, name
    assert results[0].error is None


def test_donut_model_is_unavailable_when_nothing_was_saved(tmp_path):
    ref = DonutModelDataset(path=str(tmp_path / "donut_model"), version=Version(None, None)).load()
    assert ref.available is False and "no version" in ref.reason
    with pytest.raises(DatasetError, match="not available"):
        ref.load()
    engine = DonutEngine.from_model(ref)
    with pytest.raises(RuntimeError, match="not ready"):
        engine.check_ready()
    results = engine.read_batch([Image.new("L", (2460, 350), 255)], ["x"])
    assert results[0].fields == {k: NONE for k in KEYS} and "not available" in results[0].error
    assert not DonutModelRef.from_path(tmp_path / "elsewhere").available


def test_collate_pads_labels_with_ignore_index(tiny_bundle, real_forms):
    encoder = DonutEncoder(tiny_bundle.processor, tiny_bundle.preprocessing)
    data = FormsDataset(real_forms, encoder)
    batch = collate([data[0], data[1], data[2]])
    h, w = tiny_bundle.preprocessing.image_size
    assert batch["pixel_values"].shape == (3, 3, h, w)
    lengths = [len(data[i]["labels"]) for i in range(3)]
    assert (batch["labels"] == -100).sum().item() == sum(max(lengths) - n for n in lengths)


def test_donut_brings_its_vote_calibration_when_saved_with_the_model(tiny_bundle, tmp_path):
    """A calibration fitted on held-out forms and saved beside the weights joins the default vote."""
    import json

    from handwriting_pipeline.donut.model import CALIBRATION_FILE
    from handwriting_pipeline.pipelines.ensemble.nodes import engine_calibrations

    folder = tmp_path / "m"
    tiny_bundle.save(folder)
    ref = DonutModelRef.from_path(folder)
    assert DonutEngine.vote_calibration(model=ref) is None  # uncalibrated: stays out of the default vote
    assert "donut" not in engine_calibrations(donut_model=ref)
    calibration = {k: {"a": -3.0, "b": 6.0, "p_none": 0.5, "case": 0.9} for k in KEYS}
    (folder / CALIBRATION_FILE).write_text(json.dumps({"fitted_on": "test", "calibration": calibration}))
    assert DonutEngine.vote_calibration(model=ref) == calibration
    assert engine_calibrations(donut_model=ref)["donut"] == calibration
