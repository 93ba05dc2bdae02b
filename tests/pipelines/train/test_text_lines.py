"""Donut with the pretrained text-line encoder (train.model.encoder: text_lines): the encoder
saves and loads through VisionEncoderDecoderModel, training lowers the loss on shared crops,
the encoder is frozen first and then trains at a lower learning rate, joint decoding."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from pytorch_lightning.callbacks import Callback

from handwriting_pipeline.donut.data import DonutEncoder, FormsDataset, collate
from handwriting_pipeline.donut.inference import DonutPredictor
from handwriting_pipeline.donut.model import DonutBundle
from handwriting_pipeline.donut.training import fit_stage
from handwriting_pipeline.fields import KEYS


@pytest.fixture()
def lines_params(train_params):
    params = copy.deepcopy(train_params)
    params["model"].update(encoder="text_lines", preset="lines_tiny")
    return params


@pytest.fixture()
def lines_bundle(real_forms, lines_params):
    from handwriting_pipeline.donut.recipe import build_model, build_tokenizer

    torch.manual_seed(0)
    return build_model(build_tokenizer(real_forms, lines_params), lines_params)


def _batch(bundle, forms, n=4, train=False):
    data = FormsDataset(forms.subset(forms.labels["file_name"][:n].tolist()),
                        DonutEncoder(bundle.processor, bundle.preprocessing), train=train)
    return data, collate([data[i] for i in range(len(data))])


def test_truncated_graph_gives_the_ctc_heads_input():
    """OnnxRecognizer.truncate: the cut graph's output through the stock head = the full graph's output."""
    from handwriting_pipeline.fieldreader.model import build_network

    full = build_network()
    weight, bias = (full.params[full._key(n)].detach().clone() for n in full.head)
    cut = build_network()
    cut.truncate(cut.feature_name())
    assert len(cut.params) < len(full.params) and cut.output_name == full.feature_name()
    x = torch.rand(2, 3, 48, 96) * 2 - 1
    with torch.no_grad():
        feats = cut(x)
        assert feats.shape == (2, 12, weight.shape[0])
        torch.testing.assert_close(torch.softmax(feats @ weight + bias, -1), full(x), atol=1e-5, rtol=1e-4)


def test_text_lines_encoder_saves_and_loads_with_identical_outputs(lines_bundle, real_forms, tmp_path):
    from transformers import AutoConfig, AutoModel, VisionEncoderDecoderModel

    from handwriting_pipeline.donut.text_lines import MODEL_TYPE, TextLinesEncoder, is_text_lines
    from handwriting_pipeline.fieldreader.model import build_network

    model = lines_bundle.model
    assert is_text_lines(model) and lines_bundle.preprocessing.encoder == "text_lines"
    assert isinstance(AutoModel.from_config(AutoConfig.for_model(MODEL_TYPE)), TextLinesEncoder)
    stock = build_network()  # the encoder starts from the pretrained recognizer, untouched by weight init
    assert all(torch.equal(p, stock.params[k]) for k, p in model.encoder.backbone.params.items())
    _, batch = _batch(lines_bundle, real_forms)
    assert batch["pixel_values"].shape == (4, 3, 48, sum(lines_bundle.preprocessing.line_widths))
    model.eval()
    with torch.no_grad():
        hidden = model.encoder(pixel_values=batch["pixel_values"]).last_hidden_state
        loss = model(pixel_values=batch["pixel_values"], labels=batch["labels"]).loss
    assert hidden.shape[1] == sum(w // 8 for w in lines_bundle.preprocessing.line_widths)
    images = [real_forms.images[n] for n in real_forms.labels["file_name"][:4]]
    before = DonutPredictor(lines_bundle, batch_size=4, device="cpu").predict(images)

    lines_bundle.save(tmp_path / "m")
    reloaded = VisionEncoderDecoderModel.from_pretrained(tmp_path / "m").eval()
    assert isinstance(reloaded.encoder, TextLinesEncoder)
    with torch.no_grad():  # same weights; convolutions on reloaded tensors may round differently (~1e-5)
        torch.testing.assert_close(reloaded.encoder(pixel_values=batch["pixel_values"]).last_hidden_state, hidden,
                                   atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(reloaded(pixel_values=batch["pixel_values"], labels=batch["labels"]).loss, loss,
                                   atol=1e-5, rtol=1e-5)
    state, saved = model.state_dict(), reloaded.state_dict()
    assert set(state) == set(saved) and all(torch.equal(state[k], saved[k]) for k in state)
    bundle = DonutBundle.load(tmp_path / "m")
    assert bundle.preprocessing.encoder == "text_lines"
    after = DonutPredictor(bundle, batch_size=4, device="cpu").predict(images)
    assert [p.raw for p in after] == [p.raw for p in before]


class _Losses(Callback):
    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))


def test_training_steps_lower_the_loss_on_shared_crops(lines_bundle, real_forms, lines_params):
    data, _ = _batch(lines_bundle, real_forms, n=4, train=True)
    losses = _Losses()
    stage = dict(epochs=40, max_steps=20, batch_size=4, learning_rate=3e-3, warmup_ratio=0.05,
                 encoder_freeze_steps=10, encoder_lr_scale=0.1, max_minutes=None, restore_best=True)
    _, reason = fit_stage(lines_bundle, data, None, "finetune", stage, lines_params["trainer"],
                          lines_params["early_stopping"], extra_callbacks=[losses])
    assert "max_steps" in reason and len(losses.losses) == 20
    assert np.mean(losses.losses[-3:]) < 0.7 * np.mean(losses.losses[:3]), losses.losses


def test_encoder_is_frozen_first_then_trains_at_a_lower_learning_rate(lines_bundle, real_forms, lines_params):
    data, _ = _batch(lines_bundle, real_forms, n=4)
    encoder = lines_bundle.model.encoder
    start = {k: p.detach().clone() for k, p in encoder.backbone.params.items() if p.requires_grad}
    decoder_start = lines_bundle.model.decoder.lm_head.weight.detach().clone()
    seen = []

    class _Groups(Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            seen.append([g["lr"] for g in trainer.optimizers[0].param_groups])

    stage = dict(epochs=10, max_steps=3, batch_size=4, learning_rate=1e-3, warmup_ratio=0.0, encoder_freeze_steps=3,
                 encoder_lr_scale=0.1, max_minutes=None, restore_best=True)
    fit_stage(lines_bundle, data, None, "finetune", stage, lines_params["trainer"], lines_params["early_stopping"],
              extra_callbacks=[_Groups()])
    assert all(torch.equal(p, start[k]) for k, p in encoder.backbone.params.items() if k in start)
    assert not torch.equal(lines_bundle.model.decoder.lm_head.weight, decoder_start)
    assert all(p.requires_grad for p in encoder.head.parameters())  # unfrozen again after the stage
    lrs = seen[-1]
    assert min(lrs) == pytest.approx(0.1 * max(lrs))  # encoder groups at a tenth of the decoder's

    stage.update(encoder_freeze_steps=1, max_steps=3)
    fit_stage(lines_bundle, data, None, "finetune", stage, lines_params["trainer"], lines_params["early_stopping"])
    assert any(not torch.equal(p, start[k]) for k, p in encoder.backbone.params.items() if k in start)


def test_joint_decoding_rescoring_with_the_field_reader(lines_bundle, real_forms):
    from handwriting_pipeline.donut.joint import JointPredictor, ctc_score
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.forms.lines import LINES, cut_lines, to_array

    reader = FieldReader.stock()
    names = real_forms.labels["file_name"][:3].tolist()
    images = [real_forms.images[n] for n in names]
    lines = cut_lines(images[0], reader.config.lines)
    log_probs = dict(zip(LINES, reader.log_probs([to_array(lines[k], reader.config.lines) for k in LINES])))
    gold = real_forms.fields(names[0])
    wrong = {**gold, "CITY": "Zzqxw"}
    assert math.isfinite(ctc_score(gold, log_probs)) and ctc_score(gold, log_probs) > ctc_score(wrong, log_probs)
    lines_bundle.preprocessing.max_length = 24  # an untrained decoder never stops: keep the test short
    answers = JointPredictor(lines_bundle, reader, num_beams=2, weights=(0.0, 1.0), batch_size=2).predict(
        images + [None])
    assert sorted(answers) == [0.0, 1.0]
    for fields in answers.values():
        assert len(fields) == 4 and all(set(f) == set(KEYS) for f in fields)
        assert all(v == "None" for v in fields[3].values())  # an unreadable image gives "None"


def test_donut_engine_joint_option_changes_the_cache_key_and_reads(lines_bundle, real_forms, tmp_path):
    from handwriting_pipeline.engines.donut import DonutEngine

    lines_bundle.preprocessing.max_length = 24
    lines_bundle.save(tmp_path / "m")
    plain = DonutEngine.from_model(tmp_path / "m", batch_size=2, device="cpu")
    joint = DonutEngine.from_model(tmp_path / "m", batch_size=2, device="cpu", joint_weight=1.0, joint_beams=2)
    assert plain.cache_key("x") != joint.cache_key("x")
    images = [real_forms.images[n] for n in real_forms.labels["file_name"][:2]]
    results = joint.read_batch(images, ["a", "b"])
    assert len(results) == 2 and all(r.error is None and set(r.fields) == set(KEYS) for r in results)


def test_time_based_schedule_ends_warmup_and_decay_with_the_wall_clock():
    from handwriting_pipeline.donut.training import lr_factor

    # step-based: warmup 10 of 1000 steps, then cosine to the floor
    assert lr_factor(4, 10, 1000, 0.05) == pytest.approx(0.5)
    assert lr_factor(10, 10, 1000, 0.05) == pytest.approx(1.0)
    assert lr_factor(1000, 10, 1000, 0.05) == pytest.approx(0.05)
    # a wall-clock cap reached long before the estimated steps: warmup and decay follow the clock
    assert lr_factor(4, 100, 10000, 0.05, clock=0.025, warmup_ratio=0.05) == pytest.approx(0.5)
    assert lr_factor(4, 100, 10000, 0.05, clock=0.05, warmup_ratio=0.05) == pytest.approx(1.0, abs=1e-3)
    assert lr_factor(50, 100, 10000, 0.05, clock=1.0, warmup_ratio=0.05) == pytest.approx(0.05)


def test_onnx_runtime_inference_matches_the_torch_backbone(lines_bundle, real_forms):
    """At inference the backbone runs in ONNX Runtime over the same graph and weights."""
    _, batch = _batch(lines_bundle, real_forms)
    encoder = lines_bundle.model.encoder.eval()
    with torch.no_grad():
        fast = encoder(pixel_values=batch["pixel_values"]).last_hidden_state
        assert encoder._session is not None
        encoder.config.onnx_inference = False
        slow = encoder(pixel_values=batch["pixel_values"]).last_hidden_state
        encoder.config.onnx_inference = True
    torch.testing.assert_close(fast, slow, atol=1e-3, rtol=1e-3)
    encoder.train()  # the weights may change: the ONNX Runtime copy is dropped
    assert encoder._session is None


def test_cached_backbone_features_train_the_decoder_with_the_backbone_frozen(lines_bundle, real_forms, lines_params):
    from handwriting_pipeline.donut.feature_cache import CachedFeatures, maybe_cache

    data, batch = _batch(lines_bundle, real_forms, n=4, train=True)
    assert maybe_cache(data, lines_bundle, 0) is data  # 0 = off: the backbone trains on pixels
    cached = maybe_cache(data, lines_bundle, 2, seed=1)
    assert isinstance(cached, CachedFeatures) and len(cached) == 4
    encoder = lines_bundle.model.encoder
    frames = sum(w // 8 for w in lines_bundle.preprocessing.line_widths)
    versions = cached.features[0]
    assert len(versions) == 3 and versions[0].shape == (frames, encoder.config.hidden_size)
    assert not torch.equal(versions[0], versions[1])  # augmented copies differ from the plain lines
    assert not any(p.requires_grad for p in encoder.backbone_parameters())

    plain = collate([{**cached.items[i], "pixel_values": cached.features[i][0].float()} for i in range(4)])
    model = lines_bundle.model.eval()
    with torch.no_grad():  # cached features (float16) give the model the same loss as the images
        from_images = model(pixel_values=batch["pixel_values"], labels=batch["labels"]).loss
        from_cache = model(pixel_values=plain["pixel_values"], labels=plain["labels"]).loss
    torch.testing.assert_close(from_cache, from_images, atol=2e-2, rtol=1e-2)

    backbone = {k: p.detach().clone() for k, p in encoder.named_parameters() if k.startswith(("backbone", "head"))}
    norm, decoder = encoder.norm.weight.detach().clone(), model.decoder.lm_head.weight.detach().clone()
    losses = _Losses()
    stage = dict(epochs=40, max_steps=20, batch_size=4, learning_rate=3e-3, warmup_ratio=0.05, max_minutes=None,
                 restore_best=True)
    fit_stage(lines_bundle, cached, None, "finetune", stage, lines_params["trainer"], lines_params["early_stopping"],
              extra_callbacks=[losses])
    assert np.mean(losses.losses[-3:]) < 0.7 * np.mean(losses.losses[:3]), losses.losses
    assert all(torch.equal(p, backbone[k]) for k, p in encoder.named_parameters() if k in backbone)
    assert not torch.equal(encoder.norm.weight, norm) and not torch.equal(model.decoder.lm_head.weight, decoder)
