"""The sizes read off the weight matrix, for both layouts and with a members axis."""

import pytest

from smithing.pretrain import BernoulliRBM, ClassRBM, DenoisingAutoencoder, GaussianBernoulliRBM


@pytest.mark.parametrize("members", [None, 3])
@pytest.mark.parametrize(
    "make",
    [
        lambda m: BernoulliRBM(7, 5, members=m),
        lambda m: GaussianBernoulliRBM(7, 5, members=m),
        lambda m: ClassRBM(7, 5, 4, members=m),
        lambda m: DenoisingAutoencoder(7, 5, members=m),
    ],
)
def test_sizes_from_the_weight(make, members):
    layer = make(members)
    assert (layer.n_visible, layer.n_hidden, layer.members) == (7, 5, members)
