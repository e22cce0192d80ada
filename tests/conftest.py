import pytest
import torch

from model_src import HRM, tiny_config


@pytest.fixture(scope="session")
def tiny_model() -> HRM:
    torch.manual_seed(0)
    return HRM(tiny_config()).eval()


@pytest.fixture(scope="session")
def default_model() -> HRM:
    torch.manual_seed(0)
    return HRM().eval()
