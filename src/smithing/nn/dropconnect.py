"""DropConnect: a fully connected layer whose *weights* are dropped, one mask per example.

Wan, Zeiler, Zhang, LeCun & Fergus, "Regularization of Neural Networks using DropConnect",
ICML 2013. For an input ``v`` (``in`` features), the layer outputs ``r = a(u)`` with::

    u = (M * W) v + m_b * b,     M_ij, m_b,i ~ Bernoulli(1 - p)   (training, per example)

``p`` is the **drop** probability, as for dropout; the paper writes ``p`` for the *keep*
probability (its ``p`` is our ``1 - p``). The paper folds the bias into ``W`` (a fixed input 1), so
biases are dropped too (``drop_bias=True``, default; ``False`` keeps the bias always). The paper
does not rescale at training time (not "inverted"), and neither does this layer.

Inference (``inference=``), the paper's Sec. 3 / Algorithm 2 — the layer must know its
activation ``a`` (``activation=``, a name from :mod:`smithing.nn.activations`), because the
average is taken *after* it:

* ``"gaussian"`` (moment matching): each unit's pre-activation over masks is approximated by a
  Gaussian with the exact mean and variance, ``u ~ N(mu, sigma^2)`` with
  ``mu = (1 - p) (W v + b)`` and ``sigma^2 = p (1 - p) ((W * W)(v * v) + b * b)`` (``b`` terms
  only with ``drop_bias``; otherwise ``+ b`` is added to ``mu`` unscaled); ``samples`` (the
  paper's ``Z``) draws of ``u`` are passed through ``a`` and averaged. Inference is therefore
  random (it draws with ``torch.randn_like``). With ``activation="linear"`` the average is ``mu``
  exactly and no sampling is done.
* ``"mean"``: ``a(mu)``, the cheaper approximation; ``mu = E[u]`` exactly. For a linear
  activation both are exact; for a nonlinear one ``a(E[u]) != E[a(u)]``.

Deterministic pass (:meth:`DropConnectLinear.deterministic`, used by LSUV): inside the context
the layer has its masks off and its mean weights, ``u = mu = E_M[u] = (1 - p)(W v + b)``
(:meth:`DropConnectLinear.preactivation`), and returns ``a(mu)`` in both train and eval mode
(no random draw). Data-dependent initializers normalize ``mu``, the layer's pre-activation,
rather than the sampled output ``a(u)``.

Memory and speed (``masks=``): ``"bits"`` (the default) keeps the per-example masks as packed
bits, ``batch * out * in / 8`` bytes, and computes ``(M_b * W) v_b`` and both gradients with
fused kernels that never write a float mask (:mod:`smithing.nn.dropconnect_kernels`; compiled
with ``torch.compile`` for large layers). With ``p = 0.5`` the bits are drawn directly as fair
random bits (``torch.randint`` words, 32 masks a draw); with any other ``p`` they are drawn as
before, ``torch.rand(...) < 1 - p``, and packed (the same masks as ``masks="float"`` for the
same seed). ``"float"`` is the original path that materializes ``batch * out * (in + 1)``
float mask entries (plus as many for the masked weights), kept for comparison: about 18 min an
epoch on one core for Wan et al.'s 2 x 800 MNIST net against about 1.5 min with ``"bits"`` on
two (docs/RESULTS.md). Either way masks are drawn in chunks of at most ``max_mask_elements``
entries (the draw order of the float path). ``per_example=False`` draws one mask per forward
call (cheap; not the paper's scheme). Under ``torch.func.vmap`` (batched ensembles) the layer
takes the float path with ``torch.rand_like`` / ``torch.randn_like``, so it works under
``vmap(..., randomness="different")``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from smithing._registry import Registry, check
from smithing.nn import activations
from smithing.nn import dropconnect_kernels as _kernels

__all__ = [
    "DROPCONNECT_INFERENCE",
    "MASK_FORMATS",
    "DropConnectLinear",
    "dropconnect_moments",
    "masked_preactivation",
]

#: how training masks are held: packed bits with fused kernels, or materialized floats
MASK_FORMATS = ("bits", "float")
DROPCONNECT_INFERENCE: Registry[str] = Registry("DropConnect inference")
DROPCONNECT_INFERENCE.register(
    "gaussian", "gaussian", description="moment matching: mean of a(N(mu, sigma^2)) samples"
)
DROPCONNECT_INFERENCE.register("mean", "mean", description="a(E[u]) with E[u] = (1-p)(Wv + b)")


def masked_preactivation(
    v: Tensor, weight: Tensor, bias: Tensor | None, mask: Tensor, bias_mask: Tensor | None
) -> Tensor:
    r"""``u = (M * W) v + m_b * b`` for per-example masks.

    $$
    u = (M \odot W)\, v + m_b \odot b
    $$

    with $v$ = ``v`` the input, $W$ = ``weight``, $b$ = ``bias``, $M$ = ``mask`` and $m_b$ =
    ``bias_mask`` the 0/1 keep-masks (one per example, or shared).

    Args:
        v: the inputs ``(batch, in)``.
        weight: $W$, ``(out, in)``.
        bias: $b$, ``(out,)``, or ``None``.
        mask: $M$, ``(batch, out, in)`` or ``(out, in)``.
        bias_mask: $m_b$, ``(batch, out)`` or ``(out,)``, or ``None`` (the bias kept).

    Returns:
        $u$, ``(batch, out)``.

    References:
        Wan, Zeiler, Zhang, LeCun & Fergus, "Regularization of Neural Networks using
        DropConnect", ICML 2013, Sec. 2.
    """
    if mask.ndim == 2:
        u = v @ (mask * weight).T  # (batch, out)
    else:
        u = torch.matmul(mask * weight, v.unsqueeze(-1)).squeeze(-1)  # (batch, out), (M*W) v
    if bias is not None:
        u = u + (bias if bias_mask is None else bias_mask * bias)  # + m_b * b
    return u


def dropconnect_moments(
    v: Tensor, weight: Tensor, bias: Tensor | None, p: float, *, drop_bias: bool = True
) -> tuple[Tensor, Tensor]:
    r"""Mean and variance of ``u`` over the masks (Wan et al. 2013, Sec. 3, Algorithm 2).

    $$
    \mu = (1 - p)(W v + b), \qquad
    \sigma^2 = p (1 - p)\left((W \odot W)(v \odot v) + b \odot b\right)
    $$

    the exact mean and variance over $M_{ij}, m_{b,i} \sim \operatorname{Bernoulli}(1 - p)$
    of the pre-activation $u = (M \odot W) v + m_b \odot b$, with $v$ = ``v``, $W$ =
    ``weight``, $b$ = ``bias`` and $p$ = ``p`` the drop probability. Without ``drop_bias`` the
    bias is added to $\mu$ unscaled and not to $\sigma^2$.

    Args:
        v: the inputs ``(batch, in)``.
        weight: $W$, ``(out, in)``.
        bias: $b$, ``(out,)``, or ``None``.
        p: the drop probability.
        drop_bias: whether the bias is masked too.

    Returns:
        ``(mu, var)``, each ``(batch, out)``.

    Note:
        The paper writes $p$ for the keep probability; here $p$ drops, as in dropout.

    References:
        Wan, Zeiler, Zhang, LeCun & Fergus, "Regularization of Neural Networks using
        DropConnect", ICML 2013, Sec. 3 and Algorithm 2.

    Examples:
        >>> import torch
        >>> dropconnect_moments(torch.tensor([[2.0]]), torch.tensor([[1.0]]), None, 0.5)
        (tensor([[1.]]), tensor([[1.]]))
    """
    keep = 1.0 - p
    mu = keep * (v @ weight.T)  # (batch, out), (1-p) W v
    var = p * keep * (v.square() @ weight.square().T)  # p(1-p) (W*W)(v*v)
    if bias is not None:
        if drop_bias:
            mu = mu + keep * bias
            var = var + p * keep * bias.square()
        else:
            mu = mu + bias
    return mu, var


class DropConnectLinear(nn.Module):
    r"""``a((M * W) v + m_b * b)`` with per-example Bernoulli(1 - p) weight masks in training.

    $$
    r = a\left((M \odot W)\, v + m_b \odot b\right), \quad M_{ij}, m_{b,i} \sim
    \operatorname{Bernoulli}(1 - p) \ \text{(training)}; \qquad
    r \approx \frac{1}{Z} \sum_{z=1}^{Z} a(u_z),\ u_z \sim \mathcal{N}(\mu, \sigma^2)
    \ \text{(inference)}
    $$

    with $v$ the input, $W$ = ``weight``, $b$ = ``bias``, $a$ = ``activation``, $p$ = ``p``,
    $Z$ = ``samples`` and $\mu, \sigma^2$ the masks' mean and variance of the pre-activation
    (:func:`dropconnect_moments`); ``inference="mean"`` returns $a(\mu)$ instead.

    Args:
        in_features: as ``nn.Linear`` (same initialization).
        out_features: as ``nn.Linear``.
        p: drop probability of each weight, in ``[0, 1)``.
        activation: the activation applied after the layer (the layer returns ``a(u)``).
        inference: ``"gaussian"`` (moment matching) or ``"mean"`` (see the module docstring).
        samples: Gaussian draws per unit at inference (the paper's ``Z``).
        drop_bias: mask the bias too (the paper) or keep it.
        per_example: one mask per example (the paper) or one per forward call.
        max_mask_elements: chunk the batch so a chunk's mask has at most this many entries.
        bias: as ``nn.Linear``.
        masks: ``"bits"`` (packed per-example masks, fused kernels; default) or ``"float"``
            (the materialized float masks, for comparison); see the module docstring.

    Note:
        The paper's $p$ is the keep probability; here $p$ drops. No rescaling at training time
        (not "inverted"), as in the paper.

    References:
        Wan, Zeiler, Zhang, LeCun & Fergus, "Regularization of Neural Networks using
        DropConnect", ICML 2013, Sec. 2 (training) and Sec. 3, Algorithm 2 (inference).
    """

    stochastic = True  # smithing.nn.dropout.mc_predict keeps the masks on at inference
    weight: Tensor  # (out_features, in_features), as nn.Linear's
    bias: Tensor | None  # (out_features,), None with bias=False

    def __init__(
        self,
        in_features: int,
        out_features: int,
        p: float = 0.5,
        *,
        bias: bool = True,
        activation: str = "relu",
        inference: str = "gaussian",
        samples: int = 100,
        drop_bias: bool = True,
        per_example: bool = True,
        max_mask_elements: int = 2**24,
        masks: str = "bits",
    ) -> None:
        super().__init__()
        for name, val in (("in_features", in_features), ("out_features", out_features)):
            check(isinstance(val, int) and val > 0, name, val, "a positive int")
        check(isinstance(p, (int, float)) and 0.0 <= p < 1.0, "p", p, "a probability in [0, 1)")
        check(isinstance(samples, int) and samples >= 1, "samples", samples, "a positive int")
        check(
            isinstance(max_mask_elements, int) and max_mask_elements >= 1,
            "max_mask_elements",
            max_mask_elements,
            "a positive int",
        )
        check(masks in MASK_FORMATS, "masks", masks, f"one of {', '.join(MASK_FORMATS)}")
        self.masks = masks
        self.in_features, self.out_features = in_features, out_features
        self.p = float(p)
        self.activation = activation
        self.act = activations.make(activation)  # validates the name
        self.inference = DROPCONNECT_INFERENCE.get(inference)
        self.samples = samples
        self.drop_bias = drop_bias
        self.per_example = per_example
        self.max_mask_elements = max_mask_elements
        self._deterministic = False  # inside deterministic(): a(E[u]), no masks, no samples
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Linear``'s initialization."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def keep(self) -> float:
        return 1.0 - self.p

    def _masks(self, like: Tensor) -> tuple[Tensor, Tensor | None]:
        """Keep-masks shaped like ``like`` ((batch, out, in) or (out, in)) and the bias mask."""
        mask = (torch.rand_like(like) < self.keep).to(like.dtype)  # M ~ Bernoulli(1-p)
        bias_mask = None
        if self.bias is not None and self.drop_bias:
            bias_mask = (torch.rand_like(like[..., 0]) < self.keep).to(like.dtype)  # m_b
        return mask, bias_mask

    def preactivation(self, x: Tensor) -> Tensor:
        """The layer's deterministic pre-activation ``mu = E_M[u] = (1 - p)(W x + b)`` for
        ``x`` of shape ``(..., in)``: the masks off and the mean weights ``E[M * W] = (1 - p) W``
        (Wan et al. 2013, Sec. 3; without ``drop_bias`` the bias is added unscaled). The
        pre-activation LSUV normalizes (the layer's forward returns ``a(u)``, after the
        activation). Shape ``(..., out)``.
        """
        keep = self.keep
        u = keep * nn.functional.linear(x, self.weight)  # (..., out), (1-p) W x
        if self.bias is not None:
            u = u + (keep * self.bias if self.drop_bias else self.bias)  # + (1-p) b, or + b
        return u

    @contextlib.contextmanager
    def deterministic(self) -> Iterator[DropConnectLinear]:
        """A context in which ``forward`` returns ``a(preactivation(x))`` in train and eval mode
        alike: no mask and no inference sample is drawn (LSUV's forward passes)."""
        previous = self._deterministic
        self._deterministic = True
        try:
            yield self
        finally:
            self._deterministic = previous

    def preactivation_train(self, v: Tensor) -> Tensor:
        """One draw of ``u = (M * W) v + m_b * b`` for ``v`` of shape ``(batch, in)``."""
        if self.p == 0.0:
            return nn.functional.linear(v, self.weight, self.bias)
        out, inn = self.weight.shape
        if not self.per_example:
            mask, bias_mask = self._masks(self.weight)  # (out, in), (out,)
            return masked_preactivation(v, self.weight, self.bias, mask, bias_mask)
        if self.masks == "bits" and not (_is_batched(v) or _is_batched(self.weight)):
            return self._preactivation_bits(v)
        step = max(1, self.max_mask_elements // (out * (inn + 1)))
        parts = []
        for lo in range(0, v.shape[0], step):
            vc = v[lo : lo + step]  # (c, in)
            like = vc[:, None, :].expand(vc.shape[0], out, inn)  # (c, out, in)
            mask, bias_mask = self._masks(like)
            parts.append(masked_preactivation(vc, self.weight, self.bias, mask, bias_mask))
        return torch.cat(parts) if len(parts) > 1 else parts[0]  # (batch, out)

    def _preactivation_bits(self, v: Tensor) -> Tensor:
        """``(M_b * W) v_b + m_b * b`` with the masks as packed bits (never a float mask)."""
        out, inn = self.weight.shape
        drop_bias = self.bias is not None and self.drop_bias
        if self.p == 0.5:  # fair bits, 32 Bernoulli(1/2) masks per int32 word: no chunks needed
            w = _kernels.random_words((v.shape[0], out, inn), v.device)
            mb = None
            if drop_bias:
                mb = (torch.rand(v.shape[0], out, device=v.device) < 0.5).to(self.weight.dtype)
            return _kernels.dropconnect_packed(v, self.weight, self.bias, w, mb)
        step = max(1, self.max_mask_elements // (out * (inn + 1)))
        words, bias_masks = [], []
        for lo in range(0, v.shape[0], step):  # the float path's draw order, chunk by chunk
            # M ~ Bernoulli(1 - p) as torch.rand < 1 - p, as the float path draws it
            c = min(step, v.shape[0] - lo)
            like = v[lo : lo + c, None, :].expand(c, out, inn)  # as the float path
            words.append(_kernels.pack_mask(torch.rand_like(like) < self.keep))
            if drop_bias:
                bias_masks.append(torch.rand_like(like[..., 0]) < self.keep)
        w = torch.cat(words) if len(words) > 1 else words[0]  # (batch, out, ceil(in / 32))
        mb = None
        if drop_bias:
            mb = (torch.cat(bias_masks) if len(bias_masks) > 1 else bias_masks[0]).to(
                self.weight.dtype
            )  # (batch, out)
        return _kernels.dropconnect_packed(v, self.weight, self.bias, w, mb)

    def forward_inference(self, v: Tensor) -> Tensor:
        """Inference output ``a(u)`` by the configured approximation (no masks)."""
        mu, var = dropconnect_moments(v, self.weight, self.bias, self.p, drop_bias=self.drop_bias)
        if self.inference == "mean" or self.activation == "linear" or self.p == 0.0:
            return self.act(mu)  # a(E[u])
        std = var.sqrt()
        step = max(1, self.max_mask_elements // max(1, mu.numel()))
        total = torch.zeros_like(mu)
        for lo in range(0, self.samples, step):
            z = min(step, self.samples - lo)
            eps = torch.randn_like(mu.unsqueeze(0).expand(z, *mu.shape))  # (z, batch, out)
            total = total + self.act(mu + std * eps).sum(dim=0)  # u ~ N(mu, sigma^2), Alg. 2
        return total / self.samples  # mean over Z samples of a(u)

    def forward(self, x: Tensor) -> Tensor:
        lead = x.shape[:-1]
        v = x.reshape(-1, self.in_features)  # (batch, in)
        if self._deterministic:
            r = self.act(self.preactivation(v))  # a(E[u]): masks off, mean weights
        elif self.training:
            r = self.act(self.preactivation_train(v))
        else:
            r = self.forward_inference(v)
        return r.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, p={self.p}, "
            f"activation={self.activation!r}, inference={self.inference!r}, "
            f"samples={self.samples}, drop_bias={self.drop_bias}, masks={self.masks!r}"
        )


def _is_batched(t: Tensor) -> bool:
    """True inside ``torch.func.vmap`` (a batched tensor): the custom kernels have no vmap
    rule there, so the float path runs."""
    return bool(torch._C._functorch.is_batchedtensor(t))
