"""The batch plumbing the single-stage pretrainers share (:func:`~smithing.pretrain.rbm.train_rbm`,
:func:`~smithing.pretrain.autoencoder.train_autoencoder`): the data's shape for one model or an
ensemble of ``M`` members, one data order per member, and a batch of each member's rows."""

from __future__ import annotations

import torch
from torch import Tensor

from smithing._registry import check

__all__ = ["MemberBatches"]


class MemberBatches:
    """Mini-batches of ``data`` for a layer of ``members`` (None: one model) with ``n_visible``
    inputs: ``data`` is ``(n, n_visible)``, shared by all members, or ``(M, n, n_visible)``,
    one set per member (checked here, ``ValueError`` naming ``data.shape``)."""

    def __init__(self, data: Tensor, n_visible: int, members: int | None) -> None:
        M = members
        self.shared = data.dim() == 2
        check(
            data.shape[-1] == n_visible
            and (self.shared or (M is not None and data.dim() == 3 and data.shape[0] == M)),
            "data.shape",
            tuple(data.shape),
            f"(n, {n_visible})" + ("" if M is None else f" or ({M}, n, {n_visible})"),
        )
        self.members = M
        self.n = data.shape[-2]
        # (M, 1): row m of a (M, B) index picks member m's own data
        self.members_idx = None if M is None else torch.arange(M, device=data.device)[:, None]

    def order(self, generator: torch.Generator | None, device: torch.device | str) -> Tensor:
        """An epoch's order, drawn on ``device``: ``(n,)`` for one model, ``(M, n)`` (an
        independent permutation per member) for an ensemble."""
        if self.members is None:
            return torch.randperm(self.n, generator=generator, device=device)  # (n,)
        return torch.rand((self.members, self.n), generator=generator, device=device).argsort(-1)

    def take(self, data: Tensor, idx: Tensor) -> Tensor:
        """The rows ``idx (*M, B)`` of ``data``: ``(*M, B, n_visible)``."""
        if self.members_idx is None or self.shared:
            return data[idx]
        return data[self.members_idx, idx]
