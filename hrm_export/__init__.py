"""hrm-export: turn the PyTorch HRM reference into verified, fast inference artifacts."""

__version__ = "0.1.0"
