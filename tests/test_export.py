import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from parity_bundle import tiny_bundle, tiny_model

import hrm_export.export.bundle as export_pkg
from hrm_export.core.errors import UserError
from hrm_export.core.manifest import Manifest
from hrm_export.core.specs import STATIC_STEP, module_specs
from hrm_export.export.bundle import export_bundle
from hrm_export.export.onnx_module import export_module
from model_src import HRM, tiny_config
from model_src.model import LStep


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_files_names_and_named_dynamic_axes():
    d = tiny_bundle()
    specs = module_specs(tiny_model().cfg)
    for name, spec in specs.items():
        model = onnx.load(str(d / f"{name}.onnx"))
        onnx.checker.check_model(model, full_check=True)
        assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [23]
        assert [i.name for i in model.graph.input] == spec.input_names
        assert [o.name for o in model.graph.output] == spec.output_names
        for vi, t in zip([*model.graph.input, *model.graph.output], [*spec.inputs, *spec.outputs], strict=True):
            assert _dims(vi) == list(t.axes), f"{name}.{t.name}"
        ops = {n.op_type for n in model.graph.node}
        # the fused opset-23 ops; l_step_static writes its masked attention over the cache out (docs/runtime.md)
        assert ({"RMSNormalization"} if name == STATIC_STEP else {"Attention", "RMSNormalization"}) <= ops
        assert "Constant" not in ops  # constants folded into initializers


@pytest.mark.parametrize(("batch", "new", "past"), [(1, 1, 0), (3, 5, 0), (2, 1, 389), (4, 7, 120), (1, 390, 0)])
def test_l_step_matches_torch_with_and_without_cache(batch, new, past):
    """Dynamic batch / new / past minutes, including the empty cache of a session's first step."""
    model = tiny_model()
    cfg = model.cfg
    sess = ort.InferenceSession(str(tiny_bundle() / "l_step.onnx"), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(batch * 1000 + past)
    feeds = (torch.randn(batch, new, cfg.n_minute_features, generator=g), torch.randn(batch, cfg.l_dim, generator=g),
             torch.randn(batch, cfg.l_dim, generator=g),
             torch.randn(cfg.l_layers, 2, batch, cfg.l_heads, past, cfg.l_head_dim, generator=g))
    with torch.no_grad():
        ref = LStep(model.l)(*feeds)
    out = sess.run(None, dict(zip(module_specs(cfg)["l_step"].input_names, [f.numpy() for f in feeds], strict=True)))
    assert out[3].shape == (cfg.l_layers, 2, batch, cfg.l_heads, past + new, cfg.l_head_dim)
    for o, r in zip(out, ref, strict=True):
        np.testing.assert_allclose(o, r.numpy(), atol=1e-5, rtol=1e-4)


def test_h_and_l_module_match_torch_at_extremes():
    model = tiny_model()
    cfg = model.cfg
    for name, mod, shapes in (("h_module", model.h, [(1, 1, 8), (4, 16, 8)]),
                              ("l_module", model.l, [(1, 1, 11), (2, 390, 11)])):
        sess = ort.InferenceSession(str(tiny_bundle() / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        for shape in shapes:
            x = torch.randn(*shape)
            film = (torch.randn(shape[0], cfg.l_dim), torch.randn(shape[0], cfg.l_dim))
            args = (x,) if name == "h_module" else (x, *film)
            with torch.no_grad():
                ref = mod(*args)
            out = sess.run(None, dict(zip(module_specs(cfg)[name].input_names, [a.numpy() for a in args], strict=True)))
            for o, r in zip(out, ref, strict=True):
                np.testing.assert_allclose(o, r.numpy(), atol=1e-5, rtol=1e-4)
            if name == "h_module":
                assert np.abs(out[1]).max() > 1e-3  # γ is not the zero of an untrained FiLM


def test_interrupted_export_leaves_no_manifest(tmp_path, monkeypatch):
    real = export_pkg.export_module

    def fail_on_l_step(module, spec, cfg, path, opset):
        if spec.name == "l_step":
            raise KeyboardInterrupt
        return real(module, spec, cfg, path, opset)

    (tmp_path / "manifest.json").write_text("{}")  # a previous bundle's manifest must not survive either
    monkeypatch.setattr(export_pkg, "export_module", fail_on_l_step)
    with pytest.raises(KeyboardInterrupt):
        root = tiny_bundle().parent
        export_bundle(root / "tiny.safetensors", tmp_path, profiles=[root / "small.toml"])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint.safetensors", "h_module.onnx", "l_module.onnx"]  # complete files, no manifest


def test_bad_requests_are_user_errors(tmp_path):
    ckpt = tiny_bundle().parent / "tiny.safetensors"
    with pytest.raises(UserError, match="opset 17 is not one this exporter writes"):
        export_bundle(ckpt, tmp_path, opset=17)
    with pytest.raises(UserError, match="no profile 'fast'"):
        export_bundle(ckpt, tmp_path, profiles=["fast"])
    assert not (tmp_path / "manifest.json").exists()


def test_random_init_fallback_warns_and_is_reproducible(tmp_path, monkeypatch):
    """No checkpoint and no trained default: a seeded random-init model, said loudly, rebuilt exactly by verify."""
    import hrm_export.core.reference as reference
    from hrm_export.core.reference import reference_from_manifest, weights_sha256

    monkeypatch.setattr(reference, "resolve_checkpoint", lambda _: None)
    with pytest.warns(UserWarning, match="random-init"):
        _, record = reference.load_reference(None)
    assert record["path"] is None and record["random_init_seed"] == 0
    m = Manifest(tmp_path, config_dict=reference.HRMConfig().to_dict(), checkpoint=record)
    assert weights_sha256(reference_from_manifest(m)) == record["weights_sha256"]


def test_full_size_l_step_exports_and_matches(tmp_path):
    """The one full-size export of the default suite: l_step of the default HRM at the latency corners."""
    from hrm_export.core.reference import random_init_model
    from hrm_export.export.onnx_module import export_module

    model = random_init_model()
    cfg = model.cfg
    spec = module_specs(cfg)["l_step"]
    export_module(LStep(model.l), spec, cfg, tmp_path / "l_step.onnx", opset=23)
    sess = ort.InferenceSession(str(tmp_path / "l_step.onnx"), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    for new, past in ((1, 389), (390, 0)):
        feeds = (torch.randn(1, new, cfg.n_minute_features, generator=g), 0.1 * torch.randn(1, cfg.l_dim, generator=g),
                 0.1 * torch.randn(1, cfg.l_dim, generator=g),
                 torch.randn(cfg.l_layers, 2, 1, cfg.l_heads, past, cfg.l_head_dim, generator=g))
        with torch.no_grad():
            ref = LStep(model.l)(*feeds)
        out = sess.run(None, dict(zip(spec.input_names, [f.numpy() for f in feeds], strict=True)))
        for o, r in zip(out, ref, strict=True):
            np.testing.assert_allclose(o, r.numpy(), atol=1e-4, rtol=1e-3)


@pytest.mark.slow
def test_full_size_bundle_verifies(tmp_path):
    """The default model end to end: export with the shipped profiles, verify fp32 on ORT CPU (minutes)."""
    from hrm_export.verify.bundle import verify_bundle

    export_bundle(None, tmp_path)
    report = verify_bundle(tmp_path, n_random=0)
    assert report.passed, report.failures()


def test_film_over_mean_and_latest_day_exports_for_any_look_back(tmp_path):
    """film_pool="mean_last" slices the latest day token inside the H graph: it must stay right for every D
    of the dynamic day axis, including D = 1 (where the latest day is the mean)."""
    torch.manual_seed(0)
    model = HRM(tiny_config(film_pool="mean_last")).eval()
    torch.nn.init.normal_(model.h.film.proj.weight, std=0.05)  # a trained FiLM is far from its zero init
    spec = module_specs(model.cfg)["h_module"]
    path = tmp_path / "h_module.onnx"
    export_module(model.h, spec, model.cfg, path, opset=23)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in [(1, 1, 8), (2, 5, 8), (3, 64, 8)]:
        days = torch.randn(*shape)
        with torch.no_grad():
            ref = model.h(days)
        out = sess.run(None, {spec.input_names[0]: days.numpy()})
        for o, r in zip(out, ref, strict=True):
            np.testing.assert_allclose(o, r.numpy(), atol=1e-5, rtol=1e-4)
