"""PyTorch reference of the dual-book Hierarchical Reasoning Model (HRM) for trading."""

from model_src.config import HRMConfig, tiny_config
from model_src.model import HRM, HModule, LModule, LStep, parameter_table

__all__ = ["HRM", "HModule", "LModule", "LStep", "HRMConfig", "parameter_table", "tiny_config"]
