"""Checkpoints keep the format of the code before the trainers shared
:class:`smithing.checkpoint.Resumable`, and resume bit for bit: every trainer's run killed
mid-epoch leaves a checkpoint whose keys, tensor dtypes and shapes and value types are those
the old code wrote (``tests/fixtures/checkpoint_v1_format.json``, recorded from its files), and
continuing from it ends where the run uninterrupted ends (the cases:
``tests/checkpoint_v1_cases.py``)."""

from __future__ import annotations

import json

import pytest
import torch

from checkpoint_v1_cases import CASES, FORMAT, describe, killed_checkpoint
from smithing.checkpoint import Checkpointer, read_checkpoint


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("name", list(CASES))
def test_a_mid_epoch_checkpoint_has_the_old_format_and_resumes_bitwise(tmp_path, name):
    path = killed_checkpoint(name, tmp_path / "run.safetensors")
    state = read_checkpoint(path)
    assert state["trainer"] == name and not state["finished"]
    position = {"train_class_rbm": "step", "train_deep_hybrid": "step", "fit_sequence": "pos"}
    assert state[position.get(name, "position")]
    assert describe(state) == json.loads(FORMAT.read_text())[name]

    ref = CASES[name]()
    torch.manual_seed(1234)  # a new process: other global generator states
    ck = Checkpointer(path, min_interval_s=0)
    resumed = CASES[name](checkpoint=ck)
    assert ck.loaded_from == path
    assert resumed.keys() == ref.keys()
    for k in ref:  # exactly equal (NaN where NaN: a record without that key)
        torch.testing.assert_close(resumed[k], ref[k], rtol=0, atol=0, equal_nan=True, msg=k)
    assert read_checkpoint(path)["finished"]
