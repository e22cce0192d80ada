"""The conformance fixtures for the C++ runtime, written by the Python side with the public runtime API.

    FIXTURES/bundle/       a tiny exported bundle (fp32 + int8-cpu, the "small" profile of parity_bundle.py)
                           whose halting is built in, see below
    FIXTURES/nonfinite/    the same bundle with a NaN Q-head bias in the L graphs (re-hashed)
    FIXTURES/days.npy, minutes.npy                  (4, 8, 8) and (4, 390, 11) tokens
    FIXTURES/expected/<case>/h/*.npy                HRMRuntime.h: h_tokens, film_gamma, film_beta
    FIXTURES/expected/<case>/l_step/<k>_*.npy       HRMRuntime.l_step chained from an empty cache
    FIXTURES/expected/<case>/{run_day,stream,stream_7}/*.npy   heads from run_day and session pushes, and
                            the decisions model_src.decisions computes from them (the one rule)
    FIXTURES/floats_hex.txt, floats_repr.txt        values and their json.dumps(round(v, 6))
    FIXTURES/cases.json                             what hrm_conformance runs

The halting construction. The model is the tiny config with random weights and FiLM, then edited so that
q_halt > q_continue exactly at the minutes where minute feature HALT_FEATURE is positive:
  - the L embedding's channel 0 reads only that feature (weight 1, no bias, no position embedding);
  - every L block writes nothing to channel 0 (row 0 of the attention and MLP output projections is zero),
    and FiLM leaves it alone (γ and β rows 0 are zero), so channel 0 reaches the final norm unchanged;
  - the Q-head reads channel 0 into q_halt with weight 3 and gives q_continue all-zero weights.
After the RMSNorm (positive scale, positive weight) q_halt has the feature's sign and q_continue is 0.0, so
the halting minutes are set by the inputs: instrument 0 halts at minute 0, instrument 1 mid-session (157),
instrument 2 at the last minute (389, the only positive one), and instrument 3 never wins and halts at the
close. Every other weight stays random, so actions, confidences and quantities vary minute by minute.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

SESSION = 390
HALT_FEATURE = 0
HALT_MINUTES = {0: [0, 3, 200], 1: [157, 158, 300], 2: [389], 3: []}  # positive minutes per instrument
EXPECTED_HALTS = [0, 157, 389, 389]
L_STEP_CALLS = [5, 1]  # chained l_step calls: 5 minutes from an empty cache, then 1 more
STREAM_CHUNK = 7


def halting_model():
    from model_src import HRM, tiny_config

    torch.manual_seed(0)
    model = HRM(tiny_config()).eval()
    lm, cl = model.l, model.cfg.l_dim
    with torch.no_grad():
        model.h.film.proj.weight.normal_(0.0, 0.2)
        model.h.film.proj.bias.normal_(0.0, 0.05)
        for row in (0, cl):  # γ_0 and β_0
            model.h.film.proj.weight[row].zero_()
            model.h.film.proj.bias[row] = 0.0
        lm.embed.weight[0].zero_()
        lm.embed.weight[0, HALT_FEATURE] = 1.0
        lm.embed.bias[0] = 0.0
        lm.pos.weight[:, 0] = 0.0
        for block in lm.blocks:
            for proj in (block.attn.proj, block.mlp.proj):
                proj.weight[0].zero_()
                proj.bias[0] = 0.0
        lm.heads.q.weight.zero_()
        lm.heads.q.weight[0, 0] = 3.0
        lm.heads.q.bias.zero_()
    return model


def tokens(seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Random tokens inside each feature's valid range (the runtimes refuse others), halting feature set."""
    from runtime_bundle import in_range

    g = np.random.default_rng(seed)
    days = in_range(g.standard_normal((4, 8, 8)).astype(np.float32), "days")
    minutes = in_range(g.standard_normal((4, SESSION, 11)).astype(np.float32), "minutes")
    minutes[:, :, HALT_FEATURE] = -1.0
    for b, ts in HALT_MINUTES.items():
        minutes[b, ts, HALT_FEATURE] = 1.0
    return days, minutes


def write_fixtures(root: Path) -> Path:
    from parity_bundle import SMALL_PROFILE  # batch up to 4 (larger calls are chunked), one whole session

    from hrm_export.export.bundle import export_bundle
    from hrm_export.precision.variants import make_variants
    from model_src.checkpoint import save_checkpoint

    root.mkdir(parents=True, exist_ok=True)
    (root / "small.toml").write_text(SMALL_PROFILE)
    save_checkpoint(halting_model(), root / "halting.safetensors")
    bundle = root / "bundle"
    make_variants(export_bundle(root / "halting.safetensors", bundle, profiles=[root / "small.toml"]), ["int8-cpu"])
    _without_static_step(bundle)
    _nonfinite_copy(bundle, root / "nonfinite")
    days, minutes = tokens()
    np.save(root / "days.npy", days)
    np.save(root / "minutes.npy", minutes)
    cases = [{"name": p, "bundle": "bundle", "precision": p, "days": "days.npy", "minutes": "minutes.npy",
              "l_step_calls": L_STEP_CALLS, "stream_chunk": STREAM_CHUNK} for p in ("fp32", "int8-cpu")]
    for case in cases:
        _expected(bundle, case["precision"], days, minutes, root / "expected" / case["name"])
    _floats(root)
    (root / "cases.json").write_text(json.dumps({"cases": cases, "floats_hex": "floats_hex.txt"}, indent=1))
    return root


def _without_static_step(bundle: Path) -> None:
    """Drop l_step_static, as a bundle made before it: the C++ runtime streams through the growing l_step, and
    the Python runtime does too on such a bundle, so both run the same graph and can be held to bit-equality
    (the two cache designs agree within the parity budgets, not to the last bit)."""
    from bundle_tools import edit_manifest

    def drop(d: dict) -> None:
        for art in [a for a in d["artifacts"] if a["module"] == "l_step_static"]:
            (bundle / art["path"]).unlink()
            d["artifacts"].remove(art)

    edit_manifest(bundle, drop)


def _nonfinite_copy(bundle: Path, dst: Path) -> None:
    """The bundle with its Q-head bias NaN in both L graphs, re-hashed: a model whose outputs are not finite."""
    import onnx
    from onnx import numpy_helper

    from model_src.atomic import file_sha256

    shutil.copytree(bundle, dst)
    manifest = json.loads((dst / "manifest.json").read_text())
    for art in manifest["artifacts"]:
        if art["module"] in ("l_module", "l_step") and art["precision"] == "fp32":
            path = dst / art["path"]
            model = onnx.load(str(path))
            init = next(i for i in model.graph.initializer if i.name.endswith("heads.q.bias"))  # l. in l_step
            init.CopyFrom(numpy_helper.from_array(np.full(2, np.nan, dtype=np.float32), init.name))
            onnx.save(model, str(path))
            art["sha256"] = file_sha256(path)
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _expected(bundle: Path, precision: str, days: np.ndarray, minutes: np.ndarray, out: Path) -> None:
    """What the Python runtime computes on ONNX Runtime CPU, and the decisions the one rule makes of it."""
    from hrm_export.runtime import HRMRuntime
    from hrm_export.runtime.replay import ReplayDay, replay

    for sub in ("h", "l_step"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    with HRMRuntime.open(bundle, backend="ort-cpu", precision=precision) as rt:
        h_tokens, gamma, beta = rt.h(days)
        for name, t in (("h_tokens", h_tokens), ("film_gamma", gamma), ("film_beta", beta)):
            np.save(out / "h" / f"{name}.npy", t.numpy())
        kv, t0 = rt.empty_kv(days.shape[0]), 0
        for k, n in enumerate(L_STEP_CALLS):
            heads, kv = rt.l_step(torch.from_numpy(minutes[:, t0:t0 + n]), h_tokens, gamma, beta, kv)
            for name, t in zip(("action_logits", "quantity", "q_values", "present_kv"), (*heads, kv), strict=True):
                np.save(out / "l_step" / f"{k}_{name}.npy", t.numpy())
            t0 += n
        _timeline(rt.run_day(days, minutes), out / "run_day")
        day = ReplayDay(days, minutes, "fixture", session_minutes=minutes.shape[1])
        _timeline(replay(rt, day, stream=True, step=1), out / "stream")
        _timeline(replay(rt, day, stream=True, step=STREAM_CHUNK), out / f"stream_{STREAM_CHUNK}")


def _timeline(tl, out: Path) -> None:
    """The heads of a Python Timeline and the decisions of model_src.decisions on them."""
    from model_src import decisions

    out.mkdir(parents=True, exist_ok=True)
    q_values = np.stack([tl.q_halt, tl.q_continue], axis=-1).astype(np.float32)  # (B, T, 2)
    quantity = np.asarray(tl.quantity, dtype=np.float32)[..., None]  # (B, T, 1)
    action, confidence = decisions.actions(tl.action_logits, tl.first_minute)
    halt = decisions.halting_minutes(q_values, SESSION, tl.first_minute)
    for name, a in (("action_logits", tl.action_logits), ("q_values", q_values), ("quantity", quantity[..., 0]),
                    ("action", action), ("confidence", confidence), ("halt_minute", halt),
                    ("halted", decisions.halted(halt, tl.first_minute, tl.minutes).astype(np.int64))):
        np.save(out / f"{name}.npy", a)


def _floats(root: Path) -> None:
    """Values to print as `hrm-export run --json` does, and what Python prints for each."""
    g = np.random.default_rng(3)
    logits = g.standard_normal((2000, 3)) * g.choice([0.01, 1.0, 30.0], size=(2000, 1))
    p = np.exp(logits - logits.max(-1, keepdims=True))
    values = [*(p / p.sum(-1, keepdims=True)).max(-1), *g.standard_normal(2000).astype(np.float32).astype(float),
              *(g.standard_normal(500) * 1e-5), 0.0078125, -0.0078125, 2.5e-7, 1.5e-6, 0.9999995, -1e-9, 1e16,
              123456789.0, 0.0001, 0.00015, 1.0, 0.0, -0.0]
    (root / "floats_hex.txt").write_text("".join(f"{float(v).hex()}\n" for v in values))
    (root / "floats_repr.txt").write_text("".join(f"{json.dumps(round(float(v), 6))}\n" for v in values))
