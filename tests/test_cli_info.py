import json

from typer.testing import CliRunner

from hrm_export import __version__
from hrm_export.cli import app

runner = CliRunner()


def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output


def test_info_json_matches_plan():
    r = runner.invoke(app, ["info", "--json"])
    assert r.exit_code == 0, r.output
    card = json.loads(r.output)
    assert all(p["within_5pct"] for p in card["parts"]), card["parts"]
    total = next(p for p in card["parts"] if p["part"] == "total")
    assert 26e6 < total["params"] < 28.7e6 and total["bytes"]["bf16"] == 2 * total["params"]
