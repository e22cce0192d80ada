"""PyTorch reference of the dual-book Hierarchical Reasoning Model (HRM) for trading.

The model classes are imported on first use (PEP 562), so `import model_src.errors` or `model_src.config`
does not load torch: `hrm-export --help` stays fast.
"""

from __future__ import annotations

import importlib

__all__ = ["HRM", "HModule", "LModule", "LStep", "HRMConfig", "parameter_table", "tiny_config"]
_WHERE = {"HRMConfig": "model_src.config", "tiny_config": "model_src.config"}


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(_WHERE.get(name, "model_src.model")), name)
    raise AttributeError(f"module 'model_src' has no attribute {name!r}")
