"""Shared by the Triton tests: the tiny bundle of tests/runtime_bundle.py and a repository written from it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: runtime_bundle

from runtime_bundle import tiny_bundle  # noqa: E402

from hrm_export.triton import RepositoryOptions, write_repository  # noqa: E402

IDLE_S = 4.0  # hrm_stream's idle timeout in the test repository: short, so the idle test waits only seconds


@pytest.fixture(scope="session")
def bundle() -> Path:
    return tiny_bundle()


@pytest.fixture(scope="session")
def repo(bundle, tmp_path_factory) -> Path:
    return write_repository(bundle, tmp_path_factory.mktemp("triton") / "repo",
                            RepositoryOptions(stream_idle_s=IDLE_S)).path
