"""``smithing doctor PACKAGE.MODULE:FACTORY --dataset NAME``: diagnose your own model.

``FACTORY`` is called to build the ``nn.Module``; it may take any of the keyword arguments
``n_inputs``, ``n_outputs``, ``n_classes``, ``input_shape`` (read from the dataset), or none.
The current directory is importable, as with ``python -m``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import sys

from smithing.cli._common import CLIError, device, positive_int, threads_arg

NAME = "doctor"
HELP = "diagnose any PyTorch model at initialization: one HTML page of findings and advice"

_FORM = "expected PACKAGE.MODULE:FACTORY (e.g. mypkg.models:make_net)"


def add_arguments(p) -> None:
    p.add_argument(
        "factory",
        metavar="PACKAGE.MODULE:FACTORY",
        help="the function (or class) that builds your nn.Module",
    )
    p.add_argument("--dataset", default="digits", help="the batch comes from this dataset")
    p.add_argument("--out", default="smithing-doctor", help="folder of the page (doctor.html)")
    p.add_argument(
        "--examples", type=positive_int, default=512, help="training examples measured on"
    )
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument(
        "--activation",
        default=None,
        help="the hidden activation, when the model applies it as a function (F.relu)",
    )
    p.add_argument("--optimizer", default="sgd", help="optimizer of the LR range test")
    p.add_argument("--lr-steps", type=positive_int, default=60, help="steps of the LR range test")
    p.add_argument("--no-lr-test", action="store_true", help="skip the LR range test")
    p.add_argument("--seed", type=int, default=0, help="seeds torch before the factory runs")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--json", action="store_true", help="print the findings as JSON")
    threads_arg(p)


def load_factory(spec: str):
    """The callable named by ``PACKAGE.MODULE:FACTORY``; a :class:`CLIError` otherwise."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr or ":" in attr:
        raise CLIError(f"FACTORY {spec!r} is invalid: {_FORM}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise CLIError(f"FACTORY {spec!r}: cannot import module {module_name!r} ({e})") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CLIError(f"FACTORY {spec!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise CLIError(f"FACTORY {spec!r}: {attr!r} is a {type(obj).__name__}, not callable")
    return obj


def build_model(factory, data):
    from torch import nn

    offered = {
        "n_inputs": data.n_inputs,
        "n_outputs": data.n_outputs,
        "n_classes": data.n_classes,
        "input_shape": data.input_shape,
    }
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        params = {}
    kwargs = {k: v for k, v in offered.items() if k in params}
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise CLIError(f"the factory returned a {type(model).__name__}, expected a torch.nn.Module")
    return model


def run(args) -> int:
    import torch

    import smithing.data
    from smithing.doctor import doctor

    factory = load_factory(args.factory)
    dev = device(args.device)
    data = smithing.data.load(args.dataset, device=dev)
    torch.manual_seed(args.seed)
    model = build_model(factory, data).to(dev)
    n = min(args.examples, len(data.train))
    x, y = data.train.x[:n], data.train.y[:n]
    diag = doctor(
        model,
        (x, y),
        out=args.out,
        title=f"smithing doctor: {args.factory} on {args.dataset}",
        batch_size=args.batch_size,
        activation=args.activation,
        lr_test=not args.no_lr_test,
        lr_steps=max(args.lr_steps, 5),
        optimizer=args.optimizer,
    )
    if args.json:
        print(json.dumps({"page": diag.page, **diag.to_dict()}, default=str))
        return 0
    for f in diag.findings:
        print(f"[{f.severity}] {f.code}: {f.message}")
        if f.advice:
            print(f"    advice: {f.advice}")
    print(f"page: {diag.page}")
    return 0
