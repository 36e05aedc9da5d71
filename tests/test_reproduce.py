"""``smithing reproduce``: the registry of reproductions, the verb, our numbers beside the
paper's, and the report's Reproductions page."""

from __future__ import annotations

import json
import math

import pytest

import smithing.studies  # noqa: F401  (registers the studies and their reproductions)
from smithing._registry import Entry
from smithing.cli import main
from smithing.experiment import (
    REPRODUCTIONS,
    STUDIES,
    Paper,
    Reproduction,
    RunRecord,
    Study,
    StudyResults,
    Variant,
    register_reproduction,
)
from smithing.experiment.reproductions import evaluate, select_per_seed

TINY = "test-activations-relu"
PAPER = Paper("Nobody & Someone", "A test of the reproduce verb", "nowhere", 2024)

if TINY not in REPRODUCTIONS:  # a test-only reproduction: seconds on the embedded digits
    register_reproduction(
        Reproduction(
            name=TINY,
            paper=PAPER,
            result="relu MLP, one epoch, 8 hidden units, digits test error",
            published=42.5,
            target=("<=", 100.0),
            study="activations",
            scale="quick",
            variants=("relu",),
            overrides={"epochs": 1, "hidden": [8]},
            seeds=2,
            metric="test_error",
            cpu_time=2.0,
            gpu_time="n/a",
            departures=("one epoch only",),
            recipe_status="a test",
        )
    )


def test_list_shows_every_reproduction(capsys):
    assert main(["reproduce"]) == 0
    out = capsys.readouterr().out
    for name in REPRODUCTIONS.names():
        assert name in out
    for name in ("classrbm-hybrid", "rbm-cd25", "dbn", "sda", "adding-irnn"):
        assert name in REPRODUCTIONS
    flat = " ".join(out.split())  # the listing wraps long lines
    for rep in (e.obj for e in REPRODUCTIONS.entries()):  # each one's own published value
        assert f"published {rep.published_text()}; target {rep.target_text()};" in flat, rep.name
    assert main(["reproduce", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["reproductions"]
    assert [r["name"] for r in listed] == REPRODUCTIONS.names()
    for r in listed:
        rep = REPRODUCTIONS.get(r["name"])
        assert (r["published"], r["target"]) == (rep.published, rep.target_text())


def test_declared_reproductions_match_their_studies():
    """Every declared pattern names a variant of its study at its scale, or is reported as
    missing; the metric of the runs is the one the study reports."""
    for rep in (e.obj for e in REPRODUCTIONS.entries()):
        assert rep.study in STUDIES, rep.name
        found, missing = rep.patterns()
        assert found, f"{rep.name}: no pattern matches a variant of {rep.study}"
        assert rep.expected_configs(), rep.name
        assert "estimate" in f"{rep.cpu_time} {rep.gpu_time}" or rep.name == TINY
    assert REPRODUCTIONS.get("adding-irnn").patterns()[1] in ([], ["irnn T=200"])


def test_reproduce_runs_prints_and_reports(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["reproduce", TINY, "--out", out, "--quiet", "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "42.50 %" in text  # the paper's value
    assert "relu" in text and "met" in text and "± " in text
    page = tmp_path / "out" / "report" / "reproductions.html"
    assert page.exists()
    html = page.read_text()
    assert TINY in html and "42.50 %" in html and "one epoch only" in html
    assert "n = 2" in html and "smithing reproduce " + TINY in html
    assert "not run yet" in html  # the real reproductions have no runs in this store
    assert "reproductions.html" in (tmp_path / "out" / "report" / "index.html").read_text()
    # resumable: a second call finds the runs done and reports the same numbers, as JSON
    assert main(["reproduce", TINY, "--out", out, "--quiet", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["reproduction"] == TINY and got["met"] is True and got["runs"] == 2
    (row,) = got["rows"]
    assert row["label"] == "relu" and row["n"] == 2 and row["seeds"] == [0, 1]
    assert 0 <= row["min"] <= row["mean"] <= row["max"] <= 100


def test_unknown_reproduction_is_one_line(capsys):
    assert main(["reproduce", "no-such-thing"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "unknown reproduction 'no-such-thing'" in err and "classrbm-hybrid" in err


def _run(variant: str, seed: int, valid: float, test: float, status: str = "done"):
    final = {"valid_error": valid, "valid_loss": valid, "test_error": test}
    return RunRecord(variant, seed, {"alpha": 0, "seed": seed}, status, final, [], {}, 1.0)


def test_chosen_on_validation_picks_the_lower_validation_error():
    rep = Reproduction(
        name="hand-made",
        paper=PAPER,
        result="x",
        published=1.0,
        target=("<=", 2.0),
        study="nowhere",
        variants=("a=*",),
        metric="test_error",
        select_on=("valid_error", "valid_loss"),
    )
    runs = [
        _run("a=0.1", 0, valid=0.020, test=0.030),  # seed 0: a=0.1 has the lower valid error
        _run("a=1", 0, valid=0.025, test=0.010),
        _run("a=0.1", 1, valid=0.040, test=0.050),
        _run("a=1", 1, valid=0.015, test=0.012),  # seed 1: a=1
        _run("a=0.1", 2, valid=0.010, test=0.020),  # seed 2: a=1 is not complete, no choice
    ]
    row = select_per_seed(rep, StudyResults("s", runs).runs, ["a=0.1", "a=1"])
    assert row.chosen == ["a=0.1", "a=1"] and row.seeds == [0, 1]
    assert row.values == pytest.approx([3.0, 1.2])  # percent
    assert row.pending == 1
    assert row.mean == pytest.approx(2.1) and row.n == 2


@pytest.fixture
def toy_study(monkeypatch):
    """A study with two variants, known to the registry for this test only."""
    study = Study(
        "toy-reproduce",
        "toy",
        lambda scale: [Variant("a=0.1", {"alpha": 0.1}), Variant("a=1", {"alpha": 1})],
    )
    monkeypatch.setitem(STUDIES._entries, study.name, Entry(study.name, study, "toy"))
    return study


def _toy(variant, seed, test, valid=0.1, status="done", **cfg):
    config = {"alpha": float(variant.split("=")[1]) if "." in variant else 1}
    config = {**config, "dataset": "digits", "seed": seed, **cfg}
    final = {"test_error": test, "valid_error": valid, "valid_loss": valid}
    return RunRecord(variant, seed, config, status, final, [], {}, 2.0)


def test_evaluate_matches_the_recipe_and_judges_targets(toy_study):
    base = dict(paper=PAPER, result="r", published=1.0, study=toy_study.name, metric="test_error")
    runs = [
        _toy("a=0.1", 0, 0.010),
        _toy("a=0.1", 1, 0.030),
        _toy("a=0.1", 2, 0.5, lr=9),  # another configuration: not the recipe's run
        _toy("a=1", 0, 0.040),
    ]
    results = StudyResults(toy_study.name, runs)
    mean = Reproduction("m", target=("<=", 2.5), variants=("a=0.1",), scale="quick", **base)
    out = evaluate(mean, results)
    assert out.met is True and out.runs == 2 and out.seconds == 4.0
    assert out.rows[0].mean == pytest.approx(2.0) and out.rows[0].std == pytest.approx(math.sqrt(2))
    every = Reproduction(
        "e", target=("<=", 2.5), every_run=True, variants=("a=0.1",), scale="quick", **base
    )
    assert evaluate(every, results).met is False  # seed 1: 3 %
    assert evaluate(mean, results, seeds=1).rows[0].values == pytest.approx([1.0])
    order = Reproduction(
        "o", target=("increasing", None), variants=("a=0.1", "a=1"), scale="quick", **base
    )
    assert evaluate(order, results).met is True  # 2 % < 4 %
    missing = Reproduction("x", target=("<=", 9.0), variants=("a=0.1", "b"), scale="quick", **base)
    out = evaluate(missing, results)
    assert out.met is None and "not a variant" in out.verdict and out.rows[-1].missing
    empty = evaluate(mean, StudyResults(toy_study.name, []))
    assert empty.met is None and empty.verdict == "not run yet"
    diverged = StudyResults(toy_study.name, [_toy("a=0.1", 0, math.nan, status="diverged")])
    assert evaluate(mean, diverged).met is False


def test_bad_declarations_raise():
    base = dict(paper=PAPER, result="r", published=1.0, study="s", metric="m")
    with pytest.raises(ValueError, match="target op"):
        Reproduction("b", target=("=", 1.0), **base)
    with pytest.raises(ValueError, match="display"):
        Reproduction("b", target=("<", 1.0), display="furlongs", **base)
    with pytest.raises(ValueError, match="variants"):
        Reproduction("b", target=("increasing", None), variants=("one",), **base)
