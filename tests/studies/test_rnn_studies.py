"""Smoke runs of the recurrent studies (rnn-gradients, adding-problem, pixel-mnist) into tmp_path,
and the pixel sequences (the training loop is smithing.train.fit_sequence: tests/train)."""

import math

import pytest
import torch

from smithing.data import load
from smithing.experiment.store import Store
from smithing.studies import STUDIES
from smithing.studies.pixel_mnist import as_sequences, pixel_permutation
from studytools import run_study


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny recurrent steps only lose from intra-op threads (badly on a shared machine)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _report_ok(tmp_path, study: str, png: str) -> str:
    page = (tmp_path / "report" / f"{study}.html").read_text()
    assert png in page and "<table>" in page
    assert (tmp_path / "report" / study / png).stat().st_size > 5000
    return page


def test_rnn_gradients_smoke(tmp_path):
    run_study(
        "rnn-gradients",
        seeds=2,
        out=str(tmp_path),
        quiet=True,
        overrides={"T": 30, "hidden": 16, "batch": 8},
    )
    with Store(tmp_path) as store:
        res = store.results("rnn-gradients")
    assert len(res.runs) == 2 * 7
    irnn = res.of("IRNN (relu, identity)")[0]
    assert len(irnn.extra["norms_by_lag"]) == 30
    assert abs(irnn.final["log10_ratio"]) < 0.5  # flat through time
    assert res.of("relu, Gaussian r=2")[0].final["log10_ratio"] > 2  # exploding
    assert res.of("tanh, Gaussian r=0.9")[0].final["log10_ratio"] < -0.5  # vanishing
    _report_ok(tmp_path, "rnn-gradients", "time_lag.png")


def test_adding_problem_smoke(tmp_path):
    run_study(
        "adding-problem",
        seeds=1,
        out=str(tmp_path),
        quiet=True,
        overrides={"steps": 20, "eval_every": 10, "n_train": 200, "n_test": 50, "hidden": 8},
    )
    with Store(tmp_path) as store:
        res = store.results("adding-problem")
    assert res.variants() == ["tanh T=50", "irnn T=50", "irnn+spectral T=50", "orthogonal T=50"]
    for r in res.runs:
        assert r.status == "done", r.message
        assert [e["step"] for e in r.epochs] == [0, 10, 20]
        assert math.isfinite(r.final["test_mse"]) and r.final["baseline_mse"] == pytest.approx(
            1 / 6
        )
        assert "grad_norm" in r.epochs[-1] and 0 <= r.epochs[-1]["clipped"] <= 1
    assert res.of("irnn+spectral T=50")[0].extra["spectral_norm"] <= 1 + 1e-5
    page = _report_ok(tmp_path, "adding-problem", "test_mse.png")
    for r in res.runs:  # our measured final test MSE of every variant is in its table row
        row = page.split(f"<td>{r.variant}</td>", 1)[1].split("</tr>", 1)[0]
        assert f"{r.final['test_mse']:.4f} ± 0.0000" in row, (r.variant, row)


def test_pixel_mnist_smoke(tmp_path):
    pytest.importorskip("smithing.data.mnist")
    try:
        load("mnist")
    except Exception as e:  # noqa: BLE001 - no MNIST files here: nothing to smoke-test
        pytest.skip(f"MNIST unavailable: {e}")
    assert not STUDIES.get("pixel-mnist").in_tour
    run_study(
        "pixel-mnist",
        seeds=1,
        out=str(tmp_path),
        quiet=True,
        overrides={"side": 7, "n_train": 64, "n_valid": 32, "n_test": 32, "hidden": 8, "epochs": 1},
    )
    with Store(tmp_path) as store:
        res = store.results("pixel-mnist")
    assert res.variants() == ["irnn", "tanh", "irnn permuted"]
    for r in res.runs:
        assert r.status == "done", r.message
        assert r.extra["T"] == 49
        wrong = r.final["test_error"] * 32  # an error rate over the 32 test sequences
        assert wrong == pytest.approx(round(wrong), abs=1e-6) and 0 <= round(wrong) <= 32
    _report_ok(tmp_path, "pixel-mnist", "accuracy.png")


def test_pixel_sequences():
    x = torch.arange(2 * 784, dtype=torch.float32).reshape(2, 784)
    seq = as_sequences(x)
    assert seq.shape == (2, 784, 1) and torch.equal(seq[:, :, 0], x)  # scanline order
    small = as_sequences(x, side=14)
    img = x.reshape(2, 28, 28)
    assert small.shape == (2, 196, 1)
    assert small[0, 0, 0] == img[0, :2, :2].mean()  # 2x2 average
    perm = pixel_permutation(196)
    assert torch.equal(perm, pixel_permutation(196))  # one fixed permutation
    assert torch.equal(as_sequences(x, 14, perm), small[:, perm])
    with pytest.raises(ValueError, match="side=5 is invalid: expected a divisor of 28"):
        as_sequences(x, side=5)


def test_no_study_imports_another_study():
    """Studies import the core, experiment/ and plots/ only (shared pieces live in the library);
    checked on every import statement, the lazy ones inside functions included."""
    import ast
    import pathlib

    import smithing.studies

    folder = pathlib.Path(smithing.studies.__file__).parent
    for path in sorted(folder.glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            bad = [n for n in names if n.startswith("smithing.studies.") or n == "smithing.studies"]
            assert not bad, f"{path.name} imports {bad}"


def test_the_cosine_variants_decay_the_paper_recipe_to_zero():
    """The paper scale's ``... cosine`` variants are the constant-rate recipe plus
    ``schedule="cosine"``; a tiny run records a rate that falls from lr to near 0."""
    from smithing.studies import adding_problem as A

    paper = {v.name: v for v in A.variants("paper")}
    for name in ("irnn", "tanh"):
        for T in (150, 200):
            cos, const = paper[f"{name} T={T} cosine"], paper[f"{name} T={T}"]
            assert {k: v for k, v in cos.config.items() if k != "schedule"} == const.config
            assert cos.config["schedule"] == "cosine"
    assert not any("cosine" in v.name for v in A.variants("quick"))
    cfg = {**paper["irnn T=150 cosine"].config, "T": 10, "n_train": 100, "n_test": 20,
           "steps": 20, "eval_every": 5, "hidden": 6}  # fmt: skip
    r = A.run(cfg, seed=0)
    lrs = [e["lr"] for e in r.epochs[1:]]
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] < 1e-3 * 0.01 < lrs[0]
