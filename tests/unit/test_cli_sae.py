import numpy as np
from typer.testing import CliRunner

from cbm.cli import app
from cbm.concepts.bank import ConceptBank


def test_sae_train_name_inspect(tmp_path):
    rng = np.random.default_rng(0)
    D = rng.standard_normal((8, 64))
    Z = (rng.random((600, 8)) < 0.3) * rng.uniform(1, 2, (600, 8))
    np.save(tmp_path / "emb.npy", (Z @ D).astype(np.float32))
    runner = CliRunner()
    out = tmp_path / "sae"
    args = ["sae", "train", str(tmp_path / "emb.npy"), "--out", str(out), "--n-latents", "16"]
    res = runner.invoke(app, [*args, "--k", "3", "--epochs", "3", "--batch-size", "100"])
    assert res.exit_code == 0, res.output
    assert "r2" in res.output and (out / "sae.safetensors").is_file()
    res = runner.invoke(app, ["sae", "inspect", str(out)])
    assert res.exit_code == 0 and "no names yet" in res.output
    res = runner.invoke(app, ["sae", "name", str(out), "--vocabulary", "bank:shapes"])
    assert res.exit_code == 0, res.output
    bank = ConceptBank.load(out / "names.json")
    assert len(bank) == 16 and bank.provenance["vocabulary"] == "shapes"
    res = runner.invoke(app, ["sae", "inspect", str(out), "--top", "3"])
    assert res.exit_code == 0 and "latent names" in res.output


def test_sae_train_reports_bad_input(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((5,), np.float32))
    res = CliRunner().invoke(app, ["sae", "train", str(tmp_path / "bad.npy")])
    assert res.exit_code == 1 and "2-D" in res.output
