import dataclasses

import numpy as np

from fireflys_sw.compress import remove_silent_channels, silent_channels
from fireflys_sw.golden import run_golden
from fireflys_sw.synthetic import random_artifact, random_images


def silence(layer, channels, bias):
    weight = layer.weight.copy()
    weight[channels] = 0
    b = layer.bias.copy()
    b[channels] = bias
    return dataclasses.replace(layer, weight=weight, bias=b)


def test_silent_channels_are_removed_and_output_is_unchanged():
    for spec in ("1x10x10-6c3p1-mp2-5c3p1-4fc", "1x8x8-6c3p1-5c3p1-mp2-4c4p0"):
        artifact = random_artifact(spec, seed=4, weight_sparsity=0.5)
        layers = list(artifact.layers)
        th = layers[0].threshold
        # channels 1 and 3: empty kernel, bias below threshold -> silent; channel 4: empty
        # kernel but a bias that reaches threshold -> fires regardless, must stay
        layers[0] = silence(layers[0], [1, 3], -5)
        layers[0] = silence(layers[0], [4], int(th[4]) * 4)
        k = 2 if spec.count("mp2") and spec.index("mp2") < spec.index("5c3") else 1
        layers[k] = silence(layers[k], [0], 0)
        artifact = dataclasses.replace(artifact, layers=tuple(layers))
        assert silent_channels(artifact.layers[0], artifact.T).tolist() == [
            False, True, False, True, False, False]
        compressed, removed = remove_silent_channels(artifact)
        assert removed[:2] == [2, 1]
        assert compressed.layers[0].out_shape[0] == 4
        images = random_images(artifact, 16, seed=1)
        np.testing.assert_array_equal(run_golden(artifact, images).scores,
                                      run_golden(compressed, images).scores)


def test_bias_alone_reaching_threshold_late_keeps_the_channel():
    artifact = random_artifact("1x6x6-2c3p1-3fc", seed=0, T=4)
    layer = artifact.layers[0]
    # with tau = 2, a constant current I gives H = I/2, 3I/4, 7I/8, 15I/16: TH = 15 fires at t=3
    layer = silence(dataclasses.replace(layer, threshold=np.array([15, 15])), [0, 1], 16)
    layer = dataclasses.replace(layer, bias=np.array([16, 15]))
    assert silent_channels(layer, 4).tolist() == [False, True]
    assert silent_channels(layer, 3).tolist() == [True, True]
