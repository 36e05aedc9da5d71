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
            state = "built in (no download)"
        elif all(s.get("present") and s.get("md5_ok") is not False for s in status):
            state = "present"
        elif any(s.get("present") for s in status):
            state = "partial"
        else:
            state = "missing (downloaded on first use)"
        rows.append(
            {"name": spec.name, "state": state, "description": spec.description, "files": status}
        )
    if args.json:
        print(json.dumps({"data_dir": str(data_dir()), "datasets": rows}, indent=1, default=str))
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
    from smithing.experiment.mlp import MLPConfig, load_data, train_one

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
        dropconnect=args.dropconnect,
        clip_norm=args.clip_norm,
        early_stopping_patience=args.early_stopping_patience,
        early_stopping_monitor=args.early_stopping_monitor,
    )
    _validate_names(cfg)
    data = load_data(cfg, device)
    show = not args.quiet and sys.stderr.isatty() or (not args.quiet and not args.json)
    if show:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(
            TextColumn("[bold]train[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=_console(stderr=True),
            transient=True,
        ) as prog:
            task = prog.add_task("epochs", total=cfg.epochs, info="")

            def progress(epoch, rec):
                prog.update(
                    task,
                    completed=epoch,
                    info=f"loss {rec['train_loss']:.4f} valid err {rec['valid_error']:.4f}",
                )

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


def cmd_run(args) -> int:
    import smithing.studies  # noqa: F401  (registers the studies)
    from smithing.runner.runner import run_study

    device = _device(args.device)
    summary = run_study(
        args.study,
        scale=args.scale,
        dataset=args.dataset,
        seeds=args.seeds,
        device=str(device),
        out=args.out,
        jobs=args.jobs,
        quiet=args.quiet or args.json,
        overrides=_key_values(args.overrides),
        variants=args.variants,
    )
    _print_summary(summary, args)
    return 0


def _print_summary(summary: dict, args) -> None:
    from pathlib import Path

    if args.json:
        print(json.dumps(summary))
        return
    from rich.table import Table

    metric = summary.get("metric", "test_error")
    pct = summary.get("percent", True)
    table = Table(title=f"study {summary['study']}", title_justify="left")
    for c in ("variant", f"{metric} mean", "std", "runs", "diverged", "failed"):
        table.add_column(c)
    for v, s in summary["variants"].items():
        m, sd = s.get("mean"), s.get("std")
        k, unit = (100.0, " %") if pct else (1.0, "")
        table.add_row(
            v,
            "n/a" if m is None else f"{k * m:.4g}{unit}",
            "n/a" if sd is None else f"{k * sd:.3g}",
            str(s["runs"]),
            str(s["diverged"]),
            str(s["failed"]),
        )
    con = _console()
    con.print(table)
    con.print(f"report: {Path(args.out, 'report', summary['study'] + '.html')}")


def cmd_tour(args) -> int:
    import time
    from pathlib import Path

    from smithing.report import write_report
    from smithing.runner.runner import run_study
    from smithing.studies import STUDIES, ordered

    device = _device(args.device)
    names = [s.name for s in ordered() if s.in_tour]
    if args.only:
        for n in args.only:
            STUDIES.get(n)
        names = [n for n in names if n in args.only]
    out = {}
    t0 = time.perf_counter()
    for name in names:
        if not args.quiet and not args.json:
            _console(stderr=True).print(f"[bold]tour[/]: study {name}")
        out[name] = run_study(
            name,
            scale="quick",
            seeds=args.seeds,
            device=str(device),
            out=args.out,
            jobs=args.jobs,
            quiet=args.quiet or args.json,
            report=False,
        )
    index = write_report(args.out)
    if args.json:
        print(
            json.dumps(
                {
                    "studies": out,
                    "report": str(index),
                    "seconds": round(time.perf_counter() - t0, 1),
                }
            )
        )
    else:
        for s in out.values():
            _print_summary(s, args)
        _console().print(f"report: {Path(index)}")
    return 0


def cmd_report(args) -> int:
    from pathlib import Path

    import smithing.studies  # noqa: F401  (registers the studies)
    from smithing.experiment.store import Store
    from smithing.report import write_report

    if not (Path(args.out) / Store.FILENAME).exists():
        raise CLIError(f"no results store in {args.out!r}: run a study first (smithing run ...)")
    index = write_report(args.out)
    print(index)
    return 0


def cmd_export(args) -> int:
    from pathlib import Path

    from smithing.experiment.store import Store

    if not (Path(args.out) / Store.FILENAME).exists():
        raise CLIError(f"no results store in {args.out!r}: run a study first (smithing run ...)")
    with Store(args.out) as store:
        paths = store.export_csv(args.to or Path(args.out) / "export")
    for p in paths:
        print(p)
    return 0
