"""DIR/manifest.json: what a bundle holds, how each artifact was made, and the hashes that prove it.

Every consumer (verify, build, bench, runtimes, Triton) opens a bundle through `Manifest.load(dir)` and finds
artifacts with `.find(module, precision, format)`. The manifest is always written last and atomically, so a
bundle whose export was interrupted has no manifest rather than one that claims missing files.

A bundle is self-contained and relocatable: every path in the manifest (artifacts and the checkpoint) is
relative to the bundle and must stay inside it — no absolute paths, no `..`, no symlink that resolves outside
(docs/bundles.md). `Manifest.load(dir, trust=KEY)` first checks the bundle's signature (core/signing.py).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath, PureWindowsPath

from hrm_export.core.errors import ManifestError
from model_src.atomic import atomic_output, file_sha256
from model_src.config import HRMConfig

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "model.sig"  # the bundle's signature (core/signing.py); model-signing's default name
CHECKPOINT_NAME = "checkpoint.safetensors"  # the reference's weights, copied into the bundle at export
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
    checkpoint: dict = field(default_factory=dict)  # path (in the bundle), sha256 (or random_init_seed), weights_sha256
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
        """The artifact's file, checked to stay inside the bundle once symlinks are resolved."""
        return contained(self.dir, artifact.path, _rebuild_hint(artifact.precision, artifact.format, self.dir))

    def checkpoint_path(self) -> Path | None:
        """The checkpoint file inside the bundle, or None for a random-init reference (no file)."""
        rel = self.checkpoint.get("path")
        if not rel:
            return None
        return contained(self.dir, rel, f"re-export the bundle: hrm-export export --out {self.dir}")

    def verify_hashes(self) -> None:
        """Raise ManifestError naming the first file (artifact or checkpoint) that is missing, outside the bundle
        or whose sha256 differs from the manifest's."""
        problems = self.file_problems()
        if problems:
            raise problems[0][1]

    def file_problems(self) -> list[tuple[str, ManifestError]]:
        """Every file of the bundle held against the manifest: (its path in the manifest, the ManifestError) per
        missing, escaping or changed file; empty when the bundle is whole. `inspect` lists them all,
        `verify_hashes` raises the first."""
        files = [(a.path, a.sha256, _rebuild_hint(a.precision, a.format, self.dir)) for a in self.artifacts]
        if self.checkpoint.get("path"):
            files.append((self.checkpoint["path"], self.checkpoint.get("sha256"),
                          f"re-export the bundle: hrm-export export --out {self.dir}"))
        problems = []
        for rel, sha256, hint in files:
            try:
                p = contained(self.dir, rel, hint)
            except ManifestError as e:
                problems.append((rel, e))
                continue
            if not p.is_file():
                problems.append((rel, ManifestError(f"{p}: listed in the manifest but missing", hint=hint)))
                continue
            digest = file_sha256(p)
            if digest != sha256:
                problems.append((rel, ManifestError(
                    f"{p}: sha256 {digest[:12]}… differs from the manifest's {str(sha256)[:12]}… (file changed "
                    "after it was made)", hint=hint)))
        return problems

    def to_dict(self) -> dict:
        return {"format": FORMAT, "created": self.created, "versions": self.versions, "config": self.config_dict,
                "checkpoint": self.checkpoint, "profiles": self.profiles, "token_ranges": self.token_ranges,
                "artifacts": [a.to_dict() for a in self.artifacts]}

    def save(self) -> Path:
        """Write manifest.json atomically. A signature made before no longer covers the bundle, so it goes first:
        the bundle is then plainly unsigned (sign it again) rather than carrying a signature that fails."""
        (Path(self.dir) / SIGNATURE_NAME).unlink(missing_ok=True)
        with atomic_output(self.path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return self.path

    @classmethod
    def load(cls, dir: str | Path, trust: str | Path | None = None) -> Manifest:
        """Read DIR/manifest.json (DIR may also name the manifest itself). `trust`: the PEM public key the bundle
        must be signed with; the signature and every file's digest are checked before the manifest is read."""
        dir = Path(dir)
        if dir.is_file() and dir.name != MANIFEST_NAME:
            raise ManifestError(f"{dir}: is a file, not a bundle directory",
                                hint=f"pass the directory that holds {MANIFEST_NAME} (hrm-export inspect also "
                                "describes a single .onnx or .plan file)")
        path = dir / MANIFEST_NAME if dir.name != MANIFEST_NAME else dir
        dir = path.parent
        if not path.is_file():
            raise ManifestError(f"{dir}: no {MANIFEST_NAME} (not a bundle, or its export did not finish)",
                                hint=f"export one: hrm-export export --out {dir}")
        if trust is not None:
            from hrm_export.core.signing import verify_signature

            verify_signature(dir, trust)
        reexport = f"re-export the bundle: hrm-export export --out {dir}"
        try:
            d = json.loads(path.read_text())
            m = cls(dir=dir, **_fields(d))
            m.config  # noqa: B018 (validates the config early)
        except (ValueError, KeyError, TypeError, AssertionError) as e:
            raise ManifestError(f"{path}: corrupt manifest ({e})", hint=reexport) from None
        for a in m.artifacts:  # lexically now; symlinks when a file is opened (artifact_path)
            _check_relative(a.path, f"{path}: artifact {a.module}/{a.precision}/{a.format}", reexport)
        if m.checkpoint.get("path"):
            _check_relative(m.checkpoint["path"], f"{path}: the checkpoint", reexport)
        return m


def _fields(d) -> dict:
    """The Manifest fields of a parsed manifest.json, each checked for its JSON type (ValueError/TypeError)."""
    if not isinstance(d, dict):
        raise ValueError(f"a JSON {type(d).__name__}, expected an object")
    if d.get("format") != FORMAT:
        raise ValueError(f"format {d.get('format')!r}, expected {FORMAT!r}")
    kinds = {"config": dict, "checkpoint": dict, "versions": dict, "profiles": dict, "artifacts": list,
             "token_ranges": dict}
    for key, kind in kinds.items():
        if key in ("config", "artifacts") and key not in d:
            raise KeyError(key)
        if key in d and not isinstance(d[key], kind):
            raise TypeError(f"{key!r} is a JSON {type(d[key]).__name__}, expected a {kind.__name__}")
    if not all(isinstance(a, dict) and isinstance(a.get("path"), str) for a in d["artifacts"]):
        raise TypeError("every artifact must be an object with a string 'path'")
    return {"config_dict": d["config"], "checkpoint": d.get("checkpoint", {}), "versions": d.get("versions", {}),
            "profiles": d.get("profiles", {}), "artifacts": [Artifact.from_dict(a) for a in d["artifacts"]],
            "created": d.get("created", ""), "token_ranges": d.get("token_ranges", {})}


def _check_relative(rel: str, what: str, hint: str) -> None:
    """A path as the manifest records it: relative to the bundle, inside it, POSIX separators."""
    pure = PurePosixPath(rel)
    if not rel or pure.is_absolute() or PureWindowsPath(rel).is_absolute() or "\\" in rel:
        raise ManifestError(f"{what} has the path {rel!r}: not relative to the bundle (bundles are relocatable: "
                            "every path is relative to the bundle directory)", hint=hint)
    if ".." in pure.parts:
        raise ManifestError(f"{what} has the path {rel!r}, which leaves the bundle", hint=hint)


def contained(dir: str | Path, rel: str, hint: str) -> Path:
    """DIR/rel, refused (ManifestError) when `rel` is not a plain relative path or resolves, through a symlink,
    to a file outside DIR."""
    dir = Path(dir)
    _check_relative(rel, f"{dir}: {rel!r}", hint)
    p = dir / rel
    real, root = p.resolve(), dir.resolve()
    if not real.is_relative_to(root):
        raise ManifestError(f"{p}: resolves to {real}, outside the bundle (a symlink out of it is refused)",
                            hint=hint)
    return p


def config_differences(manifest_config: dict, other: dict, other_name: str) -> str:
    """'h_layers 3 in manifest.json, 2 in h_module.onnx; ...' for the fields that differ ('' when none)."""
    keys = sorted(set(manifest_config) | set(other))
    return "; ".join(f"{k} {manifest_config.get(k, 'absent')!r} in {MANIFEST_NAME}, {other.get(k, 'absent')!r} in "
                     f"{other_name}" for k in keys if manifest_config.get(k) != other.get(k))


def _rebuild_hint(precision: str, format: str, dir: Path) -> str:
    if format == "trt-plan":
        return f"rebuild the engine: hrm-export build {dir} --precision {precision}"
    if precision != "fp32":
        return f"re-create the {precision} artifacts of {dir} (docs/cli.md)"
    return f"re-export the bundle: hrm-export export --out {dir}"
