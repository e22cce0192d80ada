"""DIR/manifest.json: what a bundle holds, how each artifact was made, and the hashes that prove it.

Every consumer (verify, build, bench, runtimes, Triton) opens a bundle through `Manifest.load(dir)` and finds
artifacts with `.find(module, precision, format)`. The manifest is always written last and atomically, so a
bundle whose export was interrupted has no manifest rather than one that claims missing files.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from hrm_export.core.errors import ManifestError
from model_src.atomic import atomic_output, file_sha256
from model_src.config import HRMConfig

MANIFEST_NAME = "manifest.json"
FORMAT = "hrm-export/manifest-v1"
PRECISIONS = ("fp32", "bf16", "bf16-emulated", "int8", "int8-cpu")
FORMATS = ("onnx", "trt-plan")


@dataclass
class Artifact:
    module: str  # "h_module" | "l_module" | "l_step"
    precision: str  # one of PRECISIONS
    format: str  # "onnx" | "trt-plan"
    path: str  # relative to the bundle directory
    sha256: str
    inputs: list[dict] = field(default_factory=list)  # {name, dtype, shape}; dynamic dims by axis name
    outputs: list[dict] = field(default_factory=list)
    opset: int | None = None
    profile: str | list[str] | None = None  # the profile(s) this artifact admits
    made_by: dict = field(default_factory=dict)  # tool, version, options
    extra: dict = field(default_factory=dict)  # e.g. tensorrt_version, compute_capability

    @property
    def profiles(self) -> list[str]:
        if self.profile is None:
            return []
        return [self.profile] if isinstance(self.profile, str) else list(self.profile)

    def key(self) -> tuple[str, str, str]:
        return self.module, self.precision, self.format

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Artifact:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class Manifest:
    dir: Path
    config_dict: dict
    checkpoint: dict = field(default_factory=dict)  # path, sha256 (or random_init_seed), weights_sha256
    versions: dict = field(default_factory=dict)
    profiles: dict[str, dict] = field(default_factory=dict)  # name -> Profile.to_dict()
    artifacts: list[Artifact] = field(default_factory=list)
    # {"days"|"minutes": {feature: [low, high]}}: the valid range of each token feature; the runtime refuses
    # tokens outside it ({} for a bundle whose tokens are not model_src.features'; docs/runtime.md)
    token_ranges: dict = field(default_factory=dict)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def path(self) -> Path:
        return Path(self.dir) / MANIFEST_NAME

    @property
    def config(self) -> HRMConfig:
        return HRMConfig.from_dict(self.config_dict)

    @property
    def checkpoint_sha256(self) -> str | None:
        return self.checkpoint.get("sha256")

    def find(self, module: str, precision: str = "fp32", format: str = "onnx") -> Artifact:
        for a in self.artifacts:
            if a.key() == (module, precision, format):
                return a
        have = ", ".join(f"{a.module}/{a.precision}/{a.format}" for a in self.artifacts) or "nothing"
        raise ManifestError(f"{self.dir}: no {module}/{precision}/{format} artifact (bundle has: {have})",
                            hint=_rebuild_hint(precision, format, self.dir))

    def add(self, artifact: Artifact) -> None:
        """Add or replace the artifact of the same module/precision/format."""
        self.artifacts = [a for a in self.artifacts if a.key() != artifact.key()] + [artifact]

    def artifact_path(self, artifact: Artifact) -> Path:
        return Path(self.dir) / artifact.path

    def verify_hashes(self) -> None:
        """Raise ManifestError naming the first artifact that is missing or whose sha256 differs."""
        for a in self.artifacts:
            p = self.artifact_path(a)
            if not p.is_file():
                raise ManifestError(f"{p}: listed in the manifest but missing",
                                    hint=_rebuild_hint(a.precision, a.format, self.dir))
            digest = file_sha256(p)
            if digest != a.sha256:
                raise ManifestError(
                    f"{p}: sha256 {digest[:12]}… differs from the manifest's {a.sha256[:12]}… (file changed after "
                    "it was made)", hint=_rebuild_hint(a.precision, a.format, self.dir))

    def to_dict(self) -> dict:
        return {"format": FORMAT, "created": self.created, "versions": self.versions, "config": self.config_dict,
                "checkpoint": self.checkpoint, "profiles": self.profiles, "token_ranges": self.token_ranges,
                "artifacts": [a.to_dict() for a in self.artifacts]}

    def save(self) -> Path:
        with atomic_output(self.path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return self.path

    @classmethod
    def load(cls, dir: str | Path) -> Manifest:
        dir = Path(dir)
        path = dir / MANIFEST_NAME if dir.is_dir() or not dir.suffix else dir
        if path.name == MANIFEST_NAME:
            dir = path.parent
        if not path.is_file():
            raise ManifestError(f"{dir}: no {MANIFEST_NAME} (not a bundle, or its export did not finish)",
                                hint=f"export one: hrm-export export --out {dir}")
        try:
            d = json.loads(path.read_text())
            if d.get("format") != FORMAT:
                raise ValueError(f"format {d.get('format')!r}, expected {FORMAT!r}")
            m = cls(dir=dir, config_dict=d["config"], checkpoint=d.get("checkpoint", {}),
                    versions=d.get("versions", {}), profiles=d.get("profiles", {}),
                    artifacts=[Artifact.from_dict(a) for a in d["artifacts"]], created=d.get("created", ""),
                    token_ranges=d.get("token_ranges", {}))
            m.config  # noqa: B018 (validates the config early)
        except (ValueError, KeyError, TypeError, AssertionError) as e:
            raise ManifestError(f"{path}: corrupt manifest ({e})",
                                hint=f"re-export the bundle: hrm-export export --out {dir}") from None
        return m


def _rebuild_hint(precision: str, format: str, dir: Path) -> str:
    if format == "trt-plan":
        return f"rebuild the engine: hrm-export build {dir} --precision {precision}"
    if precision != "fp32":
        return f"re-create the {precision} artifacts of {dir} (docs/cli.md)"
    return f"re-export the bundle: hrm-export export --out {dir}"
