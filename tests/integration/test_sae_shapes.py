import pytest
import torch

from cbm.sae_pipeline import run_sae_shapes, shapes_sae


@pytest.mark.slow
def test_sae_recovers_and_names_most_shapes_concepts(tmp_path):
    torch.set_num_threads(1)
    report = run_sae_shapes(sae=shapes_sae(device="cpu", n_threads=1), cache_dir=str(tmp_path))
    assert report.recovery_words["recovered_fraction"] > 0.5
    assert report.recovery_words["recovered_and_named_fraction"] > 0.5
    acc = report.accuracy
    assert acc["sae_concepts_word_names"]["nec"] <= 5.0
    assert (
        acc["sae_concepts_word_names"]["accuracy"] > acc["random_directions_same_count"]["accuracy"]
    )
