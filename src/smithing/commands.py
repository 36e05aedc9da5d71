"""What each CLI verb does (the CLI only parses arguments and calls these)."""

from __future__ import annotations

import json
import sys

import torch

from smithing.cli import CLIError, _key_values


def _device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise CLIError(f"--device {name!r} is invalid: expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CLIError("--device cuda was asked for but no CUDA device is available")
    return dev


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr)


def cmd_list(args) -> int:
    from rich.table import Table

    from smithing import registries

    con = _console()
    for title, entries in registries.all_registries():
        table = Table(title=title, title_justify="left", show_header=False, box=None)
        table.add_column("name", style="bold")
        table.add_column("description")
        for name, desc in entries:
            table.add_row(name, desc)
        con.print(table)
        con.print()
    return 0


def cmd_datasets(args) -> int:
    from smithing.data import DATASETS, data_dir, names

    names()
    rows = []
    for e in DATASETS.entries():
        spec = e.obj
        status = spec.status(data_dir()) if spec.status else []
        if not spec.files and not status:
            state = "embedded" if not spec.files else "?"
        elif all(s.get("present") and s.get("md5_ok") is not False for s in status):
            state = "present"
        elif any(s.get("present") for s in status):
            state = "partial"
        else:
            state = "missing (downloaded on first use)"
        rows.append({"name": spec.name, "state": state, "description": spec.description,
                     "files": status})
    if args.json:
        print(json.dumps({"data_dir": str(data_dir()), "datasets": rows}, indent=1,
                         default=str))
        return 0
    from rich.table import Table

    table = Table(title=f"datasets (data dir: {data_dir()})", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("state")
    table.add_column("description")
    for r in rows:
        table.add_row(r["name"], r["state"], r["description"])
    _console().print(table)
    return 0


def cmd_train(args) -> int:
    from smithing.runner.mlp import MLPConfig, load_data, train_one

    device = _device(args.device)
    input_dropout, dropout = 0.0, 0.0
    if args.dropout:
        if len(args.dropout) == 1:
            dropout = args.dropout[0]
        elif len(args.dropout) == 2:
            input_dropout, dropout = args.dropout
        else:
            raise CLIError("--dropout takes one (hidden) or two (input, hidden) probabilities")
    cfg = MLPConfig(
        dataset=args.dataset,
        hidden=tuple(args.hidden),
        activation=args.activation,
        init=args.init,
        init_options=_key_values(args.init_options),
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        optimizer_options=_key_values(args.optimizer_options),
        schedule=args.schedule,
        schedule_options=_key_values(args.schedule_options),
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        n_train=args.n_train,
        l2=args.l2,
        l1=args.l1,
        max_norm=args.max_norm,
        input_dropout=input_dropout,
        dropout=dropout,
        dropout_mode=args.dropout_mode,
        clip_norm=args.clip_norm,
        early_stopping_patience=args.early_stopping_patience,
        early_stopping_monitor=args.early_stopping_monitor,
    )
    _validate_names(cfg)
    data = load_data(cfg, device)
    show = not args.quiet and sys.stderr.isatty() or (not args.quiet and not args.json)
    if show:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeRemainingColumn)

        with Progress(TextColumn("[bold]train[/]"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                      console=_console(stderr=True), transient=True) as prog:
            task = prog.add_task("epochs", total=cfg.epochs, info="")

            def progress(epoch, rec):
                prog.update(task, completed=epoch,
                            info=f"loss {rec['train_loss']:.4f} valid err "
                                 f"{rec['valid_error']:.4f}")

            model, hist = train_one(cfg, device, progress=progress, data=data)
    else:
        model, hist = train_one(cfg, device, data=data)
    summary = {"dataset": cfg.dataset, "device": str(device), **hist.summary()}
    if args.json:
        print(json.dumps(summary))
    else:
        from rich.table import Table

        table = Table(title=f"smithing train: {data.summary()}", title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in summary.items():
            table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
        _console().print(table)
        if hist.status == "diverged":
            print(f"smithing train: the run diverged: {hist.message}", file=sys.stderr)
    return 0


def _validate_names(cfg) -> None:
    """Fail fast on unknown names before any data is loaded."""
    from smithing import optim
    from smithing.data import DATASETS, names

    names()
    DATASETS.get(cfg.dataset)
    optim.OPTIMIZERS.get(cfg.optimizer)
    if cfg.schedule is not None:
        optim.SCHEDULES.get(cfg.schedule)
    if cfg.init != "default":
        from smithing import init

        init.INITIALIZERS.get(cfg.init)
