"""The "mlp" run kind checkpoints the pretrained initializer's greedy layers too: a resumed
run restores them instead of pretraining again."""

import torch

from smithing.checkpoint import Checkpointer
from smithing.experiment import pretrained
from smithing.experiment.mlp import MLPConfig, train_one

CFG = MLPConfig(
    hidden=(24, 16),
    activation="sigmoid",
    init="pretrained",
    init_options={"source": "sda", "layer_options": {"epochs": 2, "batch_size": 32}},
    epochs=2,
    n_train=300,
)


def test_pretraining_layers_are_checkpointed_and_restored(tmp_path, monkeypatch):
    pretrained.clear_cache()
    ck = Checkpointer(tmp_path / "group.safetensors", min_interval_s=0)
    model, hist = train_one(CFG, checkpoint=ck)
    names = sorted(p.name for p in tmp_path.glob("*.safetensors"))
    assert "group.pretrain.layer0.safetensors" in names
    assert "group.pretrain.layer1.safetensors" in names
    # a new process (empty layer cache) with the checkpoints: nothing is trained again, not a
    # layer and not the fine-tuning (no backward pass at all)
    pretrained.clear_cache()

    def no_training(*a, **k):
        raise AssertionError("a checkpointed phase was trained again")

    monkeypatch.setattr(torch.Tensor, "backward", no_training)
    model2, hist2 = train_one(CFG, checkpoint=Checkpointer(tmp_path / "group.safetensors"))
    assert hist2.final == hist.final
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
    ck.remove()
    assert not list(tmp_path.glob("*.safetensors*"))
