"""Configuration checks run once, before any training, by ``smithing train`` and ``smithing run``.

Every name a configuration holds (dataset, optimizer and its options, schedule and its options,
initializer, activation, dropout mode) is looked up in its registry, so a typo such as
``--set schedule=cosin`` fails up front with the registry's message (the valid names and the
closest one) instead of failing each run at training time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields

from smithing.experiment.mlp import MLPConfig
from smithing.experiment.study import Study, Variant

__all__ = ["validate_mlp_config", "mlp_part", "validate_runs"]


def validate_mlp_config(cfg: MLPConfig) -> None:
    """Raise ``ValueError`` (the registries' one format) on any unknown name or option."""
    from smithing import optim
    from smithing.data import DATASETS, names

    names()  # fills the dataset registry
    DATASETS.get(cfg.dataset)
    optim.OPTIMIZERS.get(cfg.optimizer)
    if cfg.optimizer_kwargs():
        import torch

        probe = [torch.zeros(1, requires_grad=True)]
        optim.make(cfg.optimizer, probe, cfg.lr, **cfg.optimizer_kwargs())
    if cfg.schedule is not None and cfg.schedule != "constant":
        optim.SCHEDULES.get(cfg.schedule)
        optim.schedule_factor(cfg.schedule, 0, epochs=cfg.epochs, **cfg.schedule_options)
    if cfg.init != "default":
        from smithing import init

        init.INITIALIZERS.get(cfg.init)
    from smithing.nn.dropout import DROPOUT_MODES

    try:
        DROPOUT_MODES.get(cfg.dropout_mode)
    except ValueError as e:
        raise ValueError(f"dropout_mode={cfg.dropout_mode!r} is invalid: {e}") from None


def mlp_part(config: dict) -> MLPConfig:
    """The :class:`MLPConfig` fields of a run configuration that also holds other keys."""
    names = {f.name for f in fields(MLPConfig)}
    return MLPConfig.from_dict({k: v for k, v in config.items() if k in names})


def validate_runs(study: Study, runs: Iterable[tuple[Variant, int]]) -> None:
    """Check each distinct configuration of ``runs`` once: ``"mlp"`` runs as
    :class:`MLPConfig`, the MLP part of studies whose runs take one (``mlp_keys``), and the
    study's own ``validate`` hook when it has one."""
    seen: set[str] = set()
    for v, _ in runs:
        key = repr(sorted((k, repr(x)) for k, x in v.config.items() if k != "seed"))
        if key in seen:
            continue
        seen.add(key)
        if v.kind == "mlp":
            validate_mlp_config(MLPConfig.from_dict(v.config))
        elif study.mlp_keys:
            validate_mlp_config(mlp_part(v.config))
        if study.validate is not None:
            study.validate(v.config)
