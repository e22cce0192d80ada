"""bf16 graph pass, its emulation, module-name mapping and the bisection — on a tiny exported bundle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("ml_dtypes")

from hrm_export.precision.bf16 import BFLOAT16, FLOAT, bf16_fraction, to_bf16  # noqa: E402
from hrm_export.precision.emulate import emulate_bf16  # noqa: E402
from hrm_export.precision.planner import bisect  # noqa: E402
from hrm_export.precision.scopes import matches, node_modules, weight_matmuls  # noqa: E402
from model_src import HRM, tiny_config  # noqa: E402


def tiny_model(seed: int = 0) -> HRM:
    """Tiny HRM with a non-zero FiLM generator, so γ/β (and their bf16 error) are not trivially 0."""
    torch.manual_seed(seed)
    model = HRM(tiny_config()).eval()
    with torch.no_grad():
        model.h.film.proj.weight.normal_(0.0, 0.2)
        model.h.film.proj.bias.normal_(0.0, 0.05)
    return model


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    from hrm_export.core.specs import module_specs
    from hrm_export.export.onnx_module import export_module
    from model_src.model import LStep

    model = tiny_model()
    specs = module_specs(model.cfg)
    root = tmp_path_factory.mktemp("precision-graphs")
    mods = {"h_module": model.h, "l_module": model.l, "l_step": LStep(model.l)}
    for name, mod in mods.items():
        export_module(mod, specs[name], model.cfg, root / f"{name}.onnx", 23)
    return model, {name: onnx.load(str(root / f"{name}.onnx")) for name in mods}


def _weights_by_module(model, module: str = "l_module") -> dict[str, int]:
    """{module of a Linear: dtype of its weight input} in a (possibly converted) graph."""
    inits = {i.name: i.data_type for i in model.graph.initializer}
    mods = node_modules(model.graph, module)
    out = {}
    for n in model.graph.node:
        if n.op_type == "MatMul" and n.input[1] in inits:
            out[mods[n.name]] = inits[n.input[1]]
    return out


def _l_feeds(cfg, T=40, seed=0):
    g = np.random.default_rng(seed)
    return {"minutes": g.standard_normal((1, T, cfg.n_minute_features)).astype(np.float32),
            "film_gamma": (0.3 * g.standard_normal((1, cfg.l_dim))).astype(np.float32),
            "film_beta": (0.3 * g.standard_normal((1, cfg.l_dim))).astype(np.float32)}


def _run(model, feeds):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, feeds)


def test_module_names_come_from_pytorch_scopes(graphs):
    _, g = graphs
    l_mods = set(weight_matmuls(g["l_module"]).values())
    step_mods = set(weight_matmuls(g["l_step"]).values())
    assert "l_module.blocks.0.attn.qkv" in l_mods and "l_module.blocks.1.mlp.fc" in l_mods
    assert step_mods == l_mods  # l_step (LStep wraps the L-module as .l) maps onto the same module names
    assert "h_module.film" in set(weight_matmuls(g["h_module"]).values())  # F.linear inside FiLMGenerator
    assert matches("l_module.blocks.3.attn.qkv", ["l_module.blocks.*.attn"])
    assert not matches("l_module.blocks.3.mlp.fc", ["l_module.blocks.*.attn"])


def test_bf16_graph_types_islands_and_io(graphs):
    _, g = graphs
    for name, fp32 in g.items():
        bf16, facts = to_bf16(fp32)
        onnx.checker.check_model(bf16, full_check=True)
        assert all(i.type.tensor_type.elem_type == FLOAT for i in (*bf16.graph.input, *bf16.graph.output)), name
        if name == "h_module":  # runs once a day: an fp32 island as a whole (core.specs.FP32_MODULES)
            assert bf16_fraction(bf16) == 0 and facts["bf16_nodes"] == 0 and facts["casts_inserted"] == 0
            continue
        assert bf16_fraction(bf16) > 0.5, name  # the block weights dominate and are stored bf16
        weights = _weights_by_module(bf16, name)
        mods = node_modules(bf16.graph, name)
        dtype = _typer(bf16)
        for n in bf16.graph.node:
            if n.op_type in ("RMSNormalization", "Softmax", "Softplus"):
                assert all(dtype(i) != BFLOAT16 for i in n.input if i), f"{n.name} must stay fp32"
            if mods.get(n.name, "").startswith(("l_module.heads", "h_module.film")) and n.op_type == "MatMul":
                assert dtype(n.input[0]) == FLOAT, f"{n.name}: heads/FiLM are fp32 islands"
        assert facts["bf16_nodes"] > 0 and facts["casts_inserted"] > 0
        assert weights["l_module.blocks.0.attn.qkv"] == BFLOAT16
        assert facts["fp32_linears"] == ["l_module.heads"]


def test_keep_fp32_glob_keeps_whole_module(graphs):
    _, g = graphs
    bf16, facts = to_bf16(g["l_module"], keep_fp32=["l_module.blocks.0.attn"])
    w = _weights_by_module(bf16)
    assert w["l_module.blocks.0.attn.qkv"] == FLOAT and w["l_module.blocks.0.attn.proj"] == FLOAT
    assert w["l_module.blocks.0.mlp.fc"] == BFLOAT16 and w["l_module.blocks.1.attn.qkv"] == BFLOAT16
    assert "l_module.blocks.0.attn" in facts["islands"]


def test_emulation_rounds_like_bf16_and_runs_on_ort(graphs):
    model, g = graphs
    bf16, _ = to_bf16(g["l_module"])
    emu = emulate_bf16(bf16)
    dtype = _typer(emu)
    assert not [i.name for i in emu.graph.initializer if i.data_type == BFLOAT16]
    for n in emu.graph.node:  # bf16 appears only between the rounding Cast pair
        if n.op_type != "Cast":
            assert all(dtype(i) != BFLOAT16 for i in n.input if i), n.name
    feeds = _l_feeds(model.cfg)
    ref = _run(g["l_module"], feeds)
    out = _run(emu, feeds)
    with torch.inference_mode():
        tb = [t.float().numpy() for t in tiny_model().to(torch.bfloat16).l(
            *(torch.from_numpy(feeds[k]).bfloat16() for k in ("minutes", "film_gamma", "film_beta")))]
    for r, e, t in zip(ref, out, tb, strict=True):
        err_emu, err_torch = np.abs(e - r).max(), np.abs(t - r).max()
        assert 0 < err_emu < 0.05 * np.abs(r).max() + 1e-3  # it does round, and only as much as bf16 does
        assert err_emu < 3 * err_torch + 1e-3  # same order as PyTorch bf16 (which also keeps a bf16 residual)


def test_bisect_finds_the_needed_units():
    needed = {"b", "f"}
    calls = []

    def passes(keep):
        calls.append(list(keep))
        return needed <= set(keep)

    units = list("abcdefgh")
    assert bisect(units, passes) == (["b", "f"], True)
    assert len(calls) < len(units) * 2
    assert bisect(units, lambda keep: True) == ([], True)
    assert bisect(units, lambda keep: False) == (units, False)


def _typer(model):
    """name -> elem_type lookup of one graph (shape inference once)."""
    from hrm_export.precision.graph import tensor_types

    types = tensor_types(model)
    return lambda name: types.get(name, FLOAT)
