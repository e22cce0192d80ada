"""Build options, profile → shape arguments, ONNX shape checks, profile selection, TensorRT EP option strings,
and ONNX node → PyTorch module mapping on real exports of a tiny model."""

from __future__ import annotations

import warnings

import pytest
import torch

from hrm_export.core.errors import ProfileError
from hrm_export.core.node_names import describe_parser_error, node_origin, onnx_node_origins
from hrm_export.core.parsing import OptionError
from hrm_export.core.profiles import load_profile
from hrm_export.core.specs import module_specs
from hrm_export.tensorrt.options import BuildOptionError, BuildOptions, make_options
from hrm_export.tensorrt.ort_trt_ep import profile_shape_strings, shape_token, trt_ep_options
from hrm_export.tensorrt.shapes import ShapeRange, check_profile_shapes, profile_shapes, select_profile
from model_src import HRM, tiny_config
from model_src.config import HRMConfig
from model_src.model import LStep

# ---------------------------------------------------------------- options


def test_make_options_parses_lists_and_dedupes():
    o = make_options(precision="bf16, fp32,bf16", profile="latency")
    assert o.precisions == ("bf16", "fp32") and o.profiles == ("latency",)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"precision": "fp16"}, "unknown 'fp16'"),
    ({"precision": ""}, "--precision is empty"),
    ({"module": "x_module"}, "unknown 'x_module'"),
    ({"opt_level": 6}, "levels are 0..5"),
    ({"workspace_mib": 0}, "positive number of MiB"),
    ({"hardware_compatibility": "hopper+"}, "choose from none, ampere+, same-cc"),
    ({"error_on_timing_cache_miss": True}, "needs --timing-cache FILE"),
])
def test_bad_options_are_one_line_user_errors(kwargs, needle):
    with pytest.raises(OptionError) as e:
        make_options(**kwargs)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_error_on_miss_needs_an_existing_cache(tmp_path):
    with pytest.raises(BuildOptionError, match="does not exist"):
        make_options(timing_cache=tmp_path / "t.cache", error_on_timing_cache_miss=True)
    (tmp_path / "t.cache").write_bytes(b"x")
    assert make_options(timing_cache=tmp_path / "t.cache", error_on_timing_cache_miss=True).timing_cache


def test_manifest_record_leaves_out_run_behaviour(tmp_path):
    d = BuildOptions(timing_cache=tmp_path / "c", require_tensorrt=True).to_manifest()
    assert "require_tensorrt" not in d and d["timing_cache"] == str(tmp_path / "c") and d["opt_level"] == 3

# ---------------------------------------------------------------- profile → shapes


def test_profile_shapes_per_input_min_opt_max():
    cfg = HRMConfig()
    specs = module_specs(cfg)
    lat = load_profile("latency")
    h = profile_shapes(lat, specs["h_module"])
    assert h == {"days": ShapeRange((1, 1, 8), (1, 64, 8), (8, 64, 8))}
    step = profile_shapes(lat, specs["l_step"])
    assert step["minutes"] == ShapeRange((1, 1, 11), (1, 1, 11), (8, 390, 11))
    assert step["past_kv"] == ShapeRange((5, 2, 1, 8, 0, 68), (5, 2, 1, 8, 389, 68), (5, 2, 8, 8, 389, 68))
    assert step["film_gamma"].max == (8, 544)
    thr = profile_shapes(load_profile("throughput"), specs["l_module"])
    assert thr["minutes"] == ShapeRange((1, 1, 11), (128, 256, 11), (128, 390, 11))


def test_select_profile_prefers_the_nearest_opt_and_refuses_391_minutes():
    specs = module_specs(HRMConfig())["l_module"]
    ranges = [profile_shapes(load_profile(n), specs) for n in ("latency", "throughput")]
    feeds = lambda b, t: {"minutes": (b, t, 11), "film_gamma": (b, 544), "film_beta": (b, 544)}  # noqa: E731
    assert select_profile(ranges, feeds(1, 390)) == 0  # latency: tuned for batch 1
    assert select_profile(ranges, feeds(100, 256)) == 1  # only throughput admits batch 100
    with pytest.raises(ProfileError) as e:
        select_profile(ranges, feeds(1, 391), ["latency", "throughput"], "l_module/bf16")
    assert "minutes dim 1 = 391 is outside every profile (latency [1, 390], throughput [1, 390])" in str(e.value)

# ---------------------------------------------------------------- shapes against real ONNX inputs


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """l_module and l_step of a tiny HRM exported with torch.onnx.export (TorchScript exporter: fast)."""
    torch.manual_seed(0)
    cfg = tiny_config()
    model = HRM(cfg).eval()
    specs = module_specs(cfg)
    d = tmp_path_factory.mktemp("onnx")
    args = {"l_module": (model.l, (torch.randn(2, 7, 11), torch.randn(2, 48), torch.randn(2, 48))),
            "l_step": (LStep(model.l), (torch.randn(2, 3, 11), torch.randn(2, 48), torch.randn(2, 48),
                                        torch.randn(2, 2, 2, 4, 4, 12)))}
    paths = {}
    for name, (mod, example) in args.items():
        spec = specs[name]
        paths[name] = d / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(mod, example, str(paths[name]), dynamo=False, input_names=spec.input_names,
                              output_names=spec.output_names, opset_version=18,
                              dynamic_axes={t.name: t.dynamic_axes for t in (*spec.inputs, *spec.outputs)})
    return cfg, model, paths


def test_profile_fits_real_onnx_inputs(tiny_onnx):
    cfg, _, paths = tiny_onnx
    profile = load_profile("latency")
    for module in ("l_module", "l_step"):
        shapes = profile_shapes(profile, module_specs(cfg)[module])
        check_profile_shapes(paths[module], module, "latency", shapes, cfg)  # passes


def test_profile_that_breaks_a_fixed_dim_or_order_is_refused(tiny_onnx):
    cfg, _, paths = tiny_onnx
    shapes = profile_shapes(load_profile("latency"), module_specs(cfg)["l_module"])
    bad = dict(shapes, minutes=ShapeRange((1, 1, 12), (1, 1, 12), (8, 390, 12)))
    with pytest.raises(ProfileError, match="minutes dim 2 is fixed at 11 in the ONNX graph but the profile gives"):
        check_profile_shapes(paths["l_module"], "l_module", "latency", bad, cfg)
    bad = dict(shapes, minutes=ShapeRange((1, 5, 11), (1, 4, 11), (8, 390, 11)))
    with pytest.raises(ProfileError, match=r"needs min ≤ opt ≤ max, got 5 ≤ 4 ≤ 390"):
        check_profile_shapes(paths["l_module"], "l_module", "latency", bad, cfg)
    with pytest.raises(ProfileError, match="have no shape in the profile"):
        check_profile_shapes(paths["l_module"], "l_module", "latency", {"minutes": shapes["minutes"]}, cfg)
    unclamped = profile_shapes(load_profile("latency"), module_specs(cfg)["l_module"])
    small = tiny_config(max_minutes=100)
    with pytest.raises(ProfileError, match="minutes max 390 exceeds the model's max_minutes 100"):
        check_profile_shapes(paths["l_module"], "l_module", "latency", unclamped, small)

# ---------------------------------------------------------------- ONNX Runtime TensorRT EP options


def test_trt_ep_profile_strings_are_in_onnxruntime_format():
    specs = module_specs(HRMConfig())
    ranges = [profile_shapes(load_profile(n), specs["h_module"]) for n in ("latency", "throughput")]
    s = profile_shape_strings(ranges)
    assert s == {"trt_profile_min_shapes": "days:1x1x8,days:1x1x8",
                 "trt_profile_opt_shapes": "days:1x64x8,days:128x64x8",
                 "trt_profile_max_shapes": "days:8x64x8,days:128x64x8"}
    step = profile_shape_strings([profile_shapes(load_profile("latency"), specs["l_step"])])
    assert step["trt_profile_min_shapes"] == \
        "minutes:1x1x11,film_gamma:1x544,film_beta:1x544,past_kv:5x2x1x8x0x68"
    # Parsed the way onnxruntime parses it: an input named twice is a second profile.
    parsed: dict[str, list[list[int]]] = {}
    for tok in s["trt_profile_max_shapes"].split(","):
        name, dims = tok.split(":")
        parsed.setdefault(name, []).append([int(x) for x in dims.split("x")])
    assert parsed == {"days": [[8, 64, 8], [128, 64, 8]]}


def test_trt_ep_options_keep_precision_in_the_graph(tmp_path):
    ranges = [profile_shapes(load_profile("latency"), module_specs(HRMConfig())["h_module"])]
    o = trt_ep_options(ranges, "bf16", tmp_path / "cache", timing_cache=tmp_path / "tc" / "t.cache",
                       workspace_mib=1024, opt_level=5, hardware_compatibility="ampere+")
    assert all(isinstance(v, str) for v in o.values())
    assert (o["trt_bf16_enable"], o["trt_int8_enable"], o["trt_fp16_enable"]) == ("False", "False", "False")
    assert o["trt_engine_cache_enable"] == "True" and o["trt_engine_cache_path"] == str(tmp_path / "cache")
    assert o["trt_timing_cache_path"] == str(tmp_path / "tc") and o["trt_max_workspace_size"] == str(1 << 30)
    assert o["trt_builder_optimization_level"] == "5" and o["trt_engine_hw_compatible"] == "True"
    weak = trt_ep_options(ranges, "int8", tmp_path, weak_precision_flags=True)
    assert (weak["trt_int8_enable"], weak["trt_bf16_enable"]) == ("True", "False")
    assert "trt_timing_cache_enable" not in weak
    with pytest.raises(ValueError, match="cannot hold"):
        shape_token("a:b", (1,))

# ---------------------------------------------------------------- node → module mapping


def test_node_name_examples():
    assert node_origin("l_step", "/l/blocks.3/attn/MatMul").module_name == "l_module.blocks.3.attn"
    assert node_origin("l_module", "/blocks.3/attn/MatMul").torch_path == "l.blocks.3.attn"
    o = node_origin("h_module", "node_MatMul_18", "MatMul", {
        "pkg.torch.onnx.name_scopes": "['', 'blocks.0', 'blocks.0.attn', 'blocks.0.attn.qkv', 'linear_1']"})
    assert (o.torch_path, o.module_name) == ("h.blocks.0.attn.qkv", "h_module.blocks.0.attn.qkv")
    assert node_origin("l_module", "node_Split_212") is None  # optimiser-made: resolved through its producer


@pytest.mark.parametrize("dynamo", [False, True])
def test_every_node_of_a_real_export_maps_to_a_real_module(tiny_onnx, tmp_path, dynamo):
    cfg, model, paths = tiny_onnx
    path, module = paths["l_module"], "l_module"
    if dynamo:  # the exporter hrm_export.export uses, on the step (LStep wraps HRM.l as `.l`)
        path, module = tmp_path / "l_step.onnx", "l_step"
        spec = module_specs(cfg)["l_step"]
        example = (torch.randn(2, 3, 11), torch.randn(2, 48), torch.randn(2, 48), torch.randn(2, 2, 2, 4, 4, 12))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(LStep(model.l), example, str(path), dynamo=True, input_names=spec.input_names,
                              output_names=spec.output_names)
    origins = onnx_node_origins(path, module)
    modules = {o.torch_path for o in origins}
    for p in modules:
        model.get_submodule(p)  # raises AttributeError if the path names no module of the HRM
    assert {"l.blocks.0.attn.qkv", "l.blocks.1.attn.proj", "l.blocks.1.mlp.fc", "l.heads"} <= modules
    assert all(o.module_name.startswith("l_module") for o in origins)


def test_parser_error_names_node_and_module(tiny_onnx):
    _, _, paths = tiny_onnx
    origins = onnx_node_origins(paths["l_module"], "l_module")
    i, target = next((i, o) for i, o in enumerate(origins) if o.torch_path.startswith("l.blocks.1.attn"))
    msg = describe_parser_error(paths["l_module"], "l_module", "Unsupported operator", node_index=i)
    assert f"node {target.node!r}" in msg and "from PyTorch module l_module.blocks.1.attn" in msg
    assert msg.endswith("Unsupported operator") and "\n" not in msg
    assert "failed: boom" in describe_parser_error(paths["l_module"], "l_module", "boom")
    by_name = describe_parser_error(paths["l_module"], "l_module", "x", node_name=target.node, op="MatMul")
    assert f"node {target.node!r} (MatMul)" in by_name

# ---------------------------------------------------------------- Q/DQ graphs TensorRT can take


def _qdq_model(path, zp_type, zp_value):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    dtype = {TensorProto.INT8: np.int8, TensorProto.UINT8: np.uint8}[zp_type]
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(zp_value, dtype), "zp")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="/blocks.0/attn/qkv/QuantizeLinear"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"], name="/blocks.0/attn/qkv/DequantizeLinear")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), str(path))
    return path


def test_symmetric_int8_qdq_passes_and_asymmetric_is_refused(tmp_path):
    from onnx import TensorProto

    from hrm_export.core.errors import UserError
    from hrm_export.tensorrt.graph_checks import check_qdq_for_tensorrt, qdq_problems

    check_qdq_for_tensorrt(_qdq_model(tmp_path / "ok.onnx", TensorProto.INT8, 0), "l_module")
    bad = _qdq_model(tmp_path / "zp.onnx", TensorProto.INT8, 3)
    assert [i for i, _ in qdq_problems(bad)] == [0, 1]
    with pytest.raises(UserError) as e:
        check_qdq_for_tensorrt(bad, "l_module")
    assert "from l_module.blocks.0.attn.qkv: non-zero zero point" in str(e.value) and "(+1 more)" in str(e.value)
    with pytest.raises(UserError, match="zero point type UINT8"):
        check_qdq_for_tensorrt(_qdq_model(tmp_path / "u8.onnx", TensorProto.UINT8, 128), "l_module")
