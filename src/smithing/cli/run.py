"""``smithing run STUDY``: run (resume, or join) a study, then write its report."""

from __future__ import annotations

from smithing.cli._common import key_values, positive_int, print_summary, study_args

NAME = "run"
HELP = "run (or resume) a study and write its report"


def add_arguments(r) -> None:
    r.add_argument("study")
    study_args(r)
    r.add_argument("--dataset", default=None, help="override the study's dataset")
    r.add_argument("--scale", choices=["quick", "paper"], default="quick")
    r.add_argument("--seeds", type=positive_int, default=None, help="seeds per variant")
    r.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        dest="overrides",
        help="override a configuration key of every run (e.g. --set epochs=5)",
    )
    r.add_argument(
        "--variants",
        nargs="+",
        default=None,
        metavar="NAME",
        help="run only these variants (shell patterns, e.g. 'linear-*')",
    )
    r.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: per variant the mean/std final test error",
    )


def run(args) -> int:
    import smithing.studies  # noqa: F401  (registers the studies)
    from smithing.cli._common import runner_kwargs
    from smithing.report import write_report
    from smithing.runner import run_study

    summary = run_study(
        args.study,
        scale=args.scale,
        dataset=args.dataset,
        seeds=args.seeds,
        overrides=key_values(args.overrides),
        variants=args.variants,
        **runner_kwargs(args),
    )
    write_report(args.out, studies=[args.study])
    print_summary(summary, args)
    return 0
