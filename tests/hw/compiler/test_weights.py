"""Offline weight packing: bitmaps + compressed stores round-trip to the layer's weights."""

import numpy as np
import pytest

from fireflys_sw.artifact import LayerKind
from fireflys_sw.golden import signed_bits
from fireflys_hw.compiler.weights import expanded_weight, pack_weights
from layers_helpers import random_layer


@pytest.mark.parametrize("seed", range(20))
def test_round_trip(seed):
    rng = np.random.default_rng(seed)
    layer = random_layer(rng)
    p_co = int(rng.integers(1, layer.out_channels + 1))
    p_ci = int(rng.choice([1, 4, 8, 16]))
    input_bits = int(rng.choice([1, 1, 3]))
    pw = pack_weights(layer, p_co, p_ci, input_bits)
    w = expanded_weight(layer, input_bits)
    assert np.array_equal(pw.unpack(), w), f"seed {seed}"
    # every stored weight is non-zero and the stores hold exactly the non-zeros
    assert sum(len(s) for s in pw.stores) == int((w != 0).sum())
    assert all((s != 0).all() for s in pw.stores)
    nz = w[w != 0]
    if nz.size:
        assert pw.weight_bits == max(2, signed_bits(int(nz.min()), int(nz.max())))
    # bases: running count of the lane's non-zeros in (group, chunk) order
    counts = pw.bitmaps.sum(axis=-1).reshape(p_co, -1)
    assert np.array_equal(pw.bases.reshape(p_co, -1), np.cumsum(counts, 1) - counts)
    assert max(len(s) for s in pw.stores) < 1 << pw.address_bits
    assert pw.n_chunks == pw.kernel[0] * pw.kernel[1] * pw.n_ci_chunks


def test_bit_planes():
    rng = np.random.default_rng(1)
    layer = random_layer(rng, kind=LayerKind.CONV, ci=2, co=3, k=3)
    w = expanded_weight(layer, 4)
    assert w.shape == (3, 8, 3, 3)
    for c in range(2):
        for b in range(4):
            assert np.array_equal(w[:, c * 4 + b], layer.weight[:, c] * 2 ** b)


def test_fc_window_order():
    rng = np.random.default_rng(2)
    layer = random_layer(rng, kind=LayerKind.FC, ci=3, co=2, hw=(2, 3))
    pw = pack_weights(layer, 2, 2)
    assert pw.kernel == (2, 3)
    assert np.array_equal(pw.unpack().reshape(2, -1), layer.weight)


def test_errors():
    rng = np.random.default_rng(3)
    layer = random_layer(rng, co=4)
    with pytest.raises(ValueError, match=r"^p_co must be at most the layer's output channels "
                                         r"\(4\), not 5$"):
        pack_weights(layer, 5, 4)
    with pytest.raises(ValueError, match=r"^p_ci must be at least 1, not 0$"):
        pack_weights(layer, 2, 0)
    with pytest.raises(TypeError, match=r"^input_bits must be an integer, not 1.5$"):
        pack_weights(layer, 2, 4, 1.5)
