"""``smithing train``: train one MLP and print a summary (``--save PATH`` keeps the model)."""

from __future__ import annotations

import json
import sys

from smithing.cli._common import (
    CLIError,
    console,
    device,
    key_values,
    nonneg_float,
    nonneg_int,
    positive_float,
    positive_int,
    speed_args,
    threads_arg,
)

NAME = "train"
HELP = "train one MLP and print a summary"


def add_arguments(t) -> None:
    t.add_argument("--dataset", default="digits")
    t.add_argument("--hidden", type=positive_int, nargs="+", default=[100], metavar="N")
    t.add_argument("--activation", default="relu")
    t.add_argument("--init", default="default", help="initializer (see `smithing list`)")
    t.add_argument("--init-option", action="append", metavar="KEY=VALUE", dest="init_options")
    t.add_argument("--epochs", type=positive_int, default=20)
    t.add_argument("--lr", type=positive_float, default=0.03)
    t.add_argument("--batch-size", type=positive_int, default=32)
    t.add_argument("--optimizer", default="momentum")
    t.add_argument("--momentum", type=nonneg_float, default=None)
    t.add_argument(
        "--optimizer-option", action="append", metavar="KEY=VALUE", dest="optimizer_options"
    )
    t.add_argument("--schedule", default=None, help="learning-rate schedule name")
    t.add_argument(
        "--schedule-option", action="append", metavar="KEY=VALUE", dest="schedule_options"
    )
    t.add_argument("--early-stopping-patience", type=nonneg_int, default=None)
    t.add_argument("--early-stopping-monitor", default="valid_loss")
    t.add_argument("--l2", type=nonneg_float, default=0.0, help="lambda of lambda/(2n) sum w^2")
    t.add_argument("--l1", type=nonneg_float, default=0.0, help="lambda of lambda/n sum |w|")
    t.add_argument("--max-norm", type=positive_float, default=None)
    t.add_argument(
        "--dropout",
        type=nonneg_float,
        nargs="+",
        default=None,
        metavar="P",
        help="hidden dropout P, or input and hidden dropout P_IN P_HIDDEN",
    )
    t.add_argument(
        "--dropconnect",
        type=nonneg_float,
        default=0.0,
        metavar="P",
        help="DropConnect drop probability of the hidden layers' weights",
    )
    t.add_argument("--dropout-mode", default="inverted", help="inverted | lecture | gaussian")
    t.add_argument("--clip-norm", type=positive_float, default=None)
    t.add_argument(
        "--n-train", type=positive_int, default=None, help="use only the first N training examples"
    )
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default="cpu")
    t.add_argument(
        "--save",
        default=None,
        metavar="PATH",
        help="write the trained model to PATH (safetensors + JSON description; "
        "smithing.load_model(PATH) rebuilds it)",
    )
    t.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    threads_arg(t)
    speed_args(t)


def config_from_args(args):
    from smithing.experiment.mlp import MLPConfig

    input_dropout, dropout = 0.0, 0.0
    if args.dropout:
        if len(args.dropout) == 1:
            dropout = args.dropout[0]
        elif len(args.dropout) == 2:
            input_dropout, dropout = args.dropout
        else:
            raise CLIError("--dropout takes one (hidden) or two (input, hidden) probabilities")
    return MLPConfig(
        dataset=args.dataset,
        hidden=tuple(args.hidden),
        activation=args.activation,
        init=args.init,
        init_options=key_values(args.init_options),
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        optimizer_options=key_values(args.optimizer_options),
        schedule=args.schedule,
        schedule_options=key_values(args.schedule_options),
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


def run(args) -> int:
    from smithing.experiment.mlp import load_data, train_one
    from smithing.experiment.validate import validate_mlp_config

    dev = device(args.device)
    cfg = config_from_args(args)
    validate_mlp_config(cfg)  # every name, before any data is loaded
    data = load_data(cfg, dev)
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
            console=console(stderr=True),
            transient=True,
        ) as prog:
            task = prog.add_task("epochs", total=cfg.epochs, info="")

            def progress(epoch, rec):
                prog.update(
                    task,
                    completed=epoch,
                    info=f"loss {rec['train_loss']:.4f} valid err {rec['valid_error']:.4f}",
                )

            model, hist = train_one(cfg, dev, progress=progress, data=data)
    else:
        model, hist = train_one(cfg, dev, data=data)
    summary = {"dataset": cfg.dataset, "device": str(dev), **hist.summary()}
    if args.save:
        from smithing.models import save_model

        summary["saved"] = str(
            save_model(model, args.save, config=cfg.to_dict(), metrics=hist.final)
        )
    if args.json:
        print(json.dumps(summary))
    else:
        from rich.table import Table

        table = Table(title=f"smithing train: {data.summary()}", title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in summary.items():
            table.add_row(k, f"{v:.4f}" if isinstance(v, float) else str(v))
        console().print(table)
        if hist.status == "diverged":
            print(f"smithing train: the run diverged: {hist.message}", file=sys.stderr)
    return 0
