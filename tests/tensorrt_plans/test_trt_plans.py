"""TensorRT plans, built and run for real: `pytest -m tensorrt` on a machine with TensorRT and a CUDA GPU.

Everywhere else these skip with the reason. They build the tiny model's bundle once (fp32, bf16, int8 plans with
the shipped latency and throughput profiles) and check shapes at every profile point, refusal outside the
profiles, parity against PyTorch within budgets/parity.toml, the manifest record, CUDA graphs and timing-cache
reuse.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from hrm_export.tensorrt.builder import install_command, tensorrt_version

pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.skipif(tensorrt_version() is None, reason=f"TensorRT not installed ({install_command()})"),
    pytest.mark.skipif(not torch.cuda.is_available(), reason="TensorRT plans need a CUDA GPU; none is visible"),
]

PRECISIONS = ("fp32", "bf16", "int8")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from hrm_export.pipeline.build import run_build
    from hrm_export.tensorrt.options import BuildOptions
    from model_src import HRM, tiny_config
    from model_src.checkpoint import save_checkpoint

    d = tmp_path_factory.mktemp("trt")
    torch.manual_seed(0)
    save_checkpoint(HRM(tiny_config()).eval(), d / "tiny.safetensors")
    opts = BuildOptions(precisions=PRECISIONS, timing_cache=d / "timing.cache", require_tensorrt=True)
    report = run_build(d / "bundle", d / "tiny.safetensors", opts, log=lambda _m: None, verify=False, bench=False)
    assert {s.name: s.status for s in report.steps}["tensorrt"] == "done", report.steps
    return d


def feeds_at(manifest, module: str, point: dict[str, int]) -> dict[str, torch.Tensor]:
    from hrm_export.core.specs import module_specs

    spec = module_specs(manifest.config)[module]
    axes = dict(point)
    return {t.name: torch.randn(*(axes[a] if isinstance(a, str) else a for a in t.axes), device="cuda") * 0.1
            for t in spec.inputs}


def session_point(p, which: str, max_minutes: int) -> dict[str, int]:
    pt = p.point(which)
    pt["past_minutes"] = min(pt["past_minutes"], max_minutes - pt["new_minutes"])
    return pt


@pytest.mark.parametrize("precision", PRECISIONS)
def test_plans_run_at_every_profile_point(bundle, precision):
    from hrm_export.backends.trt_backend import TrtBackend
    from hrm_export.core.manifest import Manifest
    from hrm_export.core.profiles import Profile

    m = Manifest.load(bundle / "bundle")
    cfg = m.config
    with TrtBackend(m, precision) as be:
        for name in ("latency", "throughput"):
            p = Profile.from_dict(m.profiles[name])
            for which in ("min", "opt", "max"):
                pt = session_point(p, which, cfg.max_minutes)
                for module in ("h_module", "l_module", "l_step"):
                    out = be.infer(module, feeds_at(m, module, pt))
                    b = pt["batch"]
                    if module == "l_step":
                        assert out["present_kv"].shape[4] == pt["past_minutes"] + pt["new_minutes"]
                        assert out["action_logits"].shape == (b, pt["new_minutes"], 3)
                    elif module == "l_module":
                        assert out["action_logits"].shape == (b, pt["minutes"], 3)
                    assert all(torch.isfinite(v).all() for v in out.values()), (name, which, module)


def test_391_minutes_is_refused_before_running(bundle):
    from hrm_export.backends.trt_backend import TrtBackend
    from hrm_export.core.errors import ProfileError
    from hrm_export.core.manifest import Manifest

    m = Manifest.load(bundle / "bundle")
    with TrtBackend(m, "fp32") as be, pytest.raises(ProfileError, match="minutes"):
        be.infer("l_module", feeds_at(m, "l_module", {"batch": 1, "minutes": 391}))


@pytest.mark.parametrize("precision", PRECISIONS)
def test_parity_against_pytorch_within_budgets(bundle, precision):
    from hrm_export.verify.bundle import verify_bundle

    report = verify_bundle(bundle / "bundle", backend="tensorrt", precision=precision, n_random=1)
    assert report.passed, report.failures()[:5]


def test_manifest_records_what_the_runtime_checks(bundle):
    import tensorrt as trt

    from hrm_export.core.manifest import Manifest
    from hrm_export.tensorrt.plan_header import read_plan_header
    from hrm_export.tensorrt.plan_info import describe_plan

    m = Manifest.load(bundle / "bundle")
    m.verify_hashes()
    plans = [a for a in m.artifacts if a.format == "trt-plan"]
    assert {(a.module, a.precision) for a in plans} == {(mod, p) for mod in ("h_module", "l_module", "l_step")
                                                        for p in PRECISIONS}
    cc = "{}.{}".format(*torch.cuda.get_device_capability())
    for a in plans:
        assert a.extra["tensorrt_version"] == trt.__version__ and a.extra["compute_capability"] == cc
        assert a.profiles == ["latency", "throughput"] and a.made_by["from"]["path"].endswith(".onnx")
        assert read_plan_header(m.artifact_path(a)).release == tuple(int(x) for x in trt.__version__.split(".")[:3])
    info = describe_plan(m.artifact_path(plans[0]))
    assert info["manifest"]["sha256_matches"] and len(info["profiles"]) == 2 and info["num_layers"] > 0


def test_foreign_version_plan_is_refused_with_the_rebuild_command(bundle, tmp_path):
    from hrm_export.backends.trt_backend import TrtBackend
    from hrm_export.core.manifest import Manifest
    from hrm_export.tensorrt.plan_header import PlanError
    from model_src.atomic import file_sha256

    copy = tmp_path / "bundle"
    shutil.copytree(bundle / "bundle", copy)
    m = Manifest.load(copy)
    a = m.find("h_module", "fp32", "trt-plan")
    path = m.artifact_path(a)
    data = bytearray(path.read_bytes())
    data[24] += 1  # the plan now claims the next major TensorRT release
    path.write_bytes(bytes(data))
    a.sha256 = file_sha256(path)
    a.extra["tensorrt_version"] = ".".join(str(b) for b in data[24:28])
    m.save()
    with pytest.raises(PlanError) as e:
        TrtBackend(copy, "fp32").activate()
    # TensorRT's deserialization is the verdict, in one line; the header's reading stands beside it as advice
    msg = str(e.value)
    assert "could not deserialize the plan: " in msg and "built with TensorRT" in msg and "\n" not in msg
    assert "hrm-export build --out" in e.value.hint


def test_backend_matches_polygraphy_trt_runner(bundle):
    """Polygraphy's TrtRunner (one context, host sync per call) as an independent runner of the same plan."""
    from polygraphy.backend.trt import EngineFromBytes, TrtRunner

    from hrm_export.backends.trt_backend import TrtBackend
    from hrm_export.core.manifest import Manifest

    m = Manifest.load(bundle / "bundle")
    path = m.artifact_path(m.find("l_step", "fp32", "trt-plan"))
    feeds = feeds_at(m, "l_step", {"batch": 1, "new_minutes": 1, "past_minutes": 100})
    with TrtBackend(m, "fp32") as ours, TrtRunner(EngineFromBytes(path.read_bytes()), optimization_profile=0) as pg:
        want = pg.infer(feeds, copy_outputs_to_host=False)
        got = ours.infer("l_step", feeds)
        for k in got:
            torch.testing.assert_close(got[k], want[k].float(), rtol=0, atol=1e-6)


def test_cuda_graph_cache_is_bounded(bundle):
    from hrm_export.backends.trt_backend import TrtBackend
    from hrm_export.core.manifest import Manifest

    m = Manifest.load(bundle / "bundle")
    with TrtBackend(m, "fp32", cuda_graphs=True, max_graphs=4) as be:
        for past in range(10, 20):
            be.infer("l_step", feeds_at(m, "l_step", {"batch": 1, "new_minutes": 1, "past_minutes": past}))
        assert be.captures == 10 and len(be._modules["l_step"].graphs) == 4


def test_cuda_graphs_give_the_same_outputs(bundle):
    from hrm_export.backends.trt_backend import TrtBackend
    from hrm_export.core.manifest import Manifest

    m = Manifest.load(bundle / "bundle")
    feeds = feeds_at(m, "l_step", {"batch": 1, "new_minutes": 1, "past_minutes": 100})
    with TrtBackend(m, "fp32") as plain, TrtBackend(m, "fp32", cuda_graphs=True) as graphed:
        want = plain.infer("l_step", feeds)
        for _ in range(3):  # capture, then replays
            got = graphed.infer("l_step", feeds)
            for k in want:
                torch.testing.assert_close(got[k], want[k], rtol=0, atol=1e-6)


def test_timing_cache_is_reused(bundle, tmp_path):
    from hrm_export.core.manifest import Manifest
    from hrm_export.tensorrt.options import BuildOptions
    from hrm_export.tensorrt.plans import build_job, plan_jobs

    cache = bundle / "timing.cache"
    size = cache.stat().st_size
    assert size > 0
    copy = tmp_path / "bundle"
    shutil.copytree(bundle / "bundle", copy)
    m = Manifest.load(copy)
    opts = BuildOptions(precisions=("fp32",), modules=("h_module",), timing_cache=cache,
                        error_on_timing_cache_miss=True).validate()
    jobs, _ = plan_jobs(m, opts)
    build_job(m, jobs[0], opts)  # every tactic must come from the cache, or TensorRT fails the build
    assert cache.stat().st_size == size
