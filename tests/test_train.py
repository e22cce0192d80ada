"""The trainer on the synthetic market: it learns, it resumes exactly, it writes no pickles."""

import itertools
import json

import pytest
import torch
from safetensors.torch import load_file

from model_src import HRM, tiny_config
from model_src.checkpoint import checkpoint_metadata, load_checkpoint
from model_src.errors import CheckpointError
from model_src.labels import LabelConfig
from model_src.train import evaluate, lr_at, parse_args, train
from model_src.train_data import DataSpec, DayTensors, load_samples, split_by_date
from model_src.train_dist import Dist

# tiny model, short crops: a few seconds per run on 2 cores
FAST = ["--config", "tiny", "--days", "80", "--batch-size", "4", "--crop", "32", "--log-every", "1",
        "--no-progress", "--threads", "2"]


def run(tmp_path, name, *extra):
    log = tmp_path / f"{name}.jsonl"
    final = train(parse_args([*FAST, "--out", str(tmp_path / name), "--jsonl", str(log), *extra]))
    return final, [json.loads(line) for line in log.read_text().splitlines()]


def test_tiny_training_learns_the_synthetic_market(tmp_path):
    args = ["--days", "160", "--steps", "120", "--batch-size", "8", "--crop", "48", "--lr", "3e-3", "--warmup", "10",
            "--eval-every", "120", "--seed", "1"]
    final, events = run(tmp_path, "learn", *args)
    # the same seed's untrained model on the same validation days: where the loss starts
    p = parse_args([*FAST, *args])
    spec = DataSpec(p.data, p.days, p.data_seed, lookback=16, val_fraction=p.val_fraction)
    _, val = split_by_date(load_samples(spec), spec.val_fraction)
    torch.manual_seed(1)
    start = evaluate(HRM(tiny_config()), DayTensors(val, LabelConfig()), Dist(), torch.device("cpu"), "off", 8)
    assert final["val_ce"] < start["val_ce"] - 0.05, (start, final)
    ce = [e["action_ce"] for e in events if e["event"] == "train"]
    assert sum(ce[-30:]) / 30 < sum(ce[:10]) / 10, "training action loss did not decrease"
    assert final["val_accuracy"] > final["val_majority_baseline"] + 0.04, final


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    common = ["--steps", "6", "--eval-every", "4", "--warmup", "2"]
    run(tmp_path, "straight", *common)
    _, first_leg = run(tmp_path, "resumed", *common, "--stop-after", "3")
    assert first_leg[-1]["step"] == 3
    run(tmp_path, "resumed", *common, "--resume")
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    state = json.loads((tmp_path / "resumed" / "train_state.json").read_text())
    assert state["step"] == 6 and [h["step"] for h in state["history"]] == [4, 6]


def test_resume_refuses_a_different_config(tmp_path):
    run(tmp_path, "r", "--steps", "2", "--eval-every", "2")
    with pytest.raises(CheckpointError, match="config differs"):
        run(tmp_path, "r", "--steps", "4", "--resume", "--set", "l_layers=3")
    with pytest.raises(CheckpointError, match="no train_state.json"):
        run(tmp_path, "missing", "--steps", "2", "--resume")


def test_export_is_bf16_safetensors_with_provenance(tmp_path):
    out = tmp_path / "model-bf16.safetensors"
    final, _ = run(tmp_path, "e", "--steps", "3", "--eval-every", "3", "--export", str(out), "--machine", "test box")
    assert final["exported"] == str(out)
    assert all(t.dtype == torch.bfloat16 for t in load_file(str(out)).values())
    meta = checkpoint_metadata(out)
    assert meta["steps"] == 3 and meta["machine"] == "test box" and "val_accuracy" in meta["final_validation"]
    assert meta["command"].startswith("python -m model_src.train")
    load_checkpoint(out)  # loads strictly into the config it names

    from model_src.train_health import describe

    stats = describe(str(out), as_json=True)
    assert stats["validation_days"] == meta["val_days"]
    assert 0 <= stats["val_accuracy"] <= 1 and stats["halting_minute"]["distinct"] >= 1


def test_schedule_warms_up_then_decays():
    args = parse_args(["--steps", "100", "--warmup", "10", "--lr", "1e-3", "--min-lr-ratio", "0.1"])
    lrs = [lr_at(s, args) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert lrs[-1] == pytest.approx(1e-4, rel=0.01)


def test_bad_input_is_one_line_and_exit_1(tmp_path):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "model_src.train", "--data", "bars", "--out", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.strip() == "error: --data bars needs both --daily-bars FILE and --minute-bars FILE"
    assert not (tmp_path / "run").exists()
