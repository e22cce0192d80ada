"""`hrm-export bench`: latency, throughput and memory per module, per backend × precision, held against budgets.

timing (how one cell is timed) · machine (where) · memory (how big) · suite (what is measured) ·
gate (hrm_export/budgets/latency.toml) · report (tables, JSON) · plot (PNG). `run_bench` in suite is the entry point.
"""

from __future__ import annotations

from pathlib import Path

BACKENDS = ("torch", "torch-compile", "torch-graphs", "ort-cpu", "ort-cuda", "tensorrt")  # torch-graphs: CUDA only
DEFAULT_BACKENDS = ("torch", "ort-cpu", "ort-cuda", "tensorrt")  # torch-compile: minutes of compiling, opt in
PRECISIONS = ("fp32", "bf16", "int8-cpu", "int8")


def bench_bundle(bundle: str | Path, opts, budgets: str | Path | None = None, on_cell=None,
                 trust: str | Path | None = None) -> dict:
    """Measure a bundle (SuiteOptions `opts`) and judge it against the budgets: the report dict, gate included.
    `trust`: the public key the bundle must be signed with (core/signing.py)."""
    from hrm_export.bench.gate import evaluate
    from hrm_export.bench.suite import run_bench
    from hrm_export.core.latency_targets import DEFAULT_TARGETS, load_targets
    from hrm_export.core.manifest import Manifest
    from hrm_export.core.reference import reference_from_manifest

    targets = load_targets(budgets)  # a bad budgets file fails before minutes of measuring, not after
    manifest = Manifest.load(bundle, trust=trust)
    manifest.verify_hashes()  # a bundle is measured whole or not at all
    report = run_bench(manifest, reference_from_manifest(manifest), opts, on_cell=on_cell)
    report["gate"] = {"budgets": str(budgets or DEFAULT_TARGETS), **evaluate(report, targets)}
    return report


def torch_only_bundle(out_dir: str | Path, checkpoint: str | Path | None = None):
    """A bundle directory holding only manifest.json (config + the checkpoint record, no ONNX files): enough to
    bench the PyTorch backends on a machine without onnx/onnxruntime, e.g. a lent GPU machine. ONNX backends
    then list themselves as skipped ("bundle has no fp32 ONNX")."""
    from hrm_export.core.manifest import Manifest
    from hrm_export.core.reference import copy_into_bundle, load_reference

    model, record = load_reference(Path(checkpoint) if checkpoint else None)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    manifest = Manifest(dir=Path(out_dir), config_dict=model.cfg.to_dict(),
                        checkpoint=copy_into_bundle(record, Path(out_dir)))
    manifest.save()
    return manifest
