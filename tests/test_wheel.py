"""The package as users install it: a wheel built from the repository, installed (not editable) into a clean
virtual environment, runs `hrm-export export` from a directory outside the repository.

The clean environment borrows the already-installed third-party packages (torch, onnx, ...) through a .pth
line naming the test environment's site-packages, so nothing is downloaded; hrm_export and model_src come from
the wheel alone (a plain .pth path entry does not activate the editable install that lives there).
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
                   check=True, capture_output=True, text=True, timeout=600)
    (wheel,) = dist.glob("hrm_export-*.whl")
    env = tmp_path_factory.mktemp("venv") / "env"
    venv.create(env, with_pip=True)  # ensurepip: offline; this pip writes scripts that run this environment
    py = env / "bin" / "python"
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True, text=True, timeout=300)
    return env


def test_the_wheel_ships_profiles_budgets_and_the_default_model(wheel_env, tmp_path):
    probe = ("import hrm_export, model_src.checkpoint as c; "
             "from hrm_export.core.config_files import PROFILE_DIR, BUDGET_DIR; "
             "print(hrm_export.__file__); print(sorted(p.name for p in PROFILE_DIR.glob('*.toml'))); "
             "print(sorted(p.name for p in BUDGET_DIR.glob('*.toml'))); print(c.DEFAULT_CHECKPOINT.is_file())")
    out = subprocess.check_output([str(wheel_env / "bin" / "python"), "-c", probe], cwd=tmp_path, text=True)
    where, profiles, budgets, weights = out.splitlines()
    assert where.startswith(str(wheel_env)) and not where.startswith(str(ROOT))
    assert profiles == "['latency.toml', 'throughput.toml']" and budgets == "['latency.toml', 'parity.toml']"
    assert weights == "True"


def test_the_installed_cli_exports_from_any_directory(wheel_env, tmp_path):
    r = subprocess.run([str(wheel_env / "bin" / "hrm-export"), "export", "--out", "bundle", "--json"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert sorted(a["module"] for a in manifest["artifacts"]) == ["h_module", "l_module", "l_step", "l_step_static"]
    assert set(manifest["profiles"]) == {"latency", "throughput"}
    assert manifest["checkpoint"]["sha256"]  # the built-in trained model, from the wheel
