"""Bad input fails closed, everywhere: the command line, config files, checkpoints, token and bar files, the
runtime API (its misuse: tests/test_runtime_misuse.py). Each CLI case asserts the exit code, ONE `error:` line
naming the thing and the fix, no traceback, and that no file appeared (nothing half-written under a final name).
docs/cli.md lists the same cases as tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_run import assert_one_line_error, hrm_export
from runtime_bundle import overflowing_model, tiny_bundle, tiny_runtime_model, tokens
from safetensors.torch import save_file

from model_src.checkpoint import save_checkpoint

# -- inputs the cases are made of ------------------------------------------------------------------------------


def nan_weight_checkpoint(path: Path) -> Path:
    """The issue's case: one NaN in h.blocks.0.attn.proj.weight (saved raw, as a diverged trainer would)."""
    model = tiny_runtime_model()
    state = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
    state["h.blocks.0.attn.proj.weight"][3, 7] = float("nan")
    save_file(state, str(path), metadata={"hrm_config": model.cfg.to_json()})
    return path


def int32_checkpoint(path: Path) -> Path:
    """Float weights written as int32: every |w| < 1 would load as 0."""
    model = tiny_runtime_model()
    state = {k: (v * 100).to(torch.int32).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={"hrm_config": model.cfg.to_json()})
    return path


def negative_dim_checkpoint(path: Path) -> Path:
    model = tiny_runtime_model()
    cfg = {**model.cfg.to_dict(), "l_dim": -48}
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path),
              metadata={"hrm_config": json.dumps(cfg)})
    return path


def day_tokens(n_minutes: int = 30, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    days, minutes = tokens(1, 16, n_minutes, seed=seed)
    minutes[..., 10] = 0.0  # no minute filled
    return days[0].numpy(), minutes[0].numpy()


def save_day(tmp: Path, days: np.ndarray, minutes: np.ndarray) -> tuple[Path, Path]:
    np.save(tmp / "days.npy", days)
    np.save(tmp / "minutes.npy", minutes)
    return tmp / "days.npy", tmp / "minutes.npy"


def run_args(bundle: Path, days: Path, minutes: Path, *more) -> list:
    return ["run", bundle, "--days", days, "--minutes", minutes, "--backend", "ort-cpu", *more]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- the CLI cases: (tmp_path) -> (argv, words the message must hold, exit code) --------------------------------

CLI_CASES: dict[str, Callable[[Path], tuple[list, tuple[str, ...], int]]] = {}


def cli_case(name: str):
    def register(fn):
        CLI_CASES[name] = fn
        return fn
    return register


@cli_case("export: one NaN weight")
def _(tmp):
    ckpt = nan_weight_checkpoint(tmp / "nan.safetensors")
    return ["export", "--checkpoint", ckpt, "--out", tmp / "out"], ("h.blocks.0.attn.proj.weight", "non-finite",
                                                                     "fix:"), 1


@cli_case("export: float weights stored as int32")
def _(tmp):
    ckpt = int32_checkpoint(tmp / "int.safetensors")
    return ["export", "--checkpoint", ckpt, "--out", tmp / "out"], ("torch.int32", "fractions", "float32"), 1


@cli_case("export: a config with a negative dimension")
def _(tmp):
    ckpt = negative_dim_checkpoint(tmp / "neg.safetensors")
    return ["export", "--checkpoint", ckpt, "--out", tmp / "out"], ("l_dim = -48", "integer >= 1", "fix:"), 1


@cli_case("info: a config with a negative dimension")
def _(tmp):
    return ["info", "--checkpoint", negative_dim_checkpoint(tmp / "neg.safetensors")], ("l_dim = -48",), 1


@cli_case("export: a profile with a float")
def _(tmp):
    toml = write(tmp / "p.toml", 'name = "p"\n[axes]\nbatch = [1, 1.5, 8]\ndays = [1, 64, 64]\nminutes = [1, 390, 390]'
                 '\nnew_minutes = [1, 1, 390]\npast_minutes = [0, 389, 389]\n')
    return ["export", "--profile", toml, "--out", tmp / "out"], ("axes.batch", "integer", "fix"), 1


@cli_case("export: a misspelt profile axis (batchh)")
def _(tmp):
    toml = write(tmp / "p.toml", 'name = "p"\n[axes]\nbatchh = [1, 1, 8]\nbatch = [1, 1, 8]\ndays = [1, 64, 64]\n'
                 'minutes = [1, 390, 390]\nnew_minutes = [1, 1, 390]\npast_minutes = [0, 389, 389]\n')
    return ["export", "--profile", toml, "--out", tmp / "out"], ("axes.batchh", "unknown key"), 1


@cli_case("export: a profile table given as a string")
def _(tmp):
    toml = write(tmp / "p.toml", 'name = "p"\naxes = "batch = [1, 1, 8]"\n')
    return ["export", "--profile", toml, "--out", tmp / "out"], ("[axes]", "fix"), 1


@cli_case("verify: action_agreement = -5")
def _(tmp):
    toml = write(tmp / "b.toml", "[fp32.decision]\naction_agreement = -5\n")
    return ["verify", tiny_bundle(), "--budgets", toml], ("fp32.decision.action_agreement", "greater than or equal"), 1


@cli_case("verify: max_abs = -1")
def _(tmp):
    toml = write(tmp / "b.toml", "[fp32.l_module.action_logits]\nmax_abs = -1\n")
    return ["verify", tiny_bundle(), "--budgets", toml], ("fp32.l_module.action_logits.max_abs", "greater than 0"), 1


@cli_case("verify: a non-numeric budget")
def _(tmp):
    toml = write(tmp / "b.toml", '[fp32.l_module.action_logits]\nmax_abs = "small"\n')
    return ["verify", tiny_bundle(), "--budgets", toml], ("max_abs", "number", "'small'"), 1


@cli_case("verify: two precisions in one run")
def _(tmp):
    argv = ["verify", tiny_bundle(), "--precision", "bf16-emulated,int8"]
    return argv, ("one precision per run", "--precision int8"), 1


@cli_case("verify: a budget table given as a string")
def _(tmp):
    toml = write(tmp / "b.toml", '[fp32]\nl_module = "tight"\n')
    return ["verify", tiny_bundle(), "--budgets", toml], ("[fp32.l_module] must be a table",), 1


@cli_case('bench: batch = "1" in a latency target')
def _(tmp):
    toml = write(tmp / "t.toml", '[[target]]\nid = "x"\nkind = "latency"\ndevice_class = "cpu-2core"\n'
                 'module = "l_step"\nbatch = "1"\nmax_ms = 5\n')
    return ["bench", tiny_bundle(), "--budgets", toml, "--quick"], ("target #1 (x).batch", "integer", "'1'"), 1


@cli_case("bench: a non-numeric latency target")
def _(tmp):
    toml = write(tmp / "t.toml", '[[target]]\nid = "x"\nkind = "latency"\ndevice_class = "cpu-2core"\n'
                 'module = "l_step"\nmax_ms = "fast"\n')
    return ["bench", tiny_bundle(), "--budgets", toml, "--quick"], ("max_ms", "number", "'fast'"), 1


@cli_case("bench: the target list given as a string")
def _(tmp):
    return ["bench", tiny_bundle(), "--budgets", write(tmp / "t.toml", 'target = "all"\n'), "--quick"], \
        ("[target]", "list"), 1


@cli_case("run: raw prices pushed as tokens")
def _(tmp):
    days, minutes = day_tokens()
    minutes[:, 0] = 412.5 + np.arange(len(minutes))  # a price column where ret_1m belongs
    return run_args(tiny_bundle(), *save_day(tmp, days, minutes)), (
        "value 412.5 at instrument 0, session minute 0, feature 0 (ret_1m)", "valid range [-10, 10]",
        "not raw prices"), 1


@cli_case("run: every feature at 1e30")
def _(tmp):
    days, minutes = day_tokens()
    return run_args(tiny_bundle(), *save_day(tmp, np.full_like(days, 1e30), minutes)), (
        "days.npy", "value 1e+30", "look-back day 0, feature 0 (ret)"), 1


@cli_case("run: a NaN at minute 200")
def _(tmp):
    days, minutes = day_tokens(390)
    minutes[200, 3] = np.nan
    return run_args(tiny_bundle(), *save_day(tmp, days, minutes)), (
        "non-finite value nan at instrument 0, session minute 200, feature 3 (range)", "fill or drop"), 1


@cli_case("run: a token file with 0 minutes")
def _(tmp):
    days, minutes = day_tokens()
    return run_args(tiny_bundle(), *save_day(tmp, days, minutes[:0])), ("0 minutes", "at least one"), 1


@cli_case("run: a token file with 600 minutes")
def _(tmp):
    days, minutes = day_tokens(600)
    return run_args(tiny_bundle(), *save_day(tmp, days, minutes)), (
        "a session of 600 minutes", "profile 'latency'", "admits 390", "max_minutes=600"), 1


@cli_case("run: a CSV named .npy passed as tokens")
def _(tmp):
    days, _ = day_tokens()
    np.save(tmp / "days.npy", days)
    write(tmp / "minutes.npy", "timestamp,open,high,low,close,volume\n2024-01-02 09:30:00-05:00,1,1,1,1,1\n")
    return run_args(tiny_bundle(), tmp / "days.npy", tmp / "minutes.npy"), (
        "a text file (it starts 'timestamp,open,high,low,close,volume')", "bar files (.csv/.parquet)"), 1


@cli_case("run: a CSV beside a token file")
def _(tmp):
    days, _ = day_tokens()
    np.save(tmp / "days.npy", days)
    csv = write(tmp / "minutes.csv", "timestamp,open,high,low,close,volume\n")
    return run_args(tiny_bundle(), tmp / "days.npy", csv), ("minutes.csv is a bar file", "one kind"), 1


@cli_case("run: an object array as tokens")
def _(tmp):
    days, minutes = day_tokens()
    np.save(tmp / "days.npy", days)
    np.save(tmp / "minutes.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return run_args(tiny_bundle(), tmp / "days.npy", tmp / "minutes.npy"), ("Python objects", "float32"), 1


@cli_case("run: instruments differ between days and minutes")
def _(tmp):
    days, minutes = day_tokens()
    return run_args(tiny_bundle(), *save_day(tmp, np.stack([days, days]), minutes)), ("2 instrument(s)",
                                                                                      "same order"), 1


@cli_case("run: --full --step 7")
def _(tmp):
    return run_args(tiny_bundle(), *save_day(tmp, *day_tokens()), "--full", "--step", "7"), ("--step", "--full",
                                                                                              "drop"), 1


@cli_case("run: --date with token files")
def _(tmp):
    return run_args(tiny_bundle(), *save_day(tmp, *day_tokens()), "--date", "2024-01-02"), (
        "--date applies to bar files", "drop --date"), 1


@cli_case("run: --exchange and --tz with token files")
def _(tmp):
    return run_args(tiny_bundle(), *save_day(tmp, *day_tokens()), "--exchange", "XLON", "--tz", "Europe/London"), (
        "--exchange, --tz apply to bar files",), 1


@cli_case("run: --session-minutes shorter than the tokens")
def _(tmp):
    return run_args(tiny_bundle(), *save_day(tmp, *day_tokens()), "--session-minutes", "20"), (
        "--session-minutes 20 is less than the 30 minutes", "at least 30"), 1


@cli_case("run: --precision fp16")
def _(tmp):
    return run_args(tiny_bundle(), *save_day(tmp, *day_tokens()))[:-2] + ["--precision", "fp16"], (
        "unknown precision 'fp16'", "fp32, bf16"), 1


@cli_case("run: an unknown exchange")
def _(tmp):
    from calendar_bars import calendar_market

    daily, minute = calendar_market("XNYS", "2024-10-02", "2024-10-18")
    daily.to_csv(tmp / "d.csv", index=False)
    minute.to_csv(tmp / "m.csv", index=False)
    return run_args(tiny_bundle(), tmp / "d.csv", tmp / "m.csv", "--exchange", "XNAS-ISH"), (
        "unknown exchange 'XNAS-ISH'", "ISO MIC"), 1


def xnys_bars(tmp: Path, cut: int = 0, naive: bool = False) -> tuple[Path, Path]:
    from calendar_bars import calendar_market

    daily, minute = calendar_market("XNYS", "2024-10-02", "2024-11-08")
    if naive:
        minute["timestamp"] = minute["timestamp"].dt.tz_localize(None)
    daily.to_csv(tmp / "d.csv", index=False)
    minute.iloc[:len(minute) - cut].to_csv(tmp / "m.csv", index=False)
    return tmp / "d.csv", tmp / "m.csv"


@cli_case("run: a partial session asked for by date")
def _(tmp):
    return run_args(tiny_bundle(), *xnys_bars(tmp, cut=100), "--date", "2024-11-08"), (
        "XNYS 2024-11-08: partial session", "bars end at 14:19", "--allow-over-limit"), 1


@cli_case("run: naive timestamps without --tz")
def _(tmp):
    return run_args(tiny_bundle(), *xnys_bars(tmp, naive=True)), ("m.csv", "naive", "--tz"), 1


@cli_case("run: a checkpoint whose outputs are NaN at one minute")
def _(tmp):
    from hrm_export.export.bundle import export_bundle

    save_checkpoint(overflowing_model(), tmp / "overflow.safetensors")
    export_bundle(tmp / "overflow.safetensors", tmp / "bundle", profiles=["latency"])
    days, minutes = day_tokens()
    minutes[17, 10] = 1.0  # minute 17 was filled: its embedding overflows
    return run_args(tmp / "bundle", *save_day(tmp, days, minutes), "--json"), (
        "l_step output action_logits", "session minute 17", "no decision was made", "hrm-export verify"), 1


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_bad_input(case, tmp_path):
    argv, words, code = CLI_CASES[case](tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    r = hrm_export(*argv)
    assert_one_line_error(r, *words, code=code)
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, f"files appeared: {sorted(set(after) - set(before))}"
    for line in r.out.splitlines():  # whatever was printed for machines before the refusal is strict JSON
        json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON output"))


def test_cli_json_is_strict_and_the_day_replays(tmp_path):
    r = hrm_export(*run_args(tiny_bundle(), *save_day(tmp_path, *day_tokens())), "--json")
    assert r.code == 0, r.err[-2000:]
    rows = [json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c}")) for line in r.out.splitlines()]
    assert len(rows) == 31 and rows[-1]["summary"]["minutes"] == 30 and rows[-1]["summary"]["session_minutes"] == 30


def test_a_token_file_too_long_is_refused_before_any_push(tmp_path):
    days, minutes = day_tokens(600)
    r = hrm_export(*run_args(tiny_bundle(), *save_day(tmp_path, days, minutes), "--json"))
    assert r.code == 1 and r.out == ""  # not one decision was printed: refused up front, not at minute 390


# -- checkpoints through the Python API ---------------------------------------------------------------------------


@pytest.mark.parametrize("make, words", [
    (nan_weight_checkpoint, "tensor 'h.blocks.0.attn.proj.weight' holds 1 non-finite value(s) (the first, nan, at "
                            "index (3, 7))"),
    (int32_checkpoint, "is stored as torch.int32"),
    (negative_dim_checkpoint, "HRMConfig.l_dim = -48: expected an integer >= 1"),
])
def test_bad_checkpoints_never_load(tmp_path, make, words):
    from model_src.checkpoint import load_checkpoint
    from model_src.errors import CheckpointError

    with pytest.raises(CheckpointError) as e:
        load_checkpoint(make(tmp_path / "bad.safetensors"))
    assert words in str(e.value) and "\n" not in str(e.value) and "fix" in str(e.value)


def test_integer_weights_are_not_saved_either(tmp_path):
    from model_src.errors import CheckpointError

    with pytest.raises(CheckpointError, match="would be truncated"):
        save_checkpoint(tiny_runtime_model(), tmp_path / "m.safetensors", dtype=torch.int32)
    assert list(tmp_path.iterdir()) == []
