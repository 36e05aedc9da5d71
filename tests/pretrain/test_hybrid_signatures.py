"""``train_class_rbm`` and ``train_deep_hybrid`` speak one vocabulary: the same keyword
arguments (``combine`` aside), with the same defaults and annotations, each documented."""

from __future__ import annotations

import inspect
import re

from smithing.pretrain.hybrid import HybridTraining, train_class_rbm, train_deep_hybrid


def _params(fn):
    return {
        name: (p.kind, p.default, p.annotation)
        for name, p in inspect.signature(fn).parameters.items()
        if name not in ("model", "combine")
    }


def test_the_two_trainers_take_the_same_arguments():
    assert _params(train_class_rbm) == _params(train_deep_hybrid)


def test_every_argument_and_option_is_documented():
    for fn in (train_class_rbm, train_deep_hybrid):
        doc = inspect.getdoc(fn) or ""
        args = doc.split("Args:")[1].split("Returns:")[0]
        documented = set(re.findall(r"^\s{4}(\w+(?:, \w+)*):", args, re.M))
        names = {n for line in documented for n in line.split(", ")}
        keywords = [
            n
            for n, p in inspect.signature(fn).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "combine"
        ]
        assert set(keywords) <= names, set(keywords) - names
        assert "options" in doc and "HybridTraining" in doc
        for field in ("objective", "alpha", "beta", "momentum", "method"):
            assert field in doc, (fn.__name__, field)
    assert "combine" in (train_deep_hybrid.__doc__ or "")
    assert set(HybridTraining.__dataclass_fields__) >= {"epochs", "lr", "batch_size"}
