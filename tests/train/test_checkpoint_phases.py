"""Checkpoints of runs made of phases: Checkpointer.sub (a child per phase, beside the parent,
with its policy; removing the parent removes every child's files at any depth, and nothing
else) and Checkpointer.carry (a caller's own state saved and restored with the trainer's)."""

from __future__ import annotations

import pytest
import torch

from smithing.checkpoint import Checkpointer


def test_children_are_named_beside_the_parent_and_nest(tmp_path):
    parent = Checkpointer(
        tmp_path / "group-ab.safetensors",
        min_interval_s=5,
        every_batches=3,
        mid_epoch=True,
        keep_previous=False,
        save_final=False,
    )
    child = parent.sub("run7")
    grandchild = child.sub("layer0")
    assert child.path == tmp_path / "group-ab.run7.safetensors"
    assert grandchild.path == tmp_path / "group-ab.run7.layer0.safetensors"
    assert parent.sub("finetune").path == tmp_path / "group-ab.finetune.safetensors"
    for c in (child, grandchild):
        assert (c.min_interval_s, c.every_batches, c.mid_epoch) == (5.0, 3, True)
        assert (c.keep_previous, c.save_final) == (False, False)
    assert child.previous_path == tmp_path / "group-ab.run7.safetensors.prev"
    bare = Checkpointer(tmp_path / "ckpt").sub("a").sub("b")
    assert bare.path == tmp_path / "ckpt.a.b"


@pytest.mark.parametrize("name", ["", "a.b", "a/b", "..", "layer 0", 3, None])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="name"):
        Checkpointer(tmp_path / "c.safetensors").sub(name)


def test_a_childs_saves_count_in_the_parents(tmp_path):
    parent = Checkpointer(tmp_path / "p.safetensors", min_interval_s=0)
    child = parent.sub("layer0").sub("x")
    child.save({"a": torch.ones(2)})
    child.save({"a": torch.zeros(2)})
    assert child.saves == parent.saves == 2 and parent.seconds >= child.seconds > 0
    assert child.exists() and not parent.exists()
    assert torch.equal(child.load()["a"], torch.zeros(2))


def test_remove_removes_every_child_and_nothing_else(tmp_path):
    parent = Checkpointer(tmp_path / "group-ab.safetensors", min_interval_s=0)
    parent.save({"x": 1})
    parent.save({"x": 2})  # + .prev
    kids = [parent.sub("run1"), parent.sub("run2").sub("layer0"), parent.sub("finetune")]
    for k in kids:
        k.save({"x": 1})
        k.save({"x": 2})
    crash_left = tmp_path / "group-ab.run1.safetensors.tmp.123.abcd"
    crash_left.write_bytes(b"partial")
    others = [
        tmp_path / "group-abc.safetensors",  # another group
        tmp_path / "group-abc.run1.safetensors",  # another group's child
        tmp_path / "group-ab.notes.txt",  # not a checkpoint
        tmp_path / "group-ab.run1.json",
    ]
    for p in others:
        p.write_bytes(b"keep")
    parent.remove()
    assert sorted(tmp_path.iterdir()) == sorted(others)
    assert not any(k.exists() for k in kids)


def test_removing_a_child_leaves_its_siblings_and_parent(tmp_path):
    parent = Checkpointer(tmp_path / "g.safetensors", min_interval_s=0)
    a, b = parent.sub("layer0"), parent.sub("layer1")
    for c in (parent, a, b, a.sub("deep")):
        c.save({"x": 1})
    a.remove()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["g.layer1.safetensors", "g.safetensors"]


def test_a_parent_rebuilt_from_its_path_removes_the_children(tmp_path):
    """The runner removes a group's checkpoint with a new Checkpointer of the same path."""
    Checkpointer(tmp_path / "g.safetensors", min_interval_s=0).sub("run3").sub("layer1").save(
        {"x": 1}
    )
    Checkpointer(tmp_path / "g.safetensors").remove()
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ carry


def test_carried_state_is_saved_and_restored_with_the_trainers(tmp_path):
    from smithing.pretrain.autoencoder import DenoisingAutoencoder, train_autoencoder

    x = (torch.rand(40, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()

    def run(ck, stop_at=None):
        g = torch.Generator().manual_seed(1)
        model = DenoisingAutoencoder(8, 4, generator=g)
        seen = []  # what a study collects in a callback: not replayed on resume

        def collect(epoch, record, model):
            seen.append(float(model.W.detach().sum()))
            if epoch == stop_at:
                raise KeyboardInterrupt

        if ck is not None:
            ck.carry("seen", lambda: list(seen), lambda v: seen.extend(v))
        train_autoencoder(model, x, epochs=5, batch_size=8, rate=0.2, generator=g,
                          callbacks=[collect], checkpoint=ck)  # fmt: skip
        return seen

    ref = run(None)
    path = tmp_path / "c.safetensors"
    with pytest.raises(KeyboardInterrupt):
        run(Checkpointer(path, min_interval_s=0), stop_at=3)
    assert run(Checkpointer(path, min_interval_s=0)) == ref  # epochs 1-2 carried, 3-5 trained
    assert run(Checkpointer(path, min_interval_s=0)) == ref  # finished: everything carried
    plain = Checkpointer(path)  # nobody asks for it: the trainer's state comes back alone
    assert "carried" not in plain.load() and plain.load()["trainer"] == "train_autoencoder"


def test_carry_refuses_an_empty_name(tmp_path):
    with pytest.raises(ValueError, match="name"):
        Checkpointer(tmp_path / "c").carry("", list, print)
