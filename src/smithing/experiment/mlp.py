"""The ``"mlp"`` run kind: one MLP training run from a flat configuration (``smithing train``
and the studies' MLP runs).

:class:`MLPConfig` names everything a run needs (dataset, architecture, initializer, optimizer,
regularization, early stopping, seed). :func:`train_one` trains one configuration;
:func:`train_group` trains configurations that differ only in per-member fields (seed,
learning rate, initializer, penalty strengths) as one batched ensemble.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace

import torch

from smithing._registry import check
from smithing.data import Dataset, load
from smithing.nn import MLP, activations
from smithing.train import EarlyStopping, History, fit, seed_everything

__all__ = [
    "PER_MEMBER_FIELDS",
    "MLPConfig",
    "load_data",
    "build_model",
    "train_one",
    "can_batch",
    "train_group",
    "with_overrides",
]

#: fields that may differ between members of one batched ensemble
PER_MEMBER_FIELDS = ("seed", "lr", "init", "init_options", "l2", "l1", "max_norm")


@dataclass(frozen=True)
class MLPConfig:
    dataset: str = "digits"
    hidden: tuple[int, ...] = (100,)
    activation: str = "relu"
    init: str = "default"  # "default" keeps PyTorch's nn.Linear init
    init_options: dict = field(default_factory=dict)
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float | None = None
    optimizer_options: dict = field(default_factory=dict)
    schedule: str | None = None
    schedule_options: dict = field(default_factory=dict)
    epochs: int = 20
    batch_size: int = 32
    seed: int = 0
    n_train: int | None = None
    l2: float = 0.0
    l1: float = 0.0
    max_norm: float | None = None
    input_dropout: float = 0.0
    dropout: float = 0.0
    dropout_mode: str = "inverted"
    dropconnect: float = 0.0  # hidden layers' weights dropped (Wan et al. 2013); 0 = off
    clip_norm: float | None = None
    early_stopping_patience: int | None = None
    early_stopping_monitor: str = "valid_loss"
    restore_best_weights: bool = True
    eval_train: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        check(
            isinstance(self.lr, (int, float)) and self.lr > 0 and math.isfinite(self.lr),
            "lr",
            self.lr,
            "a positive number",
        )
        check(
            isinstance(self.epochs, int) and self.epochs > 0,
            "epochs",
            self.epochs,
            "a positive int",
        )
        check(
            isinstance(self.batch_size, int) and self.batch_size > 0,
            "batch_size",
            self.batch_size,
            "a positive int",
        )
        for h in self.hidden:
            check(h > 0, "hidden", self.hidden, "positive layer sizes")
        activations.get(self.activation)
        for name in ("l2", "l1"):
            check(getattr(self, name) >= 0, name, getattr(self, name), "a non-negative number")
        if self.max_norm is not None:
            check(self.max_norm > 0, "max_norm", self.max_norm, "a positive number")
        if self.momentum is not None:
            check(0 <= self.momentum < 1, "momentum", self.momentum, "a number in [0, 1)")
        if self.early_stopping_patience is not None:
            check(
                self.early_stopping_patience >= 0,
                "early_stopping_patience",
                self.early_stopping_patience,
                "a non-negative int",
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MLPConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown MLP configuration keys {unknown}; valid: {sorted(names)}")
        return cls(**d)

    def group_key(self) -> str:
        """Configurations with equal keys can train together as one ensemble."""
        d = self.to_dict()
        for k in PER_MEMBER_FIELDS:
            d.pop(k)
        return repr(sorted(d.items()))

    def optimizer_kwargs(self) -> dict:
        opts = dict(self.optimizer_options)
        if self.momentum is not None:
            opts["momentum"] = self.momentum
        return opts


def load_data(cfg: MLPConfig, device: torch.device | str) -> Dataset:
    data = load(cfg.dataset, device=device)
    return data.subset(cfg.n_train)


def build_model(cfg: MLPConfig, data: Dataset, checkpoint=None) -> MLP:
    """The run's MLP, initialized from ``cfg.seed`` (global generator forked, not disturbed).

    ``checkpoint``: where the ``pretrained`` initializer's greedy pretraining (sources ``dbn``
    and ``sda``) checkpoints its layers, so that a resumed run does not pretrain again."""
    with torch.random.fork_rng(devices=[]):
        seed_everything(cfg.seed)
        model = MLP(
            data.n_inputs,
            cfg.hidden,
            data.n_outputs,
            cfg.activation,
            input_dropout=cfg.input_dropout,
            dropout=cfg.dropout,
            dropout_mode=cfg.dropout_mode,
            dropconnect=cfg.dropconnect,
        )
        if cfg.init != "default":
            from smithing import init as _init
            from smithing.experiment import pretrained as _pretrained

            gen = torch.Generator().manual_seed(cfg.seed)
            opts = dict(cfg.init_options)
            if cfg.init == "lsuv" and "data" not in opts:
                opts["data"] = data.train.x[:512].cpu()
            if (
                cfg.init == "pretrained"
                and opts.get("source") in _pretrained.SOURCES
                and "data" not in opts
            ):
                # pretrain on this run's dataset (and training subset) through the sources of
                # smithing.experiment.pretrained; their layers are cached per process there
                opts["dataset"] = cfg.dataset
                if cfg.n_train is not None:
                    opts.setdefault("n_train", cfg.n_train)
                if checkpoint is not None:
                    opts["checkpoint"] = checkpoint
            _init.apply(model, cfg.init, generator=gen, **opts)
    return model


def _early_stopping(cfg: MLPConfig) -> EarlyStopping | None:
    if cfg.early_stopping_patience is None:
        return None
    return EarlyStopping(
        monitor=cfg.early_stopping_monitor,
        patience=cfg.early_stopping_patience,
        restore_best_weights=cfg.restore_best_weights,
    )


def _regularizer(cfg: MLPConfig, n: int) -> list | None:
    """The run's regularizers (:mod:`smithing.regularize.protocol`), or None."""
    from smithing.regularize import MaxNorm, Penalty

    regs: list = []
    if cfg.l2 or cfg.l1:
        regs.append(Penalty(l2=cfg.l2, l1=cfg.l1, n=n))  # lam/(2n) sum w^2 + lam/n sum |w|
    if cfg.max_norm:
        regs.append(MaxNorm(c=cfg.max_norm))  # each unit's incoming vector
    return regs or None


def train_one(
    cfg: MLPConfig,
    device: torch.device | str = "cpu",
    progress: Callable[[int, dict], None] | None = None,
    data: Dataset | None = None,
    *,
    model: MLP | None = None,
    callbacks: Sequence[Callable] = (),
    loss: Callable | None = None,
    checkpoint=None,
) -> tuple[MLP, History]:
    """Train one configuration; never raises on divergence (see ``History.status``).

    Studies with their own runs pass a prepared ``data`` (e.g. noisy labels), a ``model`` they
    already inspected at initialization, per-epoch ``callbacks`` and a ``loss`` (see ``fit``).
    ``checkpoint``: a :class:`smithing.checkpoint.Checkpointer`; training resumes from
    it and saves to it (see ``fit``).
    """
    data = data if data is not None else load_data(cfg, device)
    if model is None:
        pre = checkpoint.sub("pretrain") if checkpoint is not None else None
        model = build_model(cfg, data, checkpoint=pre).to(device)
    with torch.random.fork_rng(devices=[]):
        seed_everything(cfg.seed + 1_000_003)  # dropout masks: reproducible per seed
        hist = fit(
            model,
            data,
            epochs=cfg.epochs,
            lr=cfg.lr,
            batch_size=cfg.batch_size,
            optimizer=cfg.optimizer,
            optimizer_options=cfg.optimizer_kwargs(),
            schedule=cfg.schedule,
            schedule_options=cfg.schedule_options,
            seed=cfg.seed,
            early_stopping=_early_stopping(cfg),
            regularizer=_regularizer(cfg, len(data.train)),
            clip_norm=cfg.clip_norm,
            eval_train=cfg.eval_train,
            progress=progress,
            callbacks=callbacks,
            loss=loss,
            device=device,
            **({} if checkpoint is None else {"checkpoint": checkpoint}),
        )
    hist.config = cfg.to_dict()
    return model, hist


def can_batch(cfgs: Sequence[MLPConfig]) -> bool:
    return len({c.group_key() for c in cfgs}) == 1 and cfgs[0].clip_norm is None


def train_group(
    cfgs: Sequence[MLPConfig],
    device: torch.device | str = "cpu",
    progress: Callable[[int, list[dict]], None] | None = None,
    data: Dataset | None = None,
    checkpoint=None,
) -> list[tuple[MLP, History]]:
    """Train same-shape configurations as one batched ensemble (see ``fit_ensemble``);
    ``checkpoint`` as in :func:`train_one`."""
    from smithing.train.ensemble import fit_ensemble

    if not can_batch(cfgs):
        raise ValueError(
            "configurations differ in more than per-member fields "
            f"{PER_MEMBER_FIELDS}; train them separately"
        )
    c0 = cfgs[0]
    data = data if data is not None else load_data(c0, device)
    models = [
        build_model(
            c, data, checkpoint=checkpoint.sub(f"pretrain{i}") if checkpoint is not None else None
        ).to(device)
        for i, c in enumerate(cfgs)
    ]
    regularizer = _member_regularizer(cfgs, len(data.train), device)
    with torch.random.fork_rng(devices=[]):
        seed_everything(c0.seed + 1_000_003)
        hists = fit_ensemble(
            models,
            data,
            seeds=[c.seed for c in cfgs],
            lrs=[c.lr for c in cfgs],
            epochs=c0.epochs,
            batch_size=c0.batch_size,
            optimizer=c0.optimizer,
            optimizer_options=c0.optimizer_kwargs(),
            schedule=c0.schedule,
            schedule_options=c0.schedule_options,
            early_stopping=(lambda: _early_stopping(c0))
            if c0.early_stopping_patience is not None
            else None,
            regularizer=regularizer,
            eval_train=c0.eval_train,
            progress=progress,
            device=device,
            **({} if checkpoint is None else {"checkpoint": checkpoint}),
        )
    for c, h in zip(cfgs, hists):
        h.config = c.to_dict()
    return list(zip(models, hists))


def _member_regularizer(cfgs: Sequence[MLPConfig], n: int, device) -> list | None:
    """Per-member penalty strengths and max-norm radii for the stacked parameters."""
    if not any(c.l2 or c.l1 or c.max_norm for c in cfgs):
        return None
    from smithing.regularize import MaxNorm, Penalty

    def strengths(values):
        return torch.tensor(values, dtype=torch.float32, device=device)

    regs: list = []
    pen = Penalty(
        l2=strengths([c.l2 for c in cfgs]),
        l1=strengths([c.l1 for c in cfgs]),
        n=n,
        members_axis=True,
    )
    if pen.active:
        regs.append(pen)
    if any(c.max_norm for c in cfgs):  # members without one: radius inf, a no-op
        regs.append(MaxNorm(c=strengths([c.max_norm or math.inf for c in cfgs]), members_axis=True))
    return regs


def with_overrides(cfg: MLPConfig, **kw) -> MLPConfig:
    return replace(cfg, **kw)
