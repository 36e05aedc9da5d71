import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

import pytest  # noqa: E402
import torch  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _data_dir(monkeypatch):
    """Point the data directory at ../shared/data when it exists (read-only MNIST copies)."""
    if "SMITHING_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
        monkeypatch.setenv("SMITHING_DATA_DIR", str(SHARED_DATA))


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
