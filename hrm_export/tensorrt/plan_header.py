"""Read what a serialized TensorRT plan says about itself without deserializing it.

NVIDIA documents no plan file format. The layout below is the one `trtexec --getPlanVersionOnly` reads
(TensorRT's samples/common/sampleEngines.cpp, `printPlanVersion`), valid for plans from TensorRT 8.6 on:

    offset  size  field
    0       4     magic tag, the bytes b"ftrt" (uint32 0x74727466 little-endian)
    4       4     serialization version, uint32 little-endian; 0 is the only one with a known layout
    8       16    (undocumented)
    24      4     TensorRT major, minor, patch, build — one byte each

The compute capability is not in any known part of the header, so it is recorded in the manifest at build
time and checked from there. Because the layout is a reading of sample code, not a contract, the header is
advice where TensorRT is installed: a plan whose header this module cannot read (a future serialization
version, say) is still handed to TensorRT, whose deserialization decides (`hrm_export.tensorrt.compat`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from hrm_export.core.errors import UserError

PLAN_MAGIC = b"ftrt"
HEADER_SIZE = 28
KNOWN_SERIALIZATION_VERSIONS = (0,)
_VERSION_OFFSET = 24


class PlanError(UserError):
    """A file that is not a TensorRT plan, or a plan this machine cannot run."""


@dataclass(frozen=True)
class PlanHeader:
    serialization_version: int
    tensorrt_version: tuple[int, int, int, int]  # major, minor, patch, build

    @property
    def version(self) -> str:
        return ".".join(map(str, self.tensorrt_version))

    @property
    def release(self) -> tuple[int, int, int]:
        return self.tensorrt_version[:3]


def parse_plan_header(head: bytes, source: str = "plan") -> PlanHeader:
    """Parse the first HEADER_SIZE bytes of a plan; PlanError names what is wrong and what to do."""
    rebuild = "pass a plan written by `hrm-export build` (TensorRT ≥ 8.6), or rebuild it"
    if len(head) < HEADER_SIZE:
        raise PlanError(f"{source}: {len(head)} bytes, too short to be a TensorRT plan (header is {HEADER_SIZE})",
                        hint=rebuild)
    if head[:4] != PLAN_MAGIC:
        raise PlanError(f"{source}: not a TensorRT plan (starts with {head[:4]!r}, a plan starts with b'ftrt')",
                        hint=rebuild)
    (serialization,) = struct.unpack_from("<I", head, 4)
    if serialization not in KNOWN_SERIALIZATION_VERSIONS:
        raise PlanError(f"{source}: plan serialization version {serialization} has no known header layout",
                        hint="inspect it with TensorRT installed (`trtexec --getPlanVersionOnly --loadEngine=...`)")
    return PlanHeader(serialization, tuple(head[_VERSION_OFFSET:_VERSION_OFFSET + 4]))


def read_plan_header(path: str | Path) -> PlanHeader:
    path = Path(path)
    if not path.is_file():
        raise PlanError(f"{path}: no such plan file", hint="build it: hrm-export build --out DIR")
    with path.open("rb") as f:
        return parse_plan_header(f.read(HEADER_SIZE), str(path))

