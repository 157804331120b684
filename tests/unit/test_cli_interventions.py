from typer.testing import CliRunner

from cbm.cli import app
from cbm.cli_interventions import world_from_config
from cbm.data import ShapesWorld, Shortcut

runner = CliRunner()


def test_world_is_rebuilt_exactly_from_a_model_card():
    world = ShapesWorld(seed=3, noise=4.0, shortcut=Shortcut("flag", "light", 0.9))
    again = world_from_config(world.config())
    assert again.fingerprint(50, "train") == world.fingerprint(50, "train")
    noisy = world_from_config(world.config(), noise=30.0)
    assert noisy.noise == 30.0 and noisy.fingerprint(50, "test") != world.fingerprint(50, "test")


def test_intervene_rejects_bad_options_before_loading_anything(tmp_path):
    result = runner.invoke(app, ["intervene", str(tmp_path), "--strategy", "oracle"])
    assert result.exit_code == 1 and "unknown strategy 'oracle'" in result.output
    result = runner.invoke(app, ["intervene", str(tmp_path), "--values", "guess"])
    assert result.exit_code == 1 and "'truth' or 'percentiles'" in result.output
    result = runner.invoke(app, ["intervene", str(tmp_path), "--group-outcomes", "one-hot"])
    assert result.exit_code == 1 and "exclusive, independent" in result.output


def test_intervene_reports_a_missing_model(tmp_path):
    result = runner.invoke(app, ["intervene", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "error" in result.output
