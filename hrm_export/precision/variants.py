"""`make_variants`: the bundle's fp32 graphs → bf16 / bf16-emulated / int8 / int8-cpu graphs beside them.

Each variant is recorded in the manifest with how it was made (tool, version, options, islands, excluded nodes),
so a verify or build run can say exactly which graph it judged. Files are written atomically; the manifest is
saved once at the end, so an interrupted run leaves the previous manifest describing the previous files (whose
hashes then refuse any variant file that was replaced), or, right after `export_bundle(write_manifest=False)`,
no manifest at all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from hrm_export.core.errors import UserError, require
from hrm_export.core.manifest import Artifact, Manifest
from hrm_export.core.market_inputs import sample_days
from hrm_export.core.specs import STATIC_STEP
from hrm_export.precision import DEFAULT_METHOD, VARIANTS
from hrm_export.precision.calibration import Calibration, build_calibration, module_rows
from model_src.atomic import atomic_output, file_sha256

ORT_INSTALL = "pip install 'hrm-export[ort]'"
DEFAULT_CALIBRATION_SIZE = 32
CALIBRATION_FILE = "calibration.npz"


def make_variants(
    manifest: Manifest,
    precisions: Iterable[str],
    calibration: Calibration | str | Path | None = None,
    keep_fp32: Sequence[str] = (),
    calibration_size: int = DEFAULT_CALIBRATION_SIZE,
    method: str = DEFAULT_METHOD,
    seed: int = 0,
    on_step: Callable[[str], None] | None = None,
) -> Manifest:
    """Write the requested precision variants of every fp32 module graph and add them to the manifest.

    `calibration`: a Calibration, an npz cache path, or None to build one from `calibration_size` synthetic-market
    days (saved as DIR/calibration.npz). `keep_fp32`: module globs kept in fp32 on top of the defaults.
    """
    onnx = require("onnx", ORT_INSTALL)
    wanted = [p for p in dict.fromkeys(precisions) if p != "fp32"]
    unknown = [p for p in wanted if p not in VARIANTS]
    if unknown:
        raise UserError(f"unknown precision(s) {unknown}", hint=f"use fp32 and/or {', '.join(VARIANTS)}")
    fp32 = [a for a in manifest.artifacts if a.precision == "fp32" and a.format == "onnx"]
    if not fp32:
        raise UserError(f"{manifest.dir}: the bundle has no fp32 ONNX graphs", hint="run `hrm-export export` first")
    keep_fp32 = tuple(keep_fp32)
    cfg = manifest.config
    paths = {a.module: manifest.artifact_path(a) for a in fp32}
    step = on_step or (lambda _msg: None)

    if "int8" in wanted:
        if calibration is None:
            step(f"calibrating on {calibration_size} sample days")
            days, minutes = sample_days(cfg, calibration_size, seed)
            calibration = build_calibration(paths, cfg, days, minutes, seed=seed)
            calibration.save(manifest.dir / CALIBRATION_FILE)
        elif not isinstance(calibration, Calibration):
            calibration = Calibration.load(calibration)

    for a in fp32:
        src = paths[a.module]
        if a.module == STATIC_STEP:  # the CPU streaming graph: its fast CPU route only (docs/runtime.md, Streaming)
            if "int8-cpu" in wanted:
                from hrm_export.precision.int8_cpu import quantize_cpu
                from hrm_export.precision.int8_qdq import DEFAULT_KEEP

                step(f"{a.module}: int8-cpu (dynamic)")
                out = src.with_name(f"{a.module}.int8-cpu.onnx")
                _add(manifest, a, "int8-cpu", out, quantize_cpu(src, out, (*DEFAULT_KEEP, *keep_fp32)))
            continue
        if "bf16" in wanted:
            from hrm_export.precision.bf16 import bf16_fraction, to_bf16
            from hrm_export.precision.emulate import emulate_bf16

            step(f"{a.module}: bf16")
            bf16, facts = to_bf16(onnx.load(str(src)), keep_fp32)
            made_by = {"tool": "hrm_export.precision.bf16", "version": _version(),
                       "options": {"keep_fp32": list(keep_fp32)}, "bf16_weight_fraction": round(bf16_fraction(bf16), 4),
                       **facts}
            _add(manifest, a, "bf16", _save(onnx, bf16, src, "bf16"), made_by)
            emulated = emulate_bf16(bf16)
            _add(manifest, a, "bf16-emulated", _save(onnx, emulated, src, "bf16-emulated"),
                 {"tool": "hrm_export.precision.emulate", "version": _version(), "from": f"{a.module}.bf16.onnx",
                  "method": "every bf16 tensor rounded through Cast fp32→bf16→fp32, run in fp32"})
        if "int8" in wanted:
            from hrm_export.precision.int8_qdq import DEFAULT_KEEP, quantize_qdq

            step(f"{a.module}: int8 (Q/DQ)")
            out = src.with_name(f"{a.module}.int8.onnx")
            made_by = quantize_qdq(src, out, module_rows(calibration, a.module), method,
                                   (*DEFAULT_KEEP, *keep_fp32))
            made_by["calibration"] = {"file": CALIBRATION_FILE, "size": calibration.size,
                                      "source": str(calibration.meta.get("source", "")),
                                      "l_inputs": "film_gamma/film_beta computed by the fp32 h_module graph"}
            _add(manifest, a, "int8", out, made_by)
        if "int8-cpu" in wanted:
            from hrm_export.precision.int8_cpu import quantize_cpu
            from hrm_export.precision.int8_qdq import DEFAULT_KEEP

            step(f"{a.module}: int8-cpu (dynamic)")
            out = src.with_name(f"{a.module}.int8-cpu.onnx")
            _add(manifest, a, "int8-cpu", out, quantize_cpu(src, out, (*DEFAULT_KEEP, *keep_fp32)))
    manifest.save()
    return manifest


def _save(onnx, model, src: Path, precision: str) -> Path:
    out = src.with_name(f"{src.stem}.{precision}.onnx")
    onnx.checker.check_model(model, full_check=True)
    with atomic_output(out) as tmp:
        onnx.save_model(model, str(tmp))
    return out


def _add(manifest: Manifest, fp32: Artifact, precision: str, path: Path, made_by: dict) -> None:
    manifest.add(dataclasses.replace(fp32, precision=precision, path=path.name, sha256=file_sha256(path),
                                     made_by=made_by, extra={}))


def _version() -> str:
    from hrm_export import __version__

    return __version__
