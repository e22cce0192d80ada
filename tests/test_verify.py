import json

import pytest
import torch
from parity_bundle import tiny_bundle

from hrm_export.backends.ort_backend import OrtBackend
from hrm_export.core.errors import ConfigFileError, ManifestError, ProfileError
from hrm_export.core.parity.metrics import decision_stats, merge, tensor_errors
from hrm_export.verify.bundle import verify_bundle


@pytest.fixture(scope="module")
def report():
    return verify_bundle(tiny_bundle(), n_random=1)


def test_fp32_ort_cpu_passes_every_scope(report):
    assert report.passed, report.failures()
    scopes = {(r.scope, r.output) for r in report.rows}
    assert {("h_module", "film_gamma"), ("h_module", "film_beta"), ("l_step", "present_kv"),
            ("composed", "action_logits"), ("streaming", "q_values")} <= scopes
    labels = {c["label"] for c in report.meta["cases"]}
    assert {"small:min", "small:opt", "small:max", "small:max-past", "small:rand0"} <= labels
    assert {r.case for r in report.rows if r.scope == "streaming"} == {  # each session also through the static cache
        "chunks-of-1", "chunks-mixed", "chunks-of-1 static cache", "chunks-mixed static cache"}
    assert max(r.max_abs for r in report.rows) < 1e-5  # ORT CPU fp32 is ~1e-6 from PyTorch
    d = report.decision
    assert d["action_agreement"] == 1.0 and d["halt_agreement"] == 1.0 and d["minutes"] > 1000
    assert sum(b["minutes"] for b in d["margin_bins"]) == d["minutes"]


def test_report_dict_is_json_and_renders(report):
    d = json.loads(json.dumps(report.to_dict()))
    assert d["passed"] is True and d["backend"] == "ort-cpu" and d["precision"] == "fp32"
    assert d["summary"] and d["rows"] and d["decision"]["budget"]["near_tie_margin"] == 1e-3
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(report)
    text = console.export_text()
    assert "film_gamma" in text and "margin bin" in text and text.rstrip().endswith("PASSED")


def test_failing_and_missing_budgets_fail_with_the_reason(tmp_path):
    from hrm_export.core.budgets import DEFAULT_BUDGETS

    budgets = tmp_path / "b.toml"
    text = DEFAULT_BUDGETS.read_text()
    start = text.index("[fp32.l_step.present_kv]")
    text = text[:start] + text[text.index("[", start + 1):]  # the row is gone: reported, not silently passed
    budgets.write_text(text.replace("[fp32.l_module.action_logits]\nmax_abs = 1e-4",
                                    "[fp32.l_module.action_logits]\nmax_abs = 1e-12"))
    r = verify_bundle(tiny_bundle(), budgets=budgets, n_random=0, streaming=False)
    assert not r.passed
    fails = r.failures()
    assert any(f.startswith("l_module.action_logits") and "max_abs" in f for f in fails)
    assert any("no budget [fp32.l_step.present_kv]" in f for f in fails)
    assert all(f.startswith(("l_module.action_logits", "l_step.present_kv")) for f in fails)
    with pytest.raises(ConfigFileError, match=r"\[fp32.l_step.present_kv_x\] is not an output of l_step"):
        budgets.write_text(text + "[fp32.l_step.present_kv_x]\nmax_abs = 1.0\n")
        verify_bundle(tiny_bundle(), budgets=budgets, n_random=0, streaming=False)


@pytest.mark.parametrize(("point", "message"), [
    ({"minutes": 0}, "minutes=0 outside small range 1..390"),
    ({"minutes": 391}, "minutes=391 exceeds the model's limit 390"),
    ({"days": 17}, "days=17 exceeds the model's limit 16"),
    ({"batch": 5}, "batch=5 outside small range 1..4"),
])
def test_points_outside_the_profile_are_refused_before_running(point, message, monkeypatch):
    def no_run(*a, **k):
        raise AssertionError("ran before refusing")

    monkeypatch.setattr("hrm_export.core.reference.reference_from_manifest", no_run)
    with pytest.raises(ProfileError, match=message.replace(".", r"\.")):
        verify_bundle(tiny_bundle(), points=[point])


def test_batch_outside_names_admitting_profile():
    """batch 8 is outside the bundle's small profile but inside the shipped latency one: the hint says so."""
    with pytest.raises(ProfileError) as e:
        verify_bundle(tiny_bundle(), points=[{"batch": 8}])
    assert "'latency' admits" in e.value.hint


def test_ort_backend_refuses_shapes_outside_its_profile():
    with OrtBackend(tiny_bundle()) as b:
        with pytest.raises(ProfileError, match="batch=5 outside small range 1..4"):
            b.infer("h_module", {"days": torch.zeros(5, 4, 8)})
        out = b.infer("h_module", {"days": torch.zeros(4, 4, 8)})
        assert out["h_tokens"].shape == (4, 4, 32) and b.name == "ort-cpu"


def test_ort_sessions_do_not_spin_wait_unless_asked():
    """Busy-waiting intra-op threads halved ORT's speed on the 2-core CPU; off by default, on when asked."""
    opts = {spin: OrtBackend(tiny_bundle(), spin_wait=spin).session("h_module").get_session_options()
            for spin in (False, True)}
    assert opts[False].get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert opts[True].get_session_config_entry("session.intra_op.allow_spinning") == "1"


def test_checkpoint_changed_since_export_is_refused(tmp_path):
    import shutil

    bundle = shutil.copytree(tiny_bundle(), tmp_path / "bundle")
    ckpt = bundle / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:-1] + b" ")
    with pytest.raises(ManifestError, match="checkpoint.safetensors: sha256 .* differs from the manifest's"):
        verify_bundle(bundle)


def test_metrics_formulas():
    ref = torch.tensor([1.0, -2.0, 0.0, 0.001])
    cand = torch.tensor([1.001, -2.0, 0.002, 0.001])
    e = tensor_errors(cand, ref, rel_floor=1e-2)
    assert e["max_abs"] == pytest.approx(2e-3) and e["max_rel"] == pytest.approx(0.2)  # 0.002 / floor 0.01
    assert e["max_scaled"] == pytest.approx(2e-3 / (5.000001 / 4) ** 0.5)  # 0.002 / rms(ref)
    scaled = tensor_errors(cand * 3, ref * 3, rel_floor=1e-2)  # a model 3x as large: 3x the error, same max_scaled
    assert scaled["max_abs"] == pytest.approx(6e-3) and scaled["max_scaled"] == pytest.approx(e["max_scaled"])
    assert 0.999 < e["cosine"] < 1.0
    assert tensor_errors(torch.tensor([float("nan")]), torch.tensor([1.0]), 1e-2)["nonfinite"] == 1


def test_near_ties_are_excluded_and_flips_counted():
    ref = {"action_logits": torch.tensor([[[1.0, 0.9995, 0.0], [2.0, 0.0, 0.0]]]),
           "q_values": torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]), "quantity": torch.zeros(1, 2, 1)}
    cand = {**ref, "action_logits": torch.tensor([[[0.999, 1.0, 0.0], [0.0, 2.0, 0.0]]])}
    s = merge([decision_stats(cand, ref, near_tie=1e-3)])
    assert s["ties"] == 1 and s["action_judged"] == 1 and s["action_agreement"] == 0.0
    assert sum(b["flips"] for b in s["margin_bins"]) == 2


def test_ort_backend_saves_the_optimized_model_and_names_missing_precisions(tmp_path):
    import shutil

    from hrm_export.core.errors import BackendUnavailableError

    bundle = shutil.copytree(tiny_bundle(), tmp_path / "bundle")
    with OrtBackend(bundle, save_optimized=True, intra_op_threads=1) as b:
        b.infer("h_module", {"days": torch.zeros(1, 3, 8)})
    assert (bundle / "h_module.fp32.ort-opt.onnx").stat().st_size > 0
    with pytest.raises(BackendUnavailableError, match="the bundle has no int8 onnx for h_module, l_module, l_step"):
        OrtBackend(bundle, precision="int8").activate()


def test_reference_micro_batches_equal_the_whole_batch(monkeypatch):
    import hrm_export.verify.run as run
    from hrm_export.backends.torch_backend import TorchBackend
    from hrm_export.core.manifest import Manifest
    from hrm_export.core.reference import reference_from_manifest
    from hrm_export.verify.feeds import Case, MarketInputs

    m = Manifest.load(tiny_bundle())
    with TorchBackend(reference_from_manifest(m)) as ref, OrtBackend(m) as cand:
        runner = run.Runner(ref, cand, m.config, MarketInputs(m.config, seed=0))
        case = Case("t", (("batch", 4), ("days", 5), ("minutes", 9), ("new_minutes", 3), ("past_minutes", 6)))
        monkeypatch.setattr(run, "REF_BATCH", 1)
        result = runner.run_module("l_step", case)
        whole = ref.infer("l_step", result.feeds)
    assert result.ref["present_kv"].shape[2] == 4
    for k, v in whole.items():
        torch.testing.assert_close(result.ref[k], v, atol=1e-6, rtol=1e-5)


def test_bf16_torch_backend_leaves_the_callers_fp32_model_alone():
    from parity_bundle import tiny_model

    from hrm_export.backends.torch_backend import TorchBackend

    model = tiny_model()
    days = torch.randn(1, 3, model.cfg.n_day_features)
    before = model.h(days)[1]
    with TorchBackend(model, "bf16") as b:
        b.infer("h_module", {"days": days})
    assert next(model.parameters()).dtype == torch.float32  # verify keeps using it as the fp32 reference
    torch.testing.assert_close(model.h(days)[1], before, atol=0, rtol=0)


def test_verify_only_the_profiles_asked_for():
    report = verify_bundle(tiny_bundle(), n_random=0, streaming=False, only_profiles=["small"])
    assert {c["label"].split(":")[0] for c in report.meta["cases"]} == {"small"}
    with pytest.raises(Exception, match="not in the bundle"):
        verify_bundle(tiny_bundle(), only_profiles=["throughput"])
