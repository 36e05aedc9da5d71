#!/usr/bin/env python3
"""Mutation testing of the core with mutmut: how many deliberately broken versions of a module
its tests catch.

    python scripts/mutate.py                      # the default targets below
    python scripts/mutate.py src/smithing/optim:tests/test_optim.py,tests/test_schedules.py

Each target ``MODULE:TESTS`` is mutated in a scratch copy of ``src/``, ``tests/`` and
``pyproject.toml`` as they are on disk, so the checkout itself is never touched. The score per
module is ``killed / (killed + survived + no tests + timeout)``; the project's bar is 90 %.
Survivors are listed (``mutmut show NAME`` inside the scratch copy prints one, ``--keep`` keeps
it) so that a missing test can be written.

mutmut 3 does not mutate decorated functions (its trampoline is itself a decorator). So that
``@property``, ``@torch.no_grad()``, ``@contextmanager`` and the registries' ``@register(...)``
functions are scored too, the scratch copy of the mutated module is first rewritten without
decorator syntax: ``@a @b def f`` becomes ``def f`` followed by ``f = a(b(f))``, which Python
defines to be the same thing (the decorators run in the same order, on the same function, at
the same place). ``@staticmethod`` / ``@classmethod`` alone (which mutmut handles) and
``@overload`` stubs are left as they are; ``--no-undecorate`` turns the rewrite off.

Needs ``pip install mutmut`` (the ``dev`` extra has it); fork-based, so Linux or macOS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: module : the tests that are meant to catch a broken version of it
DEFAULT = [
    "src/smithing/regularize/constraints.py:tests/regularize/",
    "src/smithing/optim:tests/test_optim.py,tests/test_schedules.py,"
    "tests/train/test_trainer_vocabulary.py,tests/test_optim_exact.py",
    "src/smithing/regularize/penalties.py:tests/regularize/test_penalties.py,"
    "tests/regularize/test_penalties_exact.py,tests/train/test_regularizers.py",
    "src/smithing/nn/dropout.py:tests/nn/test_dropout.py,tests/nn/test_dropout_exact.py,"
    "tests/nn/test_nn_properties.py",
    "src/smithing/init/rules.py:tests/test_init.py,tests/test_init_rules_exact.py",
    "src/smithing/init/structured.py:tests/test_init.py,tests/test_init_rules_exact.py",
    "src/smithing/init/lsuv.py:tests/test_init.py,tests/nn/test_lsuv_dropconnect.py,"
    "tests/test_lsuv_exact.py",
    "src/smithing/init/resolve.py:tests/test_init.py,tests/test_init_rules_exact.py,"
    "tests/test_registry.py,tests/test_lsuv_exact.py,tests/test_init_resolve_exact.py",
    "src/smithing/init/pretrained.py:tests/test_init.py,tests/pretrain/test_pretrained_init.py,"
    "tests/test_init_pretrained_exact.py",
    "src/smithing/init/registry.py:tests/test_init.py,tests/test_registry.py,"
    "tests/test_init_resolve_exact.py",
    "src/smithing/regularize/selection.py:tests/regularize/test_penalties.py,"
    "tests/regularize/test_penalties_exact.py,tests/train/test_regularizers.py",
    "src/smithing/train/clipping.py:tests/train/test_clipping.py,tests/train/test_clipping_exact.py",
    "src/smithing/train/sequence.py:tests/train/test_sequence.py,tests/train/test_sequence_exact.py,"
    "tests/train/test_sequence_edges.py,tests/train/test_sequence_checkpoint.py,"
    "tests/train/test_checkpoint_v1_files.py",
    "src/smithing/train/gradient_flow.py:tests/train/test_gradient_flow.py,"
    "tests/train/test_gradient_flow_exact.py",
    "src/smithing/train/loop.py:tests/train/test_loop.py,tests/train/test_loop_exact.py,"
    "tests/train/test_train_properties.py,tests/train/test_trainer_vocabulary.py,"
    "tests/train/test_regularizers.py,tests/train/test_checkpoint.py,"
    "tests/train/test_checkpoint_v1_files.py",
    "src/smithing/pretrain/rbm/functional.py:tests/pretrain/test_rbm.py,"
    "tests/pretrain/test_pretrain_properties.py,tests/test_reference_steps_pretrain.py",
    "src/smithing/pretrain/autoencoder/functional.py:tests/pretrain/test_autoencoder.py,"
    "tests/pretrain/test_autoencoder_exact.py,tests/pretrain/test_pretrain_properties.py,"
    "tests/test_reference_steps_pretrain.py",
    "src/smithing/nn/dropconnect.py:tests/nn/test_dropconnect_exact.py,tests/nn/test_dropconnect.py,"
    "tests/nn/test_dropconnect_bits.py",
    "src/smithing/nn/mlp.py:tests/nn/test_mlp_exact.py,tests/nn/test_nn_properties.py,"
    "tests/test_models.py",
    "src/smithing/nn/rnn:tests/nn/test_rnn_exact.py,tests/nn/test_rnn.py",
    "src/smithing/regularize/prune:tests/regularize/test_prune_exact.py,tests/regularize/test_prune.py,"
    "tests/test_prune_gauss_newton.py",
    "src/smithing/regularize/protocol.py:tests/regularize/test_protocol_exact.py,"
    "tests/train/test_regularizers.py",
    "src/smithing/pretrain/hybrid/functional.py:tests/pretrain/test_hybrid.py,"
    "tests/pretrain/test_hybrid_exact.py,tests/pretrain/test_pretrain_properties.py,"
    "tests/test_reference_steps_pretrain.py",
    "src/smithing/pretrain/ais.py:tests/pretrain/test_ais.py,tests/pretrain/test_ais_exact.py,"
    "tests/pretrain/test_hybrid.py",
    "src/smithing/pretrain/rbm/modules.py:tests/pretrain/test_rbm.py,"
    "tests/pretrain/test_rbm_modules_exact.py,tests/pretrain/test_pretrain_properties.py,"
    "tests/test_reference_steps_pretrain.py",
    "src/smithing/pretrain/hybrid/modules.py:tests/pretrain/test_hybrid.py,"
    "tests/pretrain/test_hybrid_modules_exact.py,tests/pretrain/test_pretrain_properties.py,"
    "tests/test_reference_steps_pretrain.py",
    "src/smithing/pretrain/autoencoder/modules.py:tests/pretrain/test_autoencoder.py,"
    "tests/pretrain/test_autoencoder_exact.py,tests/pretrain/test_autoencoder_modules_exact.py,"
    "tests/pretrain/test_pretrain_properties.py,tests/test_reference_steps_pretrain.py",
    "src/smithing/pretrain/_layout.py:tests/pretrain/test_layout.py,"
    "tests/pretrain/test_layer_stack.py,tests/pretrain/test_stacks_exact.py",
    # not test_dbn.py: under mutmut, greedy.py's instrumented LayerPretrainer protocol fails its
    # runtime isinstance check (test_greedy_stack_feeds_codes_upward), a mutmut artefact
    "src/smithing/pretrain/greedy.py:tests/pretrain/test_stacks_exact.py,"
    "tests/pretrain/test_layer_stack.py,tests/pretrain/test_stack.py",
    "src/smithing/pretrain/dbn.py:tests/pretrain/test_stacks_exact.py,tests/pretrain/test_dbn.py,"
    "tests/pretrain/test_layer_stack.py",
    "src/smithing/pretrain/rbm/training.py:tests/pretrain/test_rbm.py,"
    "tests/pretrain/test_rbm_training_exact.py,"
    "tests/pretrain/test_rbm_training_edges.py,"
    "tests/pretrain/test_pretrain_properties.py,"
    "tests/test_reference_steps_pretrain.py,"
    "tests/pretrain/test_rbm_checkpoint.py::test_train_rbm_resumes_bitwise,"
    "tests/pretrain/test_rbm_checkpoint.py::test_train_rbm_refuses_another_runs_checkpoint",
    "src/smithing/pretrain/hybrid/training.py:tests/pretrain/test_hybrid.py,"
    "tests/pretrain/test_hybrid_training_exact.py,tests/pretrain/test_hybrid_training_edges.py,"
    "tests/pretrain/test_hybrid_signatures.py,tests/pretrain/test_hybrid_checkpoint.py",
    "src/smithing/pretrain/hybrid/loop.py:tests/pretrain/test_hybrid.py,"
    "tests/pretrain/test_hybrid_training_exact.py,tests/pretrain/test_hybrid_training_edges.py,"
    "tests/pretrain/test_hybrid_loop_exact.py,tests/pretrain/test_hybrid_loop_edges.py,"
    "tests/pretrain/test_hybrid_signatures.py,tests/pretrain/test_hybrid_checkpoint.py",
    "src/smithing/pretrain/stack_spec.py:tests/pretrain/test_stack.py,"
    "tests/pretrain/test_stack_checkpoint.py,tests/pretrain/test_layering.py,"
    "tests/pretrain/test_stack_spec_exact.py",
    "src/smithing/train/diagnostics:tests/train/test_diagnostics.py,"
    "tests/train/test_monitor_tensorboard.py,tests/train/test_diagnostics_stats_exact.py,"
    "tests/train/test_gradient_monitor_exact.py,tests/train/test_gradient_monitor_edges.py",
    "src/smithing/pretrain/stack.py:tests/pretrain/test_stack.py,"
    "tests/pretrain/test_stack_checkpoint.py,tests/pretrain/test_layering.py,"
    "tests/pretrain/test_stack_exact.py",
    "src/smithing/nn/dropconnect_kernels.py:tests/nn/test_dropconnect_kernels_exact.py,"
    "tests/nn/test_dropconnect_bits.py",
    "src/smithing/train/stacked.py:tests/train/test_stacked_exact.py,"
    "tests/train/test_ensemble_exact.py,tests/train/test_ensemble.py",
    "src/smithing/train/ensemble.py:tests/train/test_ensemble.py,"
    "tests/train/test_ensemble_exact.py,tests/train/test_regularizers.py,"
    "tests/train/test_checkpoint.py,tests/train/test_checkpoint_v1_files.py,"
    "tests/train/test_ensemble_edges.py",
    "src/smithing/train/ensemble_step.py:tests/train/test_ensemble.py,"
    "tests/train/test_ensemble_exact.py,tests/train/test_regularizers.py,"
    "tests/train/test_checkpoint.py,tests/train/test_checkpoint_v1_files.py",
    "src/smithing/pretrain/autoencoder/training.py:tests/pretrain/test_autoencoder.py,"
    "tests/pretrain/test_autoencoder_exact.py,tests/pretrain/test_autoencoder_training_exact.py,"
    "tests/pretrain/test_autoencoder_checkpoint.py,tests/pretrain/test_pretrain_properties.py,"
    "tests/test_reference_steps_pretrain.py",
    "src/smithing/pretrain/autoencoder/stacks.py:tests/pretrain/test_stacks_exact.py,"
    "tests/pretrain/test_autoencoder.py,tests/pretrain/test_layer_stack.py",
]
BAR = 0.90
#: decorators left in place: mutmut mutates these itself, or they must stay (typing stubs)
KEEP_DECORATORS = {"staticmethod", "classmethod", "overload", "typing.overload"}


def _decorator_name(dec) -> str:
    import libcst as cst

    node = dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator
    parts = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
    return ".".join(reversed(parts))


def undecorate(source: str) -> tuple[str, int]:
    """``source`` with every module- and class-level decorated function rewritten as a plain
    ``def`` followed by ``name = d1(d2(...(name)))`` (outermost decorator first, as Python
    applies them); returns the new source and how many functions were rewritten."""
    import libcst as cst

    count = 0

    def rewrite(body):
        nonlocal count
        out = []
        for stmt in body:
            if isinstance(stmt, cst.ClassDef):
                stmt = stmt.with_changes(body=stmt.body.with_changes(body=rewrite(stmt.body.body)))
            if (
                isinstance(stmt, cst.FunctionDef)
                and stmt.decorators
                and not any(_decorator_name(d) in KEEP_DECORATORS for d in stmt.decorators)
            ):
                name = stmt.name.value
                value: cst.BaseExpression = cst.Name(name)
                for dec in reversed(stmt.decorators):
                    value = cst.Call(func=dec.decorator, args=[cst.Arg(value)])
                assign = cst.SimpleStatementLine(
                    [cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=value)]
                )
                out += [stmt.with_changes(decorators=[]), assign]
                count += 1
            else:
                out.append(stmt)
        return out

    module = cst.parse_module(source)
    return module.with_changes(body=rewrite(module.body)).code, count


def run_target(
    target: str,
    keep: bool,
    undecorate_functions: bool = True,
    jobs: int | None = None,
    timeout_multiplier: float | None = None,
) -> dict:
    module, _, tests = target.partition(":")
    if not tests:
        sys.exit(f"mutate: {target!r} is not MODULE:TESTS (e.g. src/smithing/optim:tests/)")
    test_paths = tests.split(",")  # one or more test files, folders or pytest node ids
    for p in (module, *(t.split("::")[0] for t in test_paths)):
        if not (ROOT / p).exists():
            sys.exit(f"mutate: {p} does not exist")
    scratch = Path(tempfile.mkdtemp(prefix="smithing-mutate-"))
    for name in ("src", "tests", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, scratch / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, scratch / name)
    rewritten = 0
    if undecorate_functions:
        target_path = scratch / module
        files = sorted(target_path.rglob("*.py")) if target_path.is_dir() else [target_path]
        for f in files:
            new, n = undecorate(f.read_text())
            if n:
                f.write_text(new)
                rewritten += n
    config = {
        "source_paths": [module],
        "pytest_add_cli_args_test_selection": test_paths,
        "also_copy": ["tests", "src"],
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-x", "-q"],
    }
    if timeout_multiplier is not None:  # CPU limit per mutant: 2 * multiplier * (tests' time + 1 s)
        config["timeout_multiplier"] = timeout_multiplier
    with open(scratch / "pyproject.toml", "a") as f:  # TOML arrays of strings are JSON arrays
        f.write(
            "\n[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items())
        )
    mutmut = shutil.which("mutmut") or str(Path(sys.executable).with_name("mutmut"))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    print(f"mutate: {module} against {tests} (scratch copy {scratch}; "
          f"{rewritten} decorated functions rewritten to be mutated)", flush=True)  # fmt: skip
    subprocess.run([mutmut, "run", "--max-children", str(jobs or os.cpu_count() or 1)], cwd=scratch,
                   env=env, stdout=subprocess.DEVNULL, check=False)  # fmt: skip
    out = subprocess.run([mutmut, "results", "--all", "true"], cwd=scratch, env=env,
                         capture_output=True, text=True).stdout  # fmt: skip
    status: dict[str, str] = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+): (.+)$", line)
        if m and "__mutmut_" in m.group(1):
            status[m.group(1)] = m.group(2).strip()
    counts: dict[str, int] = {}
    for s in status.values():
        counts[s] = counts.get(s, 0) + 1
    killed = counts.get("killed", 0)
    total = sum(counts.values())
    survivors = sorted(n for n, s in status.items() if s != "killed")
    if not keep:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"module": module, "tests": tests, "counts": counts, "total": total,
            "undecorated": rewritten,
            "score": killed / total if total else float("nan"), "survivors": survivors,
            "scratch": str(scratch) if keep else None}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "targets", nargs="*", default=DEFAULT, help="MODULE:TESTS (default: %(default)s)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies (to inspect)")
    ap.add_argument("--no-undecorate", action="store_true",
                    help="leave decorated functions alone (mutmut skips them)")  # fmt: skip
    ap.add_argument("--jobs", type=int, default=None,
                    help="mutants tested at once (default: the number of CPUs)")  # fmt: skip
    ap.add_argument("--timeout-multiplier", type=float, default=None,
                    help="mutmut's timeout_multiplier (default 15: a mutant that loops may run "
                    "30x its tests' CPU time); a timeout counts as not killed")  # fmt: skip
    args = ap.parse_args()
    results = [
        run_target(t, args.keep, not args.no_undecorate, args.jobs, args.timeout_multiplier)
        for t in args.targets
    ]
    print(f"\n{'module':48s} {'mutants':>8s} {'killed':>7s} {'score':>7s}")
    for r in results:
        print(f"{r['module']:48s} {r['total']:8d} {r['counts'].get('killed', 0):7d} "
              f"{100 * r['score']:6.1f}%")  # fmt: skip
        others = {k: v for k, v in r["counts"].items() if k != "killed"}
        if others:
            print(f"    not killed: {others}")
        if r["total"] and r["counts"].get("not checked", 0) == r["total"]:
            print("    nothing was checked: the tests failed on the unmutated code under mutmut "
                  "(run `mutmut run` in the --keep copy to see why)")  # fmt: skip
        for name in r["survivors"][:40]:
            print(f"    {name}")
    return 0 if all(r["score"] >= BAR for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
