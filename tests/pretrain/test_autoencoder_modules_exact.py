"""DenoisingAutoencoder as a module: the documented initialization drawn from the same generator,
encode / decode / loss / encoder against the formulas (ensembles, tied and untied), the
defaults, and the inputs it refuses with their messages."""

from __future__ import annotations

import math

import pytest
import torch

from smithing.pretrain.autoencoder import DenoisingAutoencoder, dae_loss

D = torch.float64


@pytest.mark.parametrize("activation, gain", [("sigmoid", 4.0), ("tanh", 1.0), ("relu", 1.0)])
@pytest.mark.parametrize("members", [None, 2])
@pytest.mark.parametrize("tied", [True, False])
def test_initialization_is_the_documented_draw(activation, gain, members, tied):
    lead = () if members is None else (members,)
    loss = "cross_entropy" if activation == "sigmoid" else "squared_error"
    ae = DenoisingAutoencoder(3, 2, activation=activation, tied=tied, loss=loss, members=members,
                              dtype=D, generator=torch.Generator().manual_seed(5))  # fmt: skip
    g = torch.Generator().manual_seed(5)
    bound = gain * math.sqrt(6.0 / 5)
    W = (2 * torch.rand((*lead, 2, 3), generator=g, dtype=D) - 1) * bound
    assert torch.equal(ae.W.detach(), W)
    if tied:
        assert ae.W_dec is None and "W_dec" not in dict(ae.named_parameters())
        assert torch.equal(ae.decoder_weight, ae.W.transpose(-1, -2))
    else:
        Wd = (2 * torch.rand((*lead, 3, 2), generator=g, dtype=D) - 1) * bound
        assert torch.equal(ae.W_dec.detach(), Wd)
        assert ae.decoder_weight is ae.W_dec
    assert torch.equal(ae.b.detach(), torch.zeros(*lead, 2, dtype=D))
    assert torch.equal(ae.c.detach(), torch.zeros(*lead, 3, dtype=D))
    assert (ae.n_visible, ae.n_hidden, ae.members) == (3, 2, members)
    assert (ae.activation, ae.loss_name, ae.tied) == (activation, loss, tied)
    assert ae.decoder == ("sigmoid" if loss == "cross_entropy" else "linear")
    m = "" if members is None else f", members={members}"
    assert ae.extra_repr() == (
        f"n_visible=3, n_hidden=2, activation={activation!r}, tied={tied}, loss={loss!r}{m}"
    )


def test_defaults():
    ae = DenoisingAutoencoder(4, 3, generator=torch.Generator().manual_seed(1))
    assert (ae.activation, ae.loss_name, ae.decoder, ae.tied) == (
        "sigmoid", "cross_entropy", "sigmoid", True)  # fmt: skip
    assert ae.W.dtype == torch.get_default_dtype() and ae.members is None
    u = torch.rand((3, 4), generator=torch.Generator().manual_seed(1))
    assert torch.equal(ae.W.detach(), (2 * u - 1) * (4.0 * math.sqrt(6.0 / 7)))
    sq = DenoisingAutoencoder(4, 3, loss="squared_error", decoder="sigmoid")
    assert sq.decoder == "sigmoid"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_visible": 0}, "n_visible=0 is invalid: expected a positive int"),
        ({"n_visible": 3.0}, "n_visible=3.0 is invalid: expected a positive int"),
        ({"n_hidden": 0}, "n_hidden=0 is invalid: expected a positive int"),
        ({"n_hidden": 2.0}, "n_hidden=2.0 is invalid: expected a positive int"),
        ({"activation": "elu"},
         "activation='elu' is invalid: expected one of ('sigmoid', 'tanh', 'relu')"),
        ({"loss": "l1"},
         "loss='l1' is invalid: expected one of ('cross_entropy', 'squared_error')"),
        ({"loss": "squared_error", "decoder": "relu"},
         "decoder='relu' is invalid: expected one of ('sigmoid', 'linear')"),
        ({"decoder": "linear"},
         "decoder='linear' is invalid: expected 'sigmoid' for the cross-entropy loss"),
        ({"members": 0}, "members=0 is invalid: expected None or a positive int"),
        ({"members": 2.0}, "members=2.0 is invalid: expected None or a positive int"),
    ],
)  # fmt: skip
def test_invalid_construction(kwargs, message):
    args = {"n_visible": 3, "n_hidden": 2} | kwargs
    with pytest.raises(ValueError) as err:
        DenoisingAutoencoder(args.pop("n_visible"), args.pop("n_hidden"), **args)
    assert str(err.value) == message
    DenoisingAutoencoder(1, 1, members=1)  # the smallest sizes


def filled(members=None, tied=True, activation="sigmoid", loss="cross_entropy", decoder=None):
    ae = DenoisingAutoencoder(3, 2, members=members, tied=tied, activation=activation, loss=loss,
                              decoder=decoder, dtype=D)  # fmt: skip
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in ae.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=D))
    return ae


ACT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


@pytest.mark.parametrize("members", [None, 2])
@pytest.mark.parametrize(
    "tied, activation, loss, decoder",
    [(True, "sigmoid", "cross_entropy", None), (False, "tanh", "squared_error", None),
     (False, "relu", "squared_error", "sigmoid")],
)  # fmt: skip
def test_encode_decode_loss_and_encoder(members, tied, activation, loss, decoder):
    ae = filled(members, tied, activation, loss, decoder)
    x = torch.rand(4, 3, generator=torch.Generator().manual_seed(3))  # float32: cast to float64
    xt = (x * (torch.arange(3) != 1)).float()
    W, b, c = (t.detach() for t in (ae.W, ae.b, ae.c))
    Wd = W.transpose(-1, -2) if tied else ae.W_dec.detach()
    xd = x.to(D)
    row = (lambda t: t) if members is None else (lambda t: t[:, None, :])  # noqa: E731
    h = ACT[activation](xd @ W.transpose(-1, -2) + row(b))
    a = h @ Wd.transpose(-1, -2) + row(c)
    z = torch.sigmoid(a) if ae.decoder == "sigmoid" else a
    with torch.no_grad():
        assert ae.encode(x).dtype == D
        torch.testing.assert_close(ae.encode(x), h, rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(ae.decode(h), z, rtol=1e-14, atol=1e-15)
        torch.testing.assert_close(ae(x), z, rtol=1e-14, atol=1e-15)
        kw = dict(activation=activation, decoder=ae.decoder, loss=loss)
        Wdec = None if tied else ae.W_dec
        want = dae_loss(xd, xd, ae.W, ae.b, ae.c, Wdec, **kw)
        torch.testing.assert_close(ae.loss(x), want, rtol=0, atol=0)
        want = dae_loss(xd, xt.to(D), ae.W, ae.b, ae.c, Wdec, **kw)
        torch.testing.assert_close(ae.loss(x, xt), want, rtol=0, atol=0)
        wts = torch.rand(4, 3, generator=torch.Generator().manual_seed(4), dtype=D)
        want = dae_loss(xd, xt.to(D), ae.W, ae.b, ae.c, Wdec, weights=wts, contractive=0.3, **kw)
        torch.testing.assert_close(ae.loss(x, xt, weights=wts, contractive=0.3), want, rtol=0,
                                   atol=0)  # fmt: skip
        assert not torch.equal(ae.loss(x, xt), ae.loss(x))
    weight, bias = ae.encoder()
    assert torch.equal(weight, W) and torch.equal(bias, b) and not weight.requires_grad
    weight.zero_(), bias.zero_()  # copies
    assert ae.W.abs().sum() > 0 and ae.b.abs().sum() > 0
