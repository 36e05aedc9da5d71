"""Exact answers for the packed-bit DropConnect kernels: bits packed and unpacked by hand, the
three sums against float64 formulas, the compile decision (size, environment, failure) with the
kernels replaced by recorders, and the gradients' routing.

Written for the mutation score of ``smithing.nn.dropconnect_kernels`` (issue 15).
"""

import warnings

import pytest
import torch

from smithing.nn import dropconnect_kernels as K

D = torch.float64


def test_constants_and_word_counts():
    assert K.WORD_BITS == 32 and K.COMPILE_MIN_ELEMENTS == 2**22
    assert [K.n_words(n) for n in (0, 1, 31, 32, 33, 64, 65)] == [0, 1, 1, 1, 2, 2, 3]
    assert torch.equal(K._shifts(torch.device("cpu")), torch.arange(32, dtype=torch.int32))


def test_pack_and_unpack_by_hand():
    m = torch.tensor([[True, False, True]])
    words = K.pack_mask(m)
    assert words.dtype == torch.int32 and torch.equal(words, torch.tensor([[5]], dtype=torch.int32))
    assert torch.equal(K.unpack_mask(words, 3), m)
    full = torch.ones(32, dtype=torch.bool)
    assert K.pack_mask(full).tolist() == [-1]  # all 32 bits set
    top = torch.zeros(33, dtype=torch.bool)
    top[31] = True
    top[32] = True
    assert K.pack_mask(top).tolist() == [-(2**31), 1]  # bit 31 of word 0, bit 0 of word 1
    assert torch.equal(K.unpack_mask(torch.tensor([-(2**31), 1], dtype=torch.int32), 33), top)
    got = K.unpack_mask(torch.tensor([[6, 0], [-1, 3]], dtype=torch.int32), 34)
    assert got.shape == (2, 34)
    assert got[0].nonzero().flatten().tolist() == [1, 2]
    assert got[1].nonzero().flatten().tolist() == list(range(34))


def test_random_words_are_randint_over_int32():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    w = K.random_words((2, 3, 33), "cpu", generator=g1)
    want = torch.randint(-(2**31), 2**31, (2, 3, 2), dtype=torch.int32, generator=g2)
    assert w.dtype == torch.int32 and torch.equal(w, want)
    torch.manual_seed(1)
    w = K.random_words((4, 65), torch.device("cpu"))
    torch.manual_seed(1)
    assert w.shape == (4, 3) and torch.equal(w, torch.randint(-(2**31), 2**31, (4, 3),
                                                              dtype=torch.int32))  # fmt: skip


def _case():
    g = torch.Generator().manual_seed(0)
    v = torch.randn(3, 5, generator=g, dtype=D)
    w = torch.randn(2, 5, generator=g, dtype=D)
    gr = torch.randn(3, 2, generator=g, dtype=D)
    m = torch.rand(3, 2, 5, generator=g) < 0.5
    return v, w, gr, m


def test_the_three_sums_by_hand():
    v, w, g, m = _case()
    words = K.pack_mask(m)
    mw = m.to(D) * w  # (batch, out, in)
    u = torch.einsum("boi,bi->bo", mw, v)
    gv = torch.einsum("boi,bo->bi", mw, g)
    gw = torch.einsum("boi,bi,bo->oi", m.to(D), v, g)
    assert torch.allclose(K._forward(v, w, words), u, rtol=0, atol=1e-14)
    assert torch.allclose(K._grad_input(g, w, words), gv, rtol=0, atol=1e-14)
    assert torch.allclose(K._grad_weight(g, v, words), gw, rtol=0, atol=1e-14)


def _recorders(monkeypatch):
    calls = []

    def compiled(name):
        return lambda *a: calls.append(("compiled", name)) or "compiled"

    monkeypatch.setattr(K, "_compiled", compiled)
    for name in ("forward", "grad_input", "grad_weight"):
        monkeypatch.setitem(
            K._EAGER, name, lambda *a, _n=name: calls.append(("eager", _n)) or "eager"
        )
    monkeypatch.setattr(K, "_compile_failed", [])
    return calls


def _words(n_words):
    return torch.zeros(1, 1, n_words, dtype=torch.int32)


@pytest.mark.parametrize(
    "env, n_words, compile, want",
    [
        ("", 2**17 - 1, None, "eager"),  # 2**22 - 32 products: below the size
        ("", 2**17, None, "compiled"),  # exactly COMPILE_MIN_ELEMENTS
        ("junk", 2**17, None, "compiled"),
        ("0", 2**17, None, "eager"),
        ("1", 1, None, "compiled"),
        ("", 2**17, False, "eager"),
        ("", 1, True, "compiled"),
        ("0", 1, True, "compiled"),
    ],
)
def test_compile_decision(monkeypatch, env, n_words, compile, want):
    calls = _recorders(monkeypatch)
    monkeypatch.setenv("SMITHING_DROPCONNECT_COMPILE", env)
    assert (
        K._run("forward", torch.zeros(1), torch.zeros(1), _words(n_words), compile=compile) == want
    )
    assert calls == [(want, "forward")]


def test_compile_decision_without_the_variable(monkeypatch):
    calls = _recorders(monkeypatch)
    monkeypatch.delenv("SMITHING_DROPCONNECT_COMPILE", raising=False)
    assert K._run("grad_input", torch.zeros(1), torch.zeros(1), _words(2**17)) == "compiled"
    assert K._run("grad_weight", torch.zeros(1), torch.zeros(1), _words(1)) == "eager"
    assert calls == [("compiled", "grad_input"), ("eager", "grad_weight")]


def test_a_compile_failure_warns_once_then_runs_eagerly(monkeypatch):
    calls = _recorders(monkeypatch)

    def broken(name):
        def run(*a):
            calls.append(("compiled", name))
            raise RuntimeError("no compiler here\nsecond line")

        return run

    monkeypatch.setattr(K, "_compiled", broken)
    monkeypatch.setenv("SMITHING_DROPCONNECT_COMPILE", "")
    with pytest.warns(RuntimeWarning) as record:
        out = K._run("forward", torch.zeros(1), torch.zeros(1), _words(1), compile=True)
    assert out == "eager" and len(record) == 1
    assert str(record[0].message) == (
        "DropConnect: torch.compile failed (RuntimeError: no compiler here); the per-example "
        "masks run eagerly (slower)"
    )
    assert K._compile_failed == ["RuntimeError: no compiler here"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert K._run("forward", torch.zeros(1), torch.zeros(1), _words(1), compile=True) == "eager"
        # by size it no longer tries once compiling has failed
        assert K._run("forward", torch.zeros(1), torch.zeros(1), _words(2**17)) == "eager"
    assert calls == [("compiled", "forward"), ("eager", "forward"), ("compiled", "forward"),
                     ("eager", "forward"), ("eager", "forward")]  # fmt: skip


def test_compiled_kernels_are_cached_static_compiles(monkeypatch):
    made = []
    monkeypatch.setattr(torch, "compile", lambda fn, dynamic: made.append((fn, dynamic)) or fn)
    K._compiled.cache_clear()
    try:
        assert K._compiled("forward") is K._forward and K._compiled("forward") is K._forward
        assert K._compiled("grad_weight") is K._grad_weight
        assert made == [(K._forward, False), (K._grad_weight, False)]
    finally:
        K._compiled.cache_clear()


def test_packed_function_gradients_and_routing(monkeypatch):
    v, w, g, m = _case()
    words = K.pack_mask(m)
    b = torch.randn(2, dtype=D)
    mb = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]], dtype=D)
    seen = []
    real_run = K._run

    def spy(name, *args, compile=None):
        seen.append((name, compile))
        return real_run(name, *args, compile=False)

    monkeypatch.setattr(K, "_run", spy)
    leaves = [t.clone().requires_grad_(True) for t in (v, w, b)]
    u = K.dropconnect_packed(*leaves, words, mb, compile=False)
    want = torch.einsum("boi,bi->bo", m.to(D) * w, v) + mb * b
    assert torch.allclose(u, want, rtol=0, atol=1e-14)
    (u * g).sum().backward()
    assert seen == [("forward", False), ("grad_input", False), ("grad_weight", False)]
    mw = m.to(D) * w
    assert torch.allclose(leaves[0].grad, torch.einsum("boi,bo->bi", mw, g), atol=1e-14)
    assert torch.allclose(leaves[1].grad, torch.einsum("boi,bi,bo->oi", m.to(D), v, g), atol=1e-14)
    assert torch.allclose(leaves[2].grad, (mb * g).sum(0), atol=1e-14)
    # only the weight needs a gradient: the input sum is not computed
    seen.clear()
    wl = w.clone().requires_grad_(True)
    K.dropconnect_packed(v, wl, None, words, None).sum().backward()
    assert seen == [("forward", None), ("grad_weight", None)]
    seen.clear()
    vl = v.clone().requires_grad_(True)
    K.dropconnect_packed(vl, w, b, words, None, compile=True).sum().backward()
    assert seen == [("forward", True), ("grad_input", True)]


def test_packed_casts_the_input_and_adds_an_unmasked_bias():
    v, w, _, m = _case()
    words = K.pack_mask(m)
    b = torch.tensor([0.5, -1.0], dtype=D)
    u = K.dropconnect_packed(v.float(), w, b, words, None, compile=False)
    assert u.dtype == D
    want = torch.einsum("boi,bi->bo", m.to(D) * w, v.float().to(D)) + b
    assert torch.allclose(u, want, rtol=0, atol=1e-14)
    u = K.dropconnect_packed(v, w, None, words, None, compile=False)
    assert torch.allclose(u, torch.einsum("boi,bi->bo", m.to(D) * w, v), rtol=0, atol=1e-14)
    vt = v.T.contiguous().T  # not contiguous: made contiguous before the kernel
    assert not vt.is_contiguous()
    assert torch.allclose(K.dropconnect_packed(vt, w, None, words, None), u, atol=1e-14)


def test_compile_size_is_the_product_of_all_three_word_axes(monkeypatch):
    calls = _recorders(monkeypatch)
    monkeypatch.setenv("SMITHING_DROPCONNECT_COMPILE", "")
    words = torch.zeros(4, 2, 2**14, dtype=torch.int32)  # 4 * 2 * 2**14 * 32 = 2**22 products
    assert K._run("forward", torch.zeros(1), torch.zeros(1), words) == "compiled"
    assert K._run("forward", torch.zeros(1), torch.zeros(1), words[:, :, :-1]) == "eager"
    assert calls == [("compiled", "forward"), ("eager", "forward")]
