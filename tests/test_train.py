"""The trainer on the synthetic market: it learns, it resumes exactly, it writes no pickles; the H-ablation twin
and the two conditioning measures of --describe."""

import itertools
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from model_src import HRM, tiny_config
from model_src.checkpoint import checkpoint_metadata, load_checkpoint
from model_src.errors import CheckpointError, DataError
from model_src.labels import LabelConfig
from model_src.train import evaluate, lr_at, main, parse_args, train
from model_src.train_conditioning import conditioning_sensitivity, swap_permutation
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


def test_ablate_film_holds_gamma_beta_at_zero(tmp_path):
    """The H-ablation twin: FiLM stays exactly zero and the H-module untouched, so γ = β = 0 on every day, the
    standard forward of its checkpoint included, and swapping them between days changes nothing."""
    out = tmp_path / "twin.safetensors"
    run(tmp_path, "twin", "--steps", "3", "--eval-every", "3", "--ablate-film", "--export", str(out))
    twin = load_checkpoint(out)
    assert checkpoint_metadata(out)["ablate_film"] is True
    torch.manual_seed(0)  # the trainer's --seed 0 initialisation
    init = HRM(tiny_config()).state_dict()
    for k, v in twin.state_dict().items():
        if k.startswith("h."):
            torch.testing.assert_close(v, init[k].bfloat16().float(), rtol=0, atol=0, msg=k)
    assert (twin.h.film.proj.weight == 0).all() and (twin.h.film.proj.bias == 0).all()
    assert not torch.equal(twin.l.heads.action.weight, init["l.heads.action.weight"].bfloat16().float())
    _, val = split_by_date(load_samples(DataSpec(n_days=80, lookback=16)), 0.15)
    data = DayTensors(val, LabelConfig())
    assert conditioning_sensitivity(twin, data)["share_changed"] == 0.0


def test_conditioning_sensitivity_counts_changed_actions():
    _, val = split_by_date(load_samples(DataSpec(n_days=80, lookback=16)), 0.15)
    data = DayTensors(val, LabelConfig())
    torch.manual_seed(0)
    model = HRM(tiny_config()).eval()
    torch.nn.init.normal_(model.h.film.proj.weight, std=2.0)  # a FiLM that varies strongly by day
    stats = conditioning_sensitivity(model, data)
    assert 0.05 < stats["share_changed"] <= 1 and stats["minutes"] == 390 * len(val) and "derangement" in stats["swap"]
    assert conditioning_sensitivity(model, data) == stats  # the swap is seeded


def test_swap_is_a_seeded_derangement():
    for n in (2, 3, 10, 59):
        perm = swap_permutation(n)
        assert sorted(perm) == list(range(n)) and (perm != np.arange(n)).all()
        assert (swap_permutation(n) == perm).all()
    assert not (swap_permutation(59, seed=1) == swap_permutation(59)).all()


def test_h_ablation_gap_against_the_twin(tmp_path):
    """describe measures the gap against the --ablate-film twin, and the trainer records it at export; a run
    that differs in more than --ablate-film is refused as a twin, naming what differs."""
    common = ["--steps", "4", "--eval-every", "4"]
    twin = tmp_path / "twin.safetensors"
    run(tmp_path, "twin", *common, "--ablate-film", "--export", str(twin))
    full = tmp_path / "full.safetensors"
    final, _ = run(tmp_path, "full", *common, "--export", str(full), "--ablation-twin", str(twin))
    recorded = checkpoint_metadata(full)["h_ablation"]
    assert final["h_ablation"] == recorded
    assert recorded["gap_points"] == round(100 * (recorded["val_accuracy"] - recorded["twin_val_accuracy"]), 2)

    from model_src.train_health import describe

    stats = describe(str(full), as_json=True, twin=str(twin))
    assert stats["h_ablation"]["twin_val_accuracy"] == recorded["twin_val_accuracy"]
    assert stats["h_ablation"]["val_accuracy"] == stats["val_accuracy"]
    assert describe(str(full), as_json=True)["h_ablation"]["measured"].startswith("at export")

    other = tmp_path / "other.safetensors"
    run(tmp_path, "other", "--steps", "4", "--eval-every", "4", "--seed", "1", "--ablate-film", "--export", str(other))
    with pytest.raises(CheckpointError, match=r"not the ablation twin.*seed \(1 vs 0\)"):
        describe(str(full), as_json=True, twin=str(other))
    with pytest.raises(CheckpointError, match="not trained with --ablate-film"):
        describe(str(full), as_json=True, twin=str(full))
    with pytest.raises(SystemExit, match=r"^error: .*missing.safetensors: no such checkpoint file"):
        main(["--describe", str(full), "--ablation-twin", str(tmp_path / "missing.safetensors")])


def test_resume_refuses_a_different_ablation(tmp_path):
    run(tmp_path, "r", "--steps", "2", "--eval-every", "2")
    with pytest.raises(CheckpointError, match="ablate_film=False"):
        run(tmp_path, "r", "--steps", "4", "--resume", "--ablate-film")


def test_min_lookback_trains_on_shorter_histories(tmp_path):
    """--min-lookback: each step sees the latest D days, D drawn from (seed, step); validation sees them all."""
    final, events = run(tmp_path, "mlb", "--steps", "3", "--eval-every", "3", "--min-lookback", "4")
    meta = checkpoint_metadata(tmp_path / "mlb" / "model.safetensors")
    assert meta["min_lookback"] == 4 and final["step"] == 3
    with pytest.raises(DataError, match="--min-lookback 65"):
        run(tmp_path, "bad", "--steps", "1", "--min-lookback", "65")
