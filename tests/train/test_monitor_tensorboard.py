"""GradientMonitor writes its rows to TensorBoard (a SummaryWriter or any add_scalar writer)."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from smithing._optional import MissingExtraError
from smithing.train.diagnostics import GradientMonitor


class FakeWriter:
    def __init__(self):
        self.scalars, self.histograms = [], []

    def add_scalar(self, tag, value, step):
        self.scalars.append((tag, value, step))

    def add_histogram(self, tag, values, step):
        self.histograms.append((tag, values.numel(), step))


def _steps(monitor, net, n=3):
    g = torch.Generator().manual_seed(0)
    for step in range(n):
        x = torch.randn(16, 5, generator=g)
        net.zero_grad()
        net(x).square().mean().backward()
        monitor.record(step)


def test_every_recorded_row_goes_to_the_writer():
    net = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    w = FakeWriter()
    with GradientMonitor(net, every=2, writer=w, histograms=True, bins=8) as mon:
        _steps(mon, net, 3)
    expected = [(f"{r['layer']}/{r['stat']}", r["value"], r["step"]) for r in mon.records]
    assert w.scalars == expected and {s for _, _, s in w.scalars} == {0, 2}
    assert ("0/weight_grad_norm" in {t for t, _, _ in w.scalars}) and (
        "global/grad_norm" in {t for t, _, _ in w.scalars}
    )
    assert {t for t, _, _ in w.histograms} == {"1/activation", "0/output_grad", "2/output_grad"}
    assert all(n == 16 * 4 or n == 16 * 2 for _, n, _ in w.histograms)  # every value counted


def test_bad_writer_and_both_options_are_refused():
    net = nn.Linear(3, 2)
    with pytest.raises(ValueError, match="writer"):
        GradientMonitor(net, writer=object())
    with pytest.raises(ValueError, match="tensorboard"):
        GradientMonitor(net, tensorboard="runs", writer=FakeWriter())


def test_missing_tensorboard_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard -> ImportError
    with pytest.raises(MissingExtraError) as e:
        GradientMonitor(nn.Linear(3, 2), tensorboard=str(tmp_path))
    assert str(e.value) == (
        "GradientMonitor(tensorboard=...) needs tensorboard: pip install 'smithing[tensorboard]'"
    )


def test_real_summary_writer_writes_event_files(tmp_path):
    pytest.importorskip("tensorboard")
    net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    with GradientMonitor(net, tensorboard=str(tmp_path / "tb")) as mon:
        _steps(mon, net, 2)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert "global/grad_norm" in tags and "0/weight_grad_norm" in tags
    assert [e.step for e in acc.Scalars("global/grad_norm")] == [0, 1]
