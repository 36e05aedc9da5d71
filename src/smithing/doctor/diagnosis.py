"""What the doctor returns: :class:`Finding`, :class:`LayerReport`, :class:`Diagnosis`, and the
tables behind its advice (the layers it measures, the initializer recommended per activation,
the saturating activations); see :mod:`smithing.doctor.diagnose`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from smithing.doctor.initmatch import InitMatch
from smithing.doctor.lr_range import LRRange

#: the layers measured (those with a weight of at least 2 dimensions)
LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)

#: activation -> (initializer recommended, why, paper)
RECOMMENDED = {
    "relu": ("he_normal", "He et al., ICCV 2015: Var(W) = 2 / fan_in keeps a ReLU net's variance"),
    "leaky_relu": ("he_normal", "He et al., ICCV 2015 (gain sqrt(2 / (1 + a^2)), ~ sqrt 2)"),
    "elu": ("he_normal", "He et al., ICCV 2015 (a rectifier: half the units pass)"),
    "tanh": ("glorot_uniform", "Glorot & Bengio, AISTATS 2010: the normalized initialization"),
    "softsign": ("glorot_uniform", "Glorot & Bengio, AISTATS 2010"),
    "sigmoid": (
        "glorot_uniform",
        "Glorot & Bengio, AISTATS 2010 (who also show sigmoid nets start saturated: tanh or "
        "softsign train better)",
    ),
    "linear": ("lecun_normal", "LeCun et al. 1998: Var(W) = 1 / fan_in"),
    "softplus": ("he_normal", "a smooth rectifier"),
}

#: the saturating activations, and what the doctor tries instead of them on a copy
SATURATING = {"sigmoid", "tanh", "softsign"}


@dataclass(frozen=True)
class Finding:
    """One thing the doctor saw: ``code`` (see the module docstring), ``severity`` (``"error"``,
    ``"warning"``, ``"ok"`` or ``"info"``), ``message``, ``advice`` (what to do, with the
    library call), ``layers`` concerned, ``study`` (the ``smithing run`` study that shows it)
    and ``data`` (numbers behind it)."""

    code: str
    severity: str
    message: str
    advice: str = ""
    layers: tuple[str, ...] = ()
    study: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class LayerReport:
    """The measurements of one layer."""

    name: str
    kind: str
    shape: tuple[int, ...]
    init: InitMatch
    activation: str | None = None  # the activation module that follows, by registry name
    activation_module: str | None = None  # its name in the model
    preact_mean: float | None = None
    preact_std: float | None = None
    act_mean: float | None = None
    act_std: float | None = None
    saturated: float | None = None
    dead: float | None = None
    grad_norm: float | None = None


@dataclass
class Diagnosis:
    """What :func:`diagnose` returns: the per-layer measurements, the findings, the range test."""

    model: str
    layers: list[LayerReport]
    findings: list[Finding]
    activation: str | None
    recommended_init: str | None
    first_last_ratio: float | None
    grad_norm: float | None
    lr_range: LRRange | None
    what_if: dict[str, float | None] = field(default_factory=dict)
    n_examples: int = 0
    page: str | None = None  # the HTML file, once written (:func:`smithing.doctor.doctor`)

    @property
    def codes(self) -> list[str]:
        """The findings' codes, in order."""
        return [f.code for f in self.findings]

    def finding(self, code: str) -> Finding | None:
        """The first finding with ``code``, or None."""
        return next((f for f in self.findings if f.code == code), None)

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-ready data."""
        d = asdict(self)
        for layer, rep in zip(d["layers"], self.layers, strict=True):
            layer["init"]["summary"] = rep.init.summary
        return d

    def write_html(self, path) -> str:
        """Write the one self-contained HTML page (:func:`smithing.doctor.write_page`)."""
        from smithing.doctor.page import write_page

        return write_page(self, path)


__all__ = ["LAYERS", "RECOMMENDED", "SATURATING", "Diagnosis", "Finding", "LayerReport"]
