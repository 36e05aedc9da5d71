"""A study through Ray: a local Ray on the loopback interface, two CPUs, the same store and
checkpoints as the local executors (``smithing run --executor ray``)."""

import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'smithing[ray]'")


@pytest.fixture
def local_ray():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    yield
    ray.shutdown()


def test_study_runs_as_ray_tasks(tmp_path, local_ray):
    from smithing.experiment.store import Store
    from studytools import run_study

    summary = run_study(
        "activations",
        seeds=2,
        out=str(tmp_path),
        quiet=True,
        executor="ray",
        overrides={"epochs": 2, "hidden": [16]},
        report=False,
    )
    assert set(summary["variants"]) == {"sigmoid", "tanh", "relu", "softsign"}
    assert all(v["done"] == 2 for v in summary["variants"].values())
    with Store(tmp_path) as store:
        assert store.counts("activations") == {"done": 8}
        res = store.results("activations")
    # the same numbers as in this process
    local = tmp_path / "local"
    run_study(
        "activations",
        seeds=2,
        out=str(local),
        quiet=True,
        overrides={"epochs": 2, "hidden": [16]},
        report=False,
    )
    with Store(local) as store:
        ref = store.results("activations")
    assert [r.final for r in res.runs] == [r.final for r in ref.runs]
