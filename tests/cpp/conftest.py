"""Builds of the C++ runtime (cpp/build, cpp/build-asan) and the conformance fixtures, once per test session.

The builds are incremental (cpp/build.sh): on a fresh clone the first run fetches the dependencies and
compiles for a few minutes, later runs take seconds. Without a C++ compiler or CMake the tests skip with
that reason; a failing build fails them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CPP = ROOT / "cpp"


def _build(variant: str) -> Path:
    missing = [tool for tool in ("cmake", "c++") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"no {' or '.join(missing)} on PATH: the C++ runtime needs a C++17 compiler and CMake")
    done = subprocess.run([str(CPP / "build.sh"), variant, sys.executable], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cpp/build.sh {variant} failed:\n{(done.stdout + done.stderr)[-4000:]}", pytrace=False)
    return CPP / ("build" if variant == "release" else "build-asan")


@pytest.fixture(scope="session")
def cpp_build() -> Path:
    return _build("release")


@pytest.fixture(scope="session")
def cpp_asan_build() -> Path:
    return _build("asan")


@pytest.fixture(scope="session")
def cpp_fixtures(tmp_path_factory) -> Path:
    from cpp_fixtures import write_fixtures

    return write_fixtures(tmp_path_factory.mktemp("cpp-fixtures"))
