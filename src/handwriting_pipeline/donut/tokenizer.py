"""A small tokenizer for Donut trained from scratch (the offline ``from_config`` path).

The field values are short (a date, a city, a state, a ZIP), written with ~80 distinct
characters, so the default is a character-level vocabulary (BPE with no merges); raise
``vocab_size`` to let BPE learn frequent pieces ("89", "/8", "CA"). The Donut field tokens of
the form (``<s_hsf>``, ``<s_DATE>`` ... ``</s_ZIP>`` for the HSF form, see
:mod:`~handwriting_pipeline.donut.grammar`) are added as special tokens, so
``DonutProcessor.token2json`` parses the model's output.
"""

from __future__ import annotations

import logging
import string
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, trainers
from transformers import PreTrainedTokenizerFast

from handwriting_pipeline.donut.grammar import field_tokens
from handwriting_pipeline.fields.charsets import CHARS
from handwriting_pipeline.fields.formspec import FormSpec, hsf_form

logger = logging.getLogger(__name__)

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
BASE_SPECIALS = [PAD, BOS, EOS, UNK]


def base_alphabet(form: FormSpec | None = None) -> list[str]:
    """Characters always in the vocabulary: printable ASCII (no tabs/newlines) + the characters
    the form's field types allow (None: the HSF form)."""
    chars = set(string.ascii_letters + string.digits + string.punctuation + " ")
    for f in (form or hsf_form()).fields:
        chars.update(CHARS[f.type].allowed)
    return sorted(chars)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 0, min_frequency: int = 2,
                    form: FormSpec | None = None) -> PreTrainedTokenizerFast:
    """Train a BPE tokenizer on field values and wrap it for ``DonutProcessor``.

    Args:
        texts: field values (labels and synthetic text), one string each.
        vocab_size: target size; ``0`` (default) or anything up to the alphabet size gives a
            pure character-level vocabulary.
        min_frequency: BPE merges need at least this many occurrences.
        form: the form whose field tokens and characters it holds (None: the HSF form).

    Returns:
        A ``PreTrainedTokenizerFast`` with pad/bos/eos/unk and the Donut field tokens
        (:func:`handwriting_pipeline.donut.grammar.field_tokens`) as special tokens.
    """
    texts = [t for t in texts if t]
    alphabet = sorted(set(base_alphabet(form)) | {c for t in texts for c in t if c.isprintable()})
    size = max(int(vocab_size or 0), len(alphabet) + len(BASE_SPECIALS))
    backend = Tokenizer(models.BPE(unk_token=UNK))
    backend.decoder = decoders.Fuse()  # tokens are glued back as written (spaces are characters)
    trainer = trainers.BpeTrainer(
        vocab_size=size,
        min_frequency=min_frequency,
        special_tokens=BASE_SPECIALS,
        initial_alphabet=alphabet,
        limit_alphabet=len(alphabet),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=BOS, eos_token=EOS, pad_token=PAD, unk_token=UNK,
        model_max_length=512,
    )
    add_field_tokens(tokenizer, form)
    logger.info("Trained tokenizer on %d texts: %d tokens (%d merges)", len(texts), len(tokenizer),
                max(0, size - len(alphabet) - len(BASE_SPECIALS)))
    return tokenizer


def add_field_tokens(tokenizer, form: FormSpec | None = None) -> int:
    """Add the form's task and ``<s_KEY>``/``</s_KEY>`` tokens (no-op when present). Returns how many."""
    missing = [t for t in field_tokens(form) if t not in tokenizer.get_vocab()]
    if not missing:
        return 0
    return tokenizer.add_special_tokens({"extra_special_tokens": missing}, replace_extra_special_tokens=False)
