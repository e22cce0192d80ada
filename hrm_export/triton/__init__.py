"""Serve at scale: a Triton Inference Server model repository from a bundle, and a local server to try it.

    write_repository(bundle, repo)   per-module ONNX Runtime / TensorRT models, hrm_day and hrm_stream
    LocalServer(repo).start()        tritonserver (from nvidia-pytriton) on 127.0.0.1, stopped by its PID

See docs/triton.md. Nothing here imports tritonclient or the server's packages at import time.
"""

from hrm_export.triton.repository import RepositoryOptions, write_repository

__all__ = ["RepositoryOptions", "write_repository"]
