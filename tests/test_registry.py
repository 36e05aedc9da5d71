"""smithing._registry: lookups, aliases (other libraries' names for our entries) and the
"did you mean" hint of an unknown name."""

from __future__ import annotations

import pytest

from smithing._registry import Registry, given, unknown_name_message


def _reg():
    r: Registry[int] = Registry("initializer")
    for i, name in enumerate(("glorot_uniform", "glorot_normal", "he_uniform", "he_normal")):
        r.register(name, i, description=f"rule {i}")
    r.alias("xavier_uniform", "glorot_uniform")
    r.alias("xavier_normal", "glorot_normal")
    r.alias("kaiming_uniform", "he_uniform")
    return r


def test_an_alias_resolves_to_its_entry_and_is_not_listed():
    r = _reg()
    assert r.get("xavier_uniform") == r.get("glorot_uniform") == 0
    assert r.entry("kaiming_uniform").name == "he_uniform"  # the entry keeps its own name
    assert r.canonical("xavier_normal") == "glorot_normal"
    assert r.canonical("he_normal") == "he_normal"
    assert "xavier_uniform" in r and "xavier" not in r
    assert r.names() == ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal"]
    assert list(r) == r.names() and len(r) == 4
    assert r.aliases_of("glorot_uniform") == ["xavier_uniform"]
    assert r.aliases_of("he_normal") == []
    assert r.aliases() == {
        "xavier_uniform": "glorot_uniform",
        "xavier_normal": "glorot_normal",
        "kaiming_uniform": "he_uniform",
    }


def test_alias_errors():
    r = _reg()
    with pytest.raises(ValueError, match=r"unknown initializer 'lecun_normal'"):
        r.alias("lecun", "lecun_normal")
    with pytest.raises(ValueError, match=r"initializer 'he_normal' is already registered"):
        r.alias("he_normal", "glorot_normal")
    with pytest.raises(ValueError, match=r"initializer 'xavier_uniform' is already registered"):
        r.alias("xavier_uniform", "glorot_normal")
    with pytest.raises(ValueError, match=r"'xavier_normal' is already registered as an alias"):
        r.register("xavier_normal", 9)
    with pytest.raises(ValueError, match=r"alias of an alias"):
        r.alias("torch_xavier", "xavier_uniform")
    with pytest.raises(ValueError, match=r"unknown initializer 'nope'"):
        r.canonical("nope")


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        ("xavier_unifrom", "'xavier_uniform', an alias of 'glorot_uniform'"),
        ("xavier_uniform_", "'xavier_uniform', an alias of 'glorot_uniform'"),  # torch's spelling
        ("kaiming_unifrom", "'kaiming_uniform', an alias of 'he_uniform'"),
        ("glorot_unifrom", "'glorot_uniform'"),
        ("GlorotUniform", "'glorot_uniform'"),  # Keras' class name
        ("HE_NORMAL", "'he_normal'"),
    ],
)
def test_near_misses_point_at_the_right_rule(typed, hint):
    with pytest.raises(ValueError, match=rf"unknown initializer '{typed}'.*did you mean {hint}\?"):
        _reg().get(typed)


def test_unknown_name_lists_the_valid_names_without_the_aliases():
    msg = unknown_name_message("initializer", "zzz", ["b", "a"])
    assert msg == "unknown initializer 'zzz'; valid: a, b"
    with pytest.raises(ValueError) as e:
        _reg().get("zzz")
    assert "valid: glorot_normal, glorot_uniform, he_normal, he_uniform" in str(e.value)
    assert "did you mean" not in str(e.value)


def test_case_and_separator_hints_serve_every_registry():
    from smithing import optim

    with pytest.raises(ValueError, match=r"unknown optimizer 'SGD'.*did you mean 'sgd'\?"):
        optim.OPTIMIZERS.get("SGD")
    with pytest.raises(ValueError, match=r"unknown optimizer 'RMSprop'.*did you mean 'rmsprop'\?"):
        optim.OPTIMIZERS.get("RMSprop")
    r: Registry[int] = Registry("study")
    r.register("vanishing-gradients", 1)
    r.register("initialization", 2)
    with pytest.raises(ValueError, match=r"did you mean 'vanishing-gradients'\?"):
        r.get("vanishing_gradients")


def test_given_returns_the_value_or_raises_checks_message():
    assert given(0, "k", "an int") == 0  # falsy but not None
    with pytest.raises(ValueError, match=r"^data=None is invalid: expected \(x, y\)$"):
        given(None, "data", "(x, y)")
