import importlib
import math
import sqlite3

import numpy as np
import pytest
import torch
from PIL import Image

from smithing import optim
from smithing.data.surfaces import surface
from smithing.plots.animation import race_gif
from smithing.studies import optimizer_race as race_mod
from smithing.studies.optimizer_race import (
    OPTIMIZERS,
    SURFACE_LR_GRID,
    race,
    race_block,
    run_surface,
    start_point,
    tune_lr,
)


def _patch(monkeypatch, name, value):
    """Set a study constant in every module of the study's package that reads it."""
    # every submodule of the study that may read the constant
    parts = ("surfaces", "configs", "charts", "tabulate")
    mods = [race_mod, *(importlib.import_module(f"{race_mod.__name__}.{m}") for m in parts)]
    for mod in mods:
        if hasattr(mod, name):
            monkeypatch.setattr(mod, name, value)


def _plain(s, name, lr, steps, start):
    """A lone 2-vector under torch.optim (float64), the reference for ``race``."""
    x = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = optim.make(name, [x], lr)
    path = [x.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        s(x).backward()
        opt.step()
        path.append(x.detach().clone())
    return torch.stack(path).numpy()


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_race_rows_match_torch_optim_on_a_2_vector(name):
    s = surface("quadratic")
    lrs = [0.001, 0.01]
    paths, losses, left = race(s, name, lrs, 25, s.start)
    assert paths.shape == (2, 26, 2) and losses.shape == (2, 26)
    assert left == [None, None]
    for g, lr in enumerate(lrs):
        ref = _plain(s, name, lr, 25, s.start)
        np.testing.assert_allclose(paths[g], ref, rtol=1e-10, atol=1e-12)
        with torch.no_grad():
            np.testing.assert_allclose(losses[g], s(torch.from_numpy(ref)).numpy(), rtol=1e-10)


def test_race_rows_are_independent_bitwise():
    s = surface("rosenbrock")
    grid = [1e-4, 1e-3, 0.1]
    starts = np.array([[-1.2, 1.0], [0.5, 0.5], [-1.0, 2.0]])
    paths, losses, _ = race(s, "adam", grid, 30, starts)
    for g in range(3):
        p1, l1, _ = race(s, "adam", grid[g], 30, starts[g])
        assert np.array_equal(paths[g], p1[0]) and np.array_equal(losses[g], l1[0])


def test_race_freezes_a_run_that_leaves_the_window():
    s = surface("quadratic")  # curvature 50: sgd with lr 1 multiplies y by -49 per step
    paths, losses, left = race(s, "sgd", [1.0, 0.01], 20, s.start)
    t = left[0]
    assert t is not None and left[1] is None
    assert np.all(paths[0, t:] == paths[0, t]) and np.all(losses[0, t:] == losses[0, t])
    assert np.isfinite(paths).all()


def test_race_validates_its_arguments():
    s = surface("beale")
    with pytest.raises(ValueError, match="steps"):
        race(s, "sgd", 0.1, 0, s.start)
    with pytest.raises(ValueError, match="lrs"):
        race(s, "sgd", [0.1, -1.0], 5, s.start)
    with pytest.raises(ValueError, match="starts"):
        race(s, "sgd", [0.1, 0.2, 0.3], 5, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="optimizer"):
        run_surface({"surface": "beale", "optimizer": "adamm", "steps": 5, "lr": 0.1}, 0)


def test_tune_lr_picks_the_lowest_final_loss_and_seed0_is_the_grid_run():
    grid = (1e-3, 1e-2, 1e-1, 1.0)
    tuned = tune_lr("beale", "rmsprop", grid, 50)
    s = surface("beale")
    _, losses, left = race(s, "rmsprop", grid, 50, s.start)
    finals = [losses[g, -1] if left[g] is None else math.inf for g in range(len(grid))]
    assert tuned["lr"] == grid[int(np.argmin(finals))]
    cfg = {"surface": "beale", "optimizer": "rmsprop", "steps": 50, "lr_grid": list(grid)}
    r = run_surface(cfg, 0)
    assert r.final["lr"] == tuned["lr"] and r.status == "done"
    assert r.final["final_loss"] == pytest.approx(min(finals), rel=0, abs=0)
    assert len(r.extra["path"]) == 51 and len(r.extra["loss"]) == 51
    paths, _, _ = race_block("beale", "rmsprop", grid, 50, "{}", 0)
    assert np.array_equal(np.asarray(r.extra["path"]), paths[grid.index(tuned["lr"]), 0])


def test_lr_from_another_surface_and_start_jitter():
    cfg = {
        "surface": "saddle",
        "optimizer": "adam",
        "steps": 40,
        "lr_grid": list(SURFACE_LR_GRID),
        "lr_from": "quadratic",
        "dataset": "digits",  # ignored, as the runner adds it
    }
    r0, r1 = run_surface(cfg, 0), run_surface(cfg, 1)
    assert r0.extra["lr"] == tune_lr("quadratic", "adam", SURFACE_LR_GRID, 40)["lr"]
    assert r0.extra["lr_tuned_on"] == "quadratic" and r1.extra["lr"] == r0.extra["lr"]
    s = surface("saddle")
    assert r0.extra["start"] == list(s.start)
    assert r1.extra["start"] != r0.extra["start"]
    assert np.array_equal(start_point(s, 1), start_point(s, 1))
    assert np.abs(start_point(s, 1) - np.asarray(s.start)).max() < 0.5


def test_race_gif_is_an_animation_and_checks_paths(tmp_path):
    s = surface("quadratic")
    paths, _, _ = race(s, "momentum", [0.01, 0.02], 20, s.start)
    name = race_gif([(s, "q", {"a": paths[0], "b": paths[1]})], tmp_path, "r.gif", frames=5)
    im = Image.open(tmp_path / name)
    assert im.format == "GIF" and im.n_frames == 5
    with pytest.raises(ValueError, match="same length"):
        race_gif([(s, "q", {"a": paths[0], "b": paths[1][:5]})], tmp_path, "x.gif")
    with pytest.raises(ValueError, match="shape"):
        race_gif([(s, "q", {"a": np.zeros((4, 3))})], tmp_path, "x.gif")
    with pytest.raises(ValueError, match="frames"):
        race_gif([(s, "q", {"a": paths[0]})], tmp_path, "x.gif", frames=1)


def test_study_smoke(tmp_path, monkeypatch):
    from studytools import run_study

    # a smaller race: three optimizers, two surfaces (the saddle borrows the quadratic's rates)
    opts = ("sgd", "momentum", "adam")
    _patch(monkeypatch, "OPTIMIZERS", opts)
    _patch(monkeypatch, "SURFACE_NAMES", ("saddle", "quadratic"))
    _patch(monkeypatch, "STEPS", 30)
    _patch(monkeypatch, "GIF_FRAMES", 8)
    summary = run_study(
        "optimizer-race", seeds=1, out=str(tmp_path), quiet=True, overrides={"epochs": 2}
    )
    n_mlp = sum(len(race_mod.MLP_LR_GRID[o]) for o in opts)
    assert len(summary["variants"]) == 2 * len(opts) + n_mlp
    assert all(v["failed"] == 0 for v in summary["variants"].values())
    con = sqlite3.connect(tmp_path / "results.sqlite")
    kinds = con.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
    assert dict(kinds).get("failed", 0) == 0
    rep = tmp_path / "report" / "optimizer-race"
    for f in ("surfaces.png", "surface_loss.png", "mlp_curves.png", "mlp_lr_grid.png"):
        assert (rep / f).stat().st_size > 0
    gif = Image.open(rep / "race.gif")
    assert gif.format == "GIF" and gif.n_frames == 8
    page = (tmp_path / "report" / "optimizer-race.html").read_text()
    assert "race.gif" in page and "class='err'" not in page
    assert "quadratic" in page and "MLP on digits" in page

    from smithing.experiment.store import Store
    from smithing.studies import STUDIES

    with Store(tmp_path) as st:
        res = st.results("optimizer-race")
    chosen = race_mod.chosen_lrs(res)
    assert set(chosen) == set(opts)
    for o, lr in chosen.items():
        assert lr in race_mod.MLP_LR_GRID[o]
    rows = STUDIES.get("optimizer-race").table(res).rows
    assert len(rows) == len(opts) + 2 * len(opts)
