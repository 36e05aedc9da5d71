"""What the DBN and the SdA share (``smithing.pretrain._layout.LayerStack`` and
``greedy.train_greedy``): sizes, members, encoders, the upward pass, the constructors' checks
and their messages, and the trainer body."""

from __future__ import annotations

import pytest
import torch

from smithing.pretrain.autoencoder import DenoisingAutoencoder, StackedDAE, train_sda
from smithing.pretrain.dbn import DBN, train_dbn
from smithing.pretrain.rbm import BernoulliRBM


def _rbms(sizes, members=None):
    g = torch.Generator().manual_seed(0)
    return [BernoulliRBM(a, b, members=members, generator=g) for a, b in zip(sizes, sizes[1:])]


def _daes(sizes):
    g = torch.Generator().manual_seed(0)
    return [DenoisingAutoencoder(a, b, generator=g) for a, b in zip(sizes, sizes[1:])]


@pytest.mark.parametrize("make, cls", [(DBN, "DBN"), (StackedDAE, "StackedDAE")])
@pytest.mark.parametrize("sizes", [[5], [], [5, 0], [5, 2.0], (5, -1, 3)])
def test_stack_sizes_are_checked(make, cls, sizes):
    with pytest.raises(ValueError, match=r"at least two positive ints \[n_visible, n_hidden_1"):
        make(sizes)


def test_from_layers_checks_the_chain_with_each_kinds_words():
    with pytest.raises(ValueError, match="at least one RBM"):
        DBN.from_rbms([])
    with pytest.raises(ValueError, match="at least one autoencoder"):
        StackedDAE.from_layers([])
    bad = [BernoulliRBM(6, 4), BernoulliRBM(3, 2)]
    with pytest.raises(
        ValueError, match=r"rbms\[1\]\.n_visible.*the hidden size of the RBM below, 4"
    ):
        DBN.from_rbms(bad)
    bad_dae = [DenoisingAutoencoder(6, 4), DenoisingAutoencoder(4, 2), DenoisingAutoencoder(3, 2)]
    with pytest.raises(
        ValueError, match=r"daes\[2\]\.n_visible.*the code size of the autoencoder below, 2"
    ):
        StackedDAE.from_layers(bad_dae)


def test_from_layers_holds_the_given_layers_and_reads_sizes_off_them():
    rbms = _rbms([6, 4, 3, 2], members=2)
    dbn = DBN.from_rbms(rbms)
    assert all(a is b for a, b in zip(dbn.rbms, rbms)) and list(dbn.stack) == rbms
    assert dbn.sizes == (6, 4, 3, 2) and dbn.members == 2
    daes = _daes([6, 5, 2])
    sda = StackedDAE.from_layers(daes)
    assert all(a is b for a, b in zip(sda.daes, daes))
    assert sda.sizes == (6, 5, 2) and sda.members is None
    assert sda.activation == daes[0].activation


def test_upward_is_each_layers_code_in_turn_and_forward_the_top():
    x = torch.rand(7, 6, generator=torch.Generator().manual_seed(1))
    dbn = DBN.from_rbms(_rbms([6, 4, 3]))
    h1 = torch.sigmoid(x @ dbn.rbms[0].W + dbn.rbms[0].c)  # p(h | v) = sigmoid(v W + c)
    h2 = torch.sigmoid(h1 @ dbn.rbms[1].W + dbn.rbms[1].c)
    up = dbn.upward(x)
    assert len(up) == 2
    torch.testing.assert_close(up[0], h1, rtol=0, atol=1e-6)
    torch.testing.assert_close(up[1], h2, rtol=0, atol=1e-6)
    assert torch.equal(dbn(x), up[-1])
    assert [tuple(w.shape) for w, _ in dbn.encoders()] == [(4, 6), (3, 4)]

    sda = StackedDAE.from_layers(_daes([6, 5, 2]))
    codes = sda.upward(x)
    assert torch.equal(codes[0], sda.daes[0].encode(x))
    assert torch.equal(codes[1], sda.daes[1].encode(codes[0]))
    assert torch.equal(sda(x), codes[1])
    assert [tuple(w.shape) for w, _ in sda.encoders()] == [(5, 6), (2, 5)]


@pytest.mark.parametrize(
    "train, make, what",
    [
        (train_dbn, lambda: DBN([6, 4, 3]), "RBM"),
        (train_sda, lambda: StackedDAE([6, 4, 3]), "layer"),
    ],
)
def test_stack_trainers_share_defaults_per_layer_overrides_and_messages(train, make, what):
    x = torch.rand(20, 6, generator=torch.Generator().manual_seed(2))
    stack = make()
    hists = train(stack, x, epochs=2, lr=0.1, batch_size=10, layers=[{}, {"epochs": 3}],
                  generator=torch.Generator().manual_seed(3))  # fmt: skip
    assert [h.epochs_run for h in hists] == [2, 3]  # the shared default, then the layer's own
    with pytest.raises(ValueError, match=f"one per {what} \\(2\\)"):
        train(make(), x, epochs=1, layers=[{}])
    seen = []
    with pytest.warns(DeprecationWarning, match="layer_callback"):
        train(make(), x, epochs=1, callback=lambda i, layer, h: seen.append(i))
    assert seen == [0, 1]
