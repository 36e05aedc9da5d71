"""The formulas in the docstrings of the public API are valid LaTeX for the documentation site,
and the key tricks state theirs.

The site (mkdocs.yml, scripts/docs_hooks.py) renders ``$...$`` and ``$$ ... $$`` in docstrings
to MathML with latex2mathml at build time, and a formula it cannot parse fails ``mkdocs build``;
this test finds such a formula without building the site, naming the object it is in.
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

latex2mathml = pytest.importorskip("latex2mathml.converter")

#: the packages whose public API (``__all__``) the site documents with their formulas
PACKAGES = (
    "smithing.init",
    "smithing.regularize",
    "smithing.nn",
    "smithing.nn.rnn",
    "smithing.pretrain",
    "smithing.pretrain.rbm",
    "smithing.pretrain.autoencoder",
    "smithing.pretrain.hybrid",
    "smithing.train",
)

#: display math first (it may span lines), then inline math on one line: as pymdownx.arithmatex
#: reads them (its "smart dollar": no space just inside the dollars; ``\$`` is a dollar)
_DISPLAY = re.compile(r"(?<!\\)\$\$(.+?)(?<!\\)\$\$", re.S)
_INLINE = re.compile(r"(?<![\\$])\$(?![\s$])([^$\n]+?)(?<![\s\\])\$")


def formulas(doc: str | None) -> list[str]:
    """The LaTeX of every ``$$...$$`` and ``$...$`` formula of ``doc``."""
    if not doc:
        return []
    display = [m.group(1).strip() for m in _DISPLAY.finditer(doc)]
    rest = _DISPLAY.sub(" ", doc)
    return display + [m.group(1).strip() for m in _INLINE.finditer(rest)]


def _documented() -> dict[str, str]:
    """``{qualified name: docstring}`` of every public object of :data:`PACKAGES` (classes with
    their public methods and properties) and of every registered initializer rule (the site's
    initialization page shows those from the registry)."""
    out: dict[str, str] = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        out[package] = module.__doc__ or ""
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or callable(obj)):
                continue
            out[f"{package}.{name}"] = inspect.getdoc(obj) or ""
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    target = member.fget if isinstance(member, property) else member
                    if callable(target) or isinstance(member, property):
                        out[f"{package}.{name}.{attr}"] = inspect.getdoc(target) or ""
    from smithing.init import INITIALIZERS

    for rule in INITIALIZERS.names():
        out[f"smithing.init[{rule!r}]"] = inspect.getdoc(INITIALIZERS.get(rule).fn) or ""
    return out


DOCS = _documented()
ALL_FORMULAS = [(where, tex) for where, doc in DOCS.items() for tex in formulas(doc)]


def test_formulas_are_found():
    assert formulas("a $x_1$ and\n$$\n\\frac{a}{b}\n$$\nnot $5 or $") == [
        "\\frac{a}{b}",
        "x_1",
    ]
    assert len(ALL_FORMULAS) > 100


@pytest.mark.parametrize(("where", "tex"), ALL_FORMULAS, ids=[w for w, _ in ALL_FORMULAS])
def test_formula_parses(where, tex):
    depth = 0
    for ch in re.sub(r"\\[{}]", "", tex):  # latex2mathml forgives unbalanced braces
        depth += {"{": 1, "}": -1}.get(ch, 0)
        assert depth >= 0, f"{where}: unbalanced braces in {tex!r}"
    assert depth == 0, f"{where}: unbalanced braces in {tex!r}"
    mathml = latex2mathml.convert(tex)
    assert mathml.startswith("<math")
    assert "merror" not in mathml, f"{where}: latex2mathml marks an error in {tex!r}"
    # what latex2mathml does not know it prints as text: an alignment ``&`` outside an array /
    # cases environment (it has no ``aligned``), a backslash (``\`` + newline, an unknown macro)
    assert "<mi>&</mi>" not in mathml, f"{where}: '&' outside array/cases in {tex!r}"
    assert "<mi>\\" not in mathml, f"{where}: a stray backslash in {tex!r}"


#: the tricks whose docstring must state their formula (display math)
KEY_TRICKS = [
    *(
        f"smithing.init[{r!r}]"
        for r in (
            "uniform",
            "normal",
            "glorot_uniform",
            "glorot_normal",
            "he_normal",
            "he_uniform",
            "lecun_normal",
            "lecun_uniform",
            "orthogonal",
            "identity",
            "sparse",
            "lsuv",
        )
    ),
    "smithing.init.lsuv",
    "smithing.regularize.l2_penalty",
    "smithing.regularize.l1_penalty",
    "smithing.regularize.elastic_net_penalty",
    "smithing.regularize.decay_",
    "smithing.regularize.soft_threshold_",
    "smithing.regularize.Penalty",
    "smithing.regularize.max_norm_",
    "smithing.regularize.MaxNorm",
    "smithing.regularize.obd_saliency",
    "smithing.regularize.obs_saliency",
    "smithing.regularize.obs_update",
    "smithing.regularize.obs_downdate",
    "smithing.regularize.obs_prune",
    "smithing.regularize.prune",
    "smithing.nn.Dropout",
    "smithing.nn.mc_predict",
    "smithing.nn.enumerate_subnetworks",
    "smithing.nn.DropConnectLinear",
    "smithing.nn.dropconnect_moments",
    "smithing.nn.masked_preactivation",
    "smithing.nn.rnn.ElmanRNN",
    "smithing.nn.elman_unroll",
    "smithing.nn.identity_penalty",
    "smithing.nn.clip_singular_values_",
    "smithing.nn.project_orthogonal_",
    "smithing.nn.project_identity_ball_",
    "smithing.nn.init_recurrent_",
    "smithing.pretrain.rbm.energy",
    "smithing.pretrain.rbm.free_energy",
    "smithing.pretrain.rbm.cd_gradient",
    "smithing.pretrain.ais_log_z",
    "smithing.pretrain.exact_log_z",
    "smithing.pretrain.corrupt",
    "smithing.pretrain.contractive_penalty",
    "smithing.pretrain.autoencoder.reconstruction_loss",
    "smithing.pretrain.hybrid.class_logits",
    "smithing.pretrain.hybrid.log_proba",
    "smithing.pretrain.hybrid.joint_energy",
    "smithing.pretrain.hybrid.discriminative_gradient",
    "smithing.pretrain.hybrid.generative_gradient",
    "smithing.pretrain.hybrid.unlabeled_gradient",
    "smithing.pretrain.rbm.gaussian_energy",
    "smithing.pretrain.rbm.gaussian_free_energy",
    "smithing.pretrain.rbm.gaussian_cd_gradient",
    "smithing.pretrain.average_log_prob",
    "smithing.pretrain.autoencoder.dae_loss",
    "smithing.train.clip_grad_norm",
    "smithing.train.clip_grad_value",
    "smithing.train.EarlyStopping",
]


@pytest.mark.parametrize("name", KEY_TRICKS)
def test_key_trick_states_its_formula(name):
    assert name in DOCS, f"{name} is not in the documented public API"
    assert _DISPLAY.search(DOCS[name]), f"{name}: no $$ ... $$ formula in its docstring"
