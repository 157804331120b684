"""Concept generation through a real (tiny, random-weight) local transformers model."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")

from cbm.concepts.generate import generate_concepts  # noqa: E402
from cbm.concepts.llm import TransformersClient  # noqa: E402

WORDS = "wings tail fur beak whiskers feathers engine wheel - 1. 2. 3. a the of and".split()


def _tiny_model(path: Path) -> Path:
    """A GPT-2 with 2 layers and random weights, and a word-level tokenizer built offline."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<unk>", "<eos>", "\n", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="<eos>")
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=len(vocab),
        n_positions=256,
        n_embd=32,
        n_layer=2,
        n_head=2,
        eos_token_id=1,
        bos_token_id=1,
    )
    GPT2LMHeadModel(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def test_local_model_generates_reproducibly_and_caches(tmp_path: Path) -> None:
    model_dir = _tiny_model(tmp_path / "tiny-gpt2")
    client = TransformersClient(model_dir, max_new_tokens=12, device="cpu")
    assert client.model_id.startswith(f"transformers:{model_dir}@")
    messages = [{"role": "user", "content": "List the features of a cat"}]
    first = client.complete(messages)
    assert isinstance(first, str) and first.startswith("1.")
    assert client.complete(messages) == first  # greedy decoding is reproducible

    classes = ["cat", "bird"]
    cache = tmp_path / "cache"
    result = generate_concepts(classes, client, ["important", "around"], cache, progress=False)
    # every request is accounted for: an answer with concepts, or a reported failure
    assert len(result.answers) + len(result.failures) == 4
    assert result.requests_sent == 4
    again = generate_concepts(classes, client, ["important", "around"], cache, progress=False)
    assert again.requests_sent == 0 and again.cache_hits == 4
    assert [a.concepts for a in again.answers] == [a.concepts for a in result.answers]


def test_a_missing_model_says_so(tmp_path: Path) -> None:
    from cbm.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="cannot load a causal language model"):
        TransformersClient(tmp_path / "nothing-here")
