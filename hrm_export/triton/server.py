"""A local tritonserver for trying a repository (and for the tests): the binary that nvidia-pytriton 0.7.0
bundles (Triton 2.51, Python backend only), run from the server's own virtual environment (`make triton-env`).

    with LocalServer("repo").start() as server:      # 127.0.0.1 only, free ports, ready in a few seconds
        server.http_url, server.grpc_url, server.metrics_url, server.pid

What running the bundled binary takes: a backends folder whose python/ holds libtriton_python.so, its
triton_python_backend_utils.py and the stub for the environment's Python version; LD_LIBRARY_PATH naming
the interpreter's lib directory (the stub links libpython) and nvidia_pytriton.libs; the environment's bin
first on PATH (the stub's embedded Python finds the venv, hence its site-packages, through `python3` there).
The server runs in its own process group and is stopped by its PID: SIGTERM, then SIGKILL to the group.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import hrm_export
from hrm_export.core.errors import UserError

ENV_VARIABLE = "HRM_TRITON_ENV"
DEFAULT_ENV = Path(hrm_export.__file__).resolve().parent.parent / ".venv-triton"
HOST = "127.0.0.1"


class ServerError(UserError):
    """The local server could not start or load the repository's models."""


def server_env(env: str | Path | None = None) -> Path:
    """The server's virtual environment: `env`, else $HRM_TRITON_ENV, else .venv-triton in the project."""
    path = Path(env or os.environ.get(ENV_VARIABLE) or DEFAULT_ENV)
    if not (path / "bin" / "python").exists() or not list(path.glob("lib/python3.*/site-packages/pytriton")):
        raise UserError(f"{path}: no Triton server environment (nvidia-pytriton) there",
                        hint=f"build it with `make triton-env`, or point --env / ${ENV_VARIABLE} at one")
    return path


def served_models(repo: Path) -> list[str]:
    """The repository's models that this server can run: the Python-backend ones (the only backend bundled)."""
    names = [d.name for d in sorted(repo.iterdir()) if (d / "config.pbtxt").is_file()
             and re.search(r'^backend: "python"$', (d / "config.pbtxt").read_text(), re.M)]
    if not names:
        raise UserError(f"{repo}: no Python-backend model to serve (is it a repository from `hrm-export triton`?)",
                        hint="write one: hrm-export triton BUNDLE --out REPO")
    return names


class LocalServer:
    def __init__(self, repo: str | Path, env: str | Path | None = None, models: list[str] | None = None,
                 log: str | Path | None = None, verbose: bool = False):
        self.repo = Path(repo).resolve()
        if not self.repo.is_dir():
            raise UserError(f"{self.repo}: no such model repository", hint="write one: hrm-export triton BUNDLE "
                            "--out REPO")
        self.env = server_env(env)
        self.models = models or served_models(self.repo)
        self.log = Path(log) if log else Path(tempfile.mkstemp(prefix="tritonserver-", suffix=".log")[1])
        self.verbose = verbose
        self.proc: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        assert self.proc is not None, "server not started"
        return self.proc.pid

    @property
    def http_url(self) -> str:
        return f"{HOST}:{self.ports['http']}"

    @property
    def grpc_url(self) -> str:
        return f"{HOST}:{self.ports['grpc']}"

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.ports['metrics']}/metrics"

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, timeout_s: float = 180.0, attempts: int = 3) -> LocalServer:
        """Start and wait until every model is ready. A port taken between choosing and binding it is retried
        with fresh ports; a model that fails to load raises ServerError with the server log's error lines."""
        for attempt in range(attempts):
            self.ports = dict(zip(("http", "grpc", "metrics"), free_ports(3), strict=True))
            self._spawn()
            if self._wait_ready(timeout_s):
                return self
            log = self.log.read_text(errors="replace")
            self.stop()
            if "ddress already in use" not in log or attempt == attempts - 1:
                raise ServerError(f"tritonserver did not become ready: {_first_failure(log)}",
                                  hint=f"the full log is {self.log}")
        raise AssertionError("unreachable")

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM to the server's PID, SIGKILL to its process group (the server and its stubs) if it lingers."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # a stub left behind by a server that died (a no-op else)
        self._logfile.close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- internals ---------------------------------------------------------------------------------
    def _spawn(self) -> None:
        site = next(self.env.glob("lib/python3.*/site-packages"))
        server_dir = site / "pytriton" / "tritonserver"
        backends = _backends_dir(self.env, server_dir, site.parent.name.removeprefix("python"))
        cmd = [str(server_dir / "bin" / "tritonserver"), "--model-repository", str(self.repo),
               "--backend-directory", str(backends), "--model-control-mode", "explicit",
               *(a for m in self.models for a in ("--load-model", m)),
               "--http-address", HOST, "--grpc-address", HOST, "--metrics-address", HOST,
               "--http-port", str(self.ports["http"]), "--grpc-port", str(self.ports["grpc"]),
               "--metrics-port", str(self.ports["metrics"]), "--allow-gpu-metrics", "false",
               "--exit-timeout-secs", "10", "--log-verbose", "1" if self.verbose else "0"]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.env / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        libs = [_interpreter_lib(self.env), str(site / "nvidia_pytriton.libs"), env.get("LD_LIBRARY_PATH", "")]
        env["LD_LIBRARY_PATH"] = ":".join(p for p in libs if p)
        self._logfile = open(self.log, "w")  # noqa: SIM115 — the server writes to it until stop()
        self.proc = subprocess.Popen(cmd, stdout=self._logfile, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, start_new_session=True)

    def _wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        url = f"http://{self.http_url}/v2/health/ready"
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return True
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        return False


def _first_failure(log: str) -> str:
    """The reason a model failed to load (the model's own one-line error, its traceback cut), else the last
    error line of the log."""
    failed = re.search(r"failed to load '([^']+)' version \d+: (?:Internal: )?(.+?)(?:\\n|\"$)", log, re.M)
    if failed:
        return f"model {failed.group(1)}: {failed.group(2)}"
    errors = [line for line in log.splitlines() if line.startswith("E") or "error" in line.lower()]
    return errors[-1][:400] if errors else "no error in its log"


def free_ports(n: int) -> list[int]:
    """n distinct ports that are free on 127.0.0.1 now (the OS picks them)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in sockets:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _backends_dir(env: Path, server_dir: Path, py_version: str) -> Path:
    """env/triton-backends/python: the bundled Python backend plus the stub for this Python (links, made once)."""
    backends = env / "triton-backends"
    python = backends / "python"
    stub = server_dir / "python_backend_stubs" / py_version / "triton_python_backend_stub"
    if not stub.is_file():
        raise UserError(f"nvidia-pytriton has no Python-backend stub for Python {py_version}",
                        hint="build the server environment with Python 3.8–3.13")
    links = {"libtriton_python.so": server_dir / "backends" / "python" / "libtriton_python.so",
             "triton_python_backend_utils.py": server_dir / "backends" / "python" / "triton_python_backend_utils.py",
             "triton_python_backend_stub": stub}
    if all((python / n).exists() and (python / n).resolve() == t.resolve() for n, t in links.items()):
        return backends
    tmp = Path(tempfile.mkdtemp(prefix=".triton-backends.", dir=env))
    (tmp / "python").mkdir()
    for name, target in links.items():
        (tmp / "python" / name).symlink_to(target)
    shutil.rmtree(backends, ignore_errors=True)
    os.replace(tmp, backends)
    return backends


def _interpreter_lib(env: Path) -> str:
    """The lib directory of the interpreter the environment was made from (where libpython3.X.so is)."""
    for line in (env / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home":
            return str(Path(value.strip()).parent / "lib")
    return ""
