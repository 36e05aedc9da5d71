"""Checkpoints written before the trainers shared :class:`smithing.checkpoint.Resumable` still
resume, bit for bit: every trainer continues a run killed mid-epoch from the file the old code
(commit 957e1cf) left, and ends where the run uninterrupted ends (the cases:
``tests/checkpoint_v1_cases.py``)."""

from __future__ import annotations

import shutil

import pytest
import torch

from checkpoint_v1_cases import CASES, FOLDER, TORCH
from smithing.checkpoint import Checkpointer, read_checkpoint

pytestmark = pytest.mark.skipif(
    not torch.__version__.startswith(TORCH),
    reason=f"the files hold torch {TORCH}'s generator streams (this is torch {torch.__version__})",
)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("name", list(CASES))
def test_an_old_mid_epoch_checkpoint_resumes_bitwise(tmp_path, name):
    old = FOLDER / f"{name}.safetensors"
    state = read_checkpoint(old)  # the format and its checksum as they were
    assert state["trainer"] == name and not state["finished"]
    position = {"train_class_rbm": "step", "train_deep_hybrid": "step", "fit_sequence": "pos"}
    assert state[position.get(name, "position")]

    ref = CASES[name]()
    path = tmp_path / "run.safetensors"
    shutil.copy(old, path)
    torch.manual_seed(1234)  # a new process: other global generator states
    ck = Checkpointer(path, min_interval_s=0)
    resumed = CASES[name](checkpoint=ck)
    assert ck.loaded_from == path
    assert resumed.keys() == ref.keys()
    for k in ref:  # exactly equal (NaN where NaN: a record without that key)
        torch.testing.assert_close(resumed[k], ref[k], rtol=0, atol=0, equal_nan=True, msg=k)
    assert read_checkpoint(path)["finished"]
