"""Plain ``nn.Module`` building blocks: the MLP, dropout, DropConnect, Elman RNNs.

* :class:`MLP` (:mod:`smithing.nn.mlp`), with dropout or DropConnect layers by option;
* dropout (:mod:`smithing.nn.dropout`): :class:`Dropout` in its ``"inverted"``, ``"lecture"``
  and ``"gaussian"`` modes, :func:`make_dropout`, Monte-Carlo dropout :func:`mc_predict`,
  dropout as model averaging :func:`enumerate_subnetworks`;
* DropConnect (:mod:`smithing.nn.dropconnect`): :class:`DropConnectLinear` and its moment
  matching inference :func:`dropconnect_moments`, :func:`masked_preactivation`;
* simple recurrent networks (:mod:`smithing.nn.rnn`, documented on the recurrent networks
  page): :class:`ElmanRNN`, :func:`elman_unroll`, the recurrent initializations
  :func:`init_recurrent_`, the constraints and :func:`identity_penalty`, the readouts.
"""

from smithing.nn.dropconnect import (
    DROPCONNECT_INFERENCE,
    DropConnectLinear,
    dropconnect_moments,
    masked_preactivation,
)
from smithing.nn.dropout import (
    DROPOUT_MODES,
    Dropout,
    SubnetworkAverage,
    enumerate_subnetworks,
    make_dropout,
    mc_predict,
)
from smithing.nn.mlp import MLP
from smithing.nn.rnn import (
    CONSTRAINTS,
    RECURRENT_INITS,
    ElmanRNN,
    RecurrentRegularizer,
    RNNClassifier,
    RNNRegressor,
    clip_singular_values_,
    elman_unroll,
    enforce_constraints,
    identity_penalty,
    init_recurrent_,
    project_identity_ball_,
    project_orthogonal_,
)

__all__ = [
    "CONSTRAINTS",
    "DROPCONNECT_INFERENCE",
    "DROPOUT_MODES",
    "MLP",
    "RECURRENT_INITS",
    "DropConnectLinear",
    "Dropout",
    "ElmanRNN",
    "RNNClassifier",
    "RNNRegressor",
    "RecurrentRegularizer",
    "SubnetworkAverage",
    "clip_singular_values_",
    "dropconnect_moments",
    "elman_unroll",
    "enforce_constraints",
    "enumerate_subnetworks",
    "identity_penalty",
    "init_recurrent_",
    "make_dropout",
    "masked_preactivation",
    "mc_predict",
    "project_identity_ball_",
    "project_orthogonal_",
]
