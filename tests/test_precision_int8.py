"""INT8 variants on a tiny bundle: zero points, per-channel weights, H-produced calibration, manifest records."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxruntime.quantization")

from onnx import numpy_helper  # noqa: E402

from hrm_export.core.errors import UserError  # noqa: E402
from hrm_export.core.manifest import Manifest  # noqa: E402
from hrm_export.precision.calibration import Calibration, build_calibration, module_rows, row_feed  # noqa: E402
from hrm_export.precision.int8_cpu import quantize_cpu  # noqa: E402
from hrm_export.precision.int8_qdq import nonzero_zero_points, quantize_qdq  # noqa: E402
from hrm_export.precision.planner import restore_fp32  # noqa: E402
from hrm_export.precision.scopes import node_modules, weight_matmuls  # noqa: E402
from hrm_export.precision.variants import make_variants  # noqa: E402
from model_src import HRM, tiny_config  # noqa: E402

N_CAL = 6


def tiny_model(seed: int = 0) -> HRM:
    torch.manual_seed(seed)
    model = HRM(tiny_config()).eval()
    with torch.no_grad():  # a FiLM that is not at its zero init, so γ/β carry the day into L
        model.h.film.proj.weight.normal_(0.0, 0.2)
        model.h.film.proj.bias.normal_(0.0, 0.05)
    return model


def calibration_days(cfg, n: int, seed: int = 0):
    """Sample days from the synthetic market when model_src.data is there; else standard-normal features."""
    try:
        from hrm_export.core.market_inputs import sample_days

        return sample_days(cfg, n, seed)
    except UserError:
        g = np.random.default_rng(seed)
        return (g.standard_normal((n, cfg.max_days, cfg.n_day_features)).astype(np.float32),
                g.standard_normal((n, 120, cfg.n_minute_features)).astype(np.float32))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from hrm_export.export.bundle import export_bundle
    from model_src.checkpoint import save_checkpoint

    root = tmp_path_factory.mktemp("precision-int8")
    model = tiny_model()
    save_checkpoint(model, root / "tiny.safetensors")
    manifest = export_bundle(root / "tiny.safetensors", root / "bundle")
    days, minutes = calibration_days(model.cfg, N_CAL)
    paths = {a.module: manifest.artifact_path(a) for a in manifest.artifacts}
    cal = build_calibration(paths, model.cfg, days, minutes)
    cal.save(root / "bundle" / "calibration.npz")
    make_variants(manifest, ["fp32", "int8", "int8-cpu"], calibration=cal)
    return root / "bundle", model, cal


def test_every_int8_graph_has_only_zero_points_of_zero(bundle):
    d, _, _ = bundle
    m = Manifest.load(d)
    int8 = [a for a in m.artifacts if a.precision in ("int8", "int8-cpu")]
    assert len(int8) == 7  # int8 (Q/DQ): h, l, l_step; int8-cpu: those and l_step_static
    for a in int8:
        g = onnx.load(str(m.artifact_path(a)))
        if a.module == "h_module":  # runs once a day: kept fp32 in every precision (core.specs.FP32_MODULES)
            assert not {n.op_type for n in g.graph.node} & {"QuantizeLinear", "DynamicQuantizeLinear"}, a.path
        elif a.precision == "int8":
            assert not nonzero_zero_points(g), a.path
            assert sum(n.op_type == "QuantizeLinear" for n in g.graph.node) > 0, a.path
        else:  # activations are quantized per call (zero point computed at run time); weights must be symmetric
            assert not [b for b in nonzero_zero_points(g) if "run time" not in b], a.path


def test_qdq_weights_are_per_channel_int8_and_heads_and_embedding_stay_fp32(bundle):
    d, model, _ = bundle
    m = Manifest.load(d)
    g = onnx.load(str(m.artifact_path(m.find("l_module", "int8"))))
    inits = {i.name: i for i in g.graph.initializer}
    producers = {o: n for n in g.graph.node for o in n.output}
    mods = node_modules(g.graph, "l_module")
    per_channel = 0
    for n in g.graph.node:
        if n.op_type != "MatMul":
            continue
        w = producers.get(n.input[1])
        if mods[n.name].startswith(("l_module.heads", "l_module.embed", "l_module.blocks.0.mlp.proj")):
            assert w is None or w.op_type != "DequantizeLinear", f"{mods[n.name]} must not be quantized"
            continue
        if w is not None and w.op_type == "DequantizeLinear" and w.input[0] in inits:
            q = numpy_helper.to_array(inits[w.input[0]])
            scale = numpy_helper.to_array(inits[w.input[1]])
            assert q.dtype == np.int8 and scale.shape == (q.shape[1],)  # one scale per output column
            per_channel += 1
    assert per_channel == 2 * 4 - 1  # 2 blocks × (qkv, proj, fc, proj), less the first block's mlp.proj


def test_calibration_feeds_l_with_the_gamma_beta_its_h_module_computes(bundle):
    _, model, cal = bundle
    days = torch.from_numpy(cal.feeds["h_module"]["days"])
    with torch.inference_mode():
        _, gamma, beta = model.h(days)
    feed = cal.feeds["l_module"]
    assert np.abs(gamma.numpy()).max() > 1e-2  # a live FiLM: random γ/β would be caught below
    np.testing.assert_allclose(feed["film_gamma"], gamma.numpy(), atol=1e-5)
    np.testing.assert_allclose(feed["film_beta"], beta.numpy(), atol=1e-5)
    np.testing.assert_array_equal(cal.feeds["l_step"]["film_gamma"], feed["film_gamma"])
    # l_step is calibrated on whole sessions from an empty cache: every minute the full pass sees, minute 0 too.
    row = row_feed(cal, "l_step", 0)
    np.testing.assert_array_equal(cal.feeds["l_step"]["minutes"], feed["minutes"])
    assert row["past_kv"].shape[4] == 0 and int(cal.meta["l_step_cut"]) == 0


def test_calibration_cache_round_trip_and_bad_file(bundle, tmp_path):
    d, _, cal = bundle
    back = Calibration.load(d / "calibration.npz")
    for mod, feeds in cal.feeds.items():
        for k, v in feeds.items():
            np.testing.assert_array_equal(back.feeds[mod][k], v)
    assert len(module_rows(back, "l_step")) == N_CAL
    with pytest.raises(UserError, match="does not exist"):
        Calibration.load(tmp_path / "nope.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(UserError, match="not a calibration cache"):
        Calibration.load(tmp_path / "other.npz")


def test_manifest_records_how_each_variant_was_made(bundle):
    d, _, _ = bundle
    m = Manifest.load(d)
    m.verify_hashes()
    a = m.find("l_module", "int8")
    assert a.made_by["tool"] == "onnxruntime.quantization.quantize_static"
    assert a.made_by["options"]["symmetric"] and a.made_by["options"]["per_channel"]
    # raw features, the planner's answer on the default model (int8_qdq.DEFAULT_KEEP), the decision heads
    assert a.made_by["excluded_modules"] == ["l_module.blocks.0.mlp.proj", "l_module.embed", "l_module.heads"]
    assert a.made_by["calibration"]["size"] == N_CAL
    c = m.find("l_step", "int8-cpu")
    assert c.made_by["tool"] == "onnxruntime.quantization.quantize_dynamic" and c.made_by["options"]["MatMulConstBOnly"]


def test_int8_graphs_stay_close_and_restoring_every_layer_gives_fp32_back(bundle):
    d, _, cal = bundle
    m = Manifest.load(d)
    feeds = module_rows(cal, "l_module")[0]
    run = lambda g: ort.InferenceSession(g.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)  # noqa: E731
    fp32 = onnx.load(str(m.artifact_path(m.find("l_module", "fp32"))))
    qdq = onnx.load(str(m.artifact_path(m.find("l_module", "int8"))))
    ref, q = run(fp32), run(qdq)
    for r, x in zip(ref, q, strict=True):
        cos = float((r * x).sum() / (np.linalg.norm(r) * np.linalg.norm(x)))
        assert np.abs(r - x).max() > 0 and cos > 0.99
    restored = restore_fp32(qdq, fp32, sorted(set(weight_matmuls(fp32).values())))
    assert not [n for n in restored.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    for r, x in zip(ref, run(restored), strict=True):
        np.testing.assert_allclose(x, r, atol=1e-5)


def test_cli_make_int8_cpu(bundle, tmp_path):
    import shutil

    from typer.testing import CliRunner

    from hrm_export.cli import app

    d, _, _ = bundle
    shutil.copytree(d, tmp_path / "b")
    res = CliRunner().invoke(app, ["precision", "make", str(tmp_path / "b"), "--precision", "int8-cpu",
                                   "--keep-fp32", "l_module.blocks.0.*", "--json"])
    assert res.exit_code == 0, res.output
    made = {(a["module"], a["precision"]): a for a in json.loads(res.stdout[res.stdout.index("["):])}
    assert "l_module.blocks.0.mlp.fc" in made[("l_module", "int8-cpu")]["made_by"]["excluded_modules"]
    bad = CliRunner().invoke(app, ["precision", "make", str(tmp_path / "b"), "--precision", "fp8"])
    assert bad.exit_code != 0 and "unknown precision" in str(bad.exception)


def test_keeping_every_layer_writes_the_graph_unquantized(bundle, tmp_path):
    """ORT reads an empty node list as "quantize everything"; keeping every layer must mean the opposite."""
    d, _, cal = bundle
    m = Manifest.load(d)
    src = m.artifact_path(m.find("h_module", "fp32"))
    rows = module_rows(cal, "h_module")
    for name, make in (("qdq", lambda out: quantize_qdq(src, out, rows, keep_fp32=["h_module"])),
                       ("cpu", lambda out: quantize_cpu(src, out, keep_fp32=["h_module"]))):
        out = tmp_path / f"h_module.{name}.onnx"
        facts = make(out)
        ops = {n.op_type for n in onnx.load(str(out)).graph.node}
        assert facts["quantized_linears"] == [] and "h_module.blocks.0.attn.qkv" in facts["excluded_modules"]
        assert not ops & {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger"}, name
