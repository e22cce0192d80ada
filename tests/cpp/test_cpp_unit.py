"""The C++ unit and bad-input tests (cpp/tests/*.cpp, GoogleTest) on the real fixture bundles: once in the
Release build and once under AddressSanitizer + UndefinedBehaviorSanitizer, where any memory error, leak or
undefined behaviour fails the run."""

from __future__ import annotations

import os
import subprocess

SANITIZERS = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1:strict_string_checks=1",
              "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}


def _gtest(binary, fixtures, extra_env=None) -> None:
    env = {**os.environ, "HRM_FIXTURES": str(fixtures), **(extra_env or {})}
    done = subprocess.run([str(binary)], capture_output=True, text=True, env=env, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "[  PASSED  ]" in out and "FAILED" not in out, out[-6000:]


def test_unit_and_bad_input(cpp_build, cpp_fixtures):
    _gtest(cpp_build / "hrm_unit_tests", cpp_fixtures)


def test_unit_and_bad_input_under_asan_and_ubsan(cpp_asan_build, cpp_fixtures):
    _gtest(cpp_asan_build / "hrm_unit_tests", cpp_fixtures, SANITIZERS)
