"""Radix encoding (E3NE): the golden model against a slow digit-serial reading of the contract,
the widths, the artifact's version-2 fields, and the PyTorch QAT model against its export."""

import dataclasses

import numpy as np
import pytest

from fireflys_sw.artifact import (LayerKind, PoolLayer, SynapticLayer, load_artifact,
                                  save_artifact)
from fireflys_sw.errors import ArtifactError
from fireflys_sw.golden import (encode_input, layer_widths, radix_digits, radix_value,
                                rounding_shift, run_golden)
from fireflys_sw.spec import NeuronKind
from fireflys_sw.synthetic import random_artifact, random_images, random_radix_artifact


def digit_serial_max(values, T):
    """The max of T-bit values as an MSB-first digit-serial comparator computes it: a
    candidate stays in the race while its digits equal the best digit of each step."""
    alive = list(range(len(values)))
    out = 0
    for t in range(T):
        digits = [(values[i] >> (T - 1 - t)) & 1 for i in alive]
        best = max(digits)
        alive = [i for i, d in zip(alive, digits) if d == best]
        out = 2 * out + best
    return out


def naive_radix(artifact, image):
    """The radix contract for one image, element by element, digit by digit."""
    T = artifact.T
    top = (1 << T) - 1
    X = [[[(2 * int(v) * artifact.input_max + 255) // 510 for v in row] for row in ch]
         for ch in image]
    # the first layer's input is an integer frame; later ones are digit planes x[t][c][h][w]
    first = True
    for layer in artifact.layers:
        if isinstance(layer, PoolLayer):
            k = layer.kernel
            c, oh, ow = layer.out_shape
            vals = [[[sum(x[t][ch][i][j] << (T - 1 - t) for t in range(T))
                      for j in range(layer.in_shape[2])] for i in range(layer.in_shape[1])]
                    for ch in range(c)]
            pooled = [[[digit_serial_max([vals[ch][i * k + a][j * k + b] for a in range(k)
                                          for b in range(k)], T)
                        for j in range(ow)] for i in range(oh)] for ch in range(c)]
            x = [[[[(v >> (T - 1 - t)) & 1 for v in row] for row in ch] for ch in pooled]
                 for t in range(T)]
            continue
        co, oh, ow = layer.out_shape
        ci, h, w = layer.in_shape

        def dot(plane, o, i, j):
            acc = 0
            if layer.kind is LayerKind.FC:
                flat = [plane[cc][a][b] for cc in range(ci) for a in range(h) for b in range(w)]
                return sum(int(wv) * v for wv, v in zip(layer.weight[o], flat))
            kk, p = layer.kernel, layer.padding
            for cc in range(ci):
                for a in range(kk):
                    for b in range(kk):
                        r, s = i + a - p, j + b - p
                        if 0 <= r < h and 0 <= s < w:
                            acc += int(layer.weight[o, cc, a, b]) * plane[cc][r][s]
            return acc

        out = [[[0] * ow for _ in range(oh)] for _ in range(co)]
        for o in range(co):
            for i in range(oh):
                for j in range(ow):
                    if first:
                        acc = int(layer.bias[o]) + dot(X, o, i, j)
                    else:
                        v = 0
                        for t in range(T):        # V = 2 V + I_t, the bias with the last digit
                            v = 2 * v + dot(x[t], o, i, j) + (int(layer.bias[o]) if t == T - 1
                                                              else 0)
                        acc = v
                    if layer.is_readout:
                        out[o][i][j] = acc
                        continue
                    s = int(layer.shift[o])
                    y = acc if s == 0 else (acc >> s) + ((acc >> (s - 1)) & 1)
                    out[o][i][j] = min(max(y, 0), top)
        if layer.is_readout:
            return [out[o][0][0] for o in range(co)]
        x = [[[[(v >> (T - 1 - t)) & 1 for v in row] for row in ch] for ch in out]
             for t in range(T)]
        first = False


@pytest.mark.parametrize("seed,T,spec,input_bits", [
    (0, 4, "1x8x8-4c3p1-mp2-6c3p1-5fc", None),
    (1, 3, "2x7x7-3c3p1-5c2p0-mp2-4", None),
    (2, 6, "1x6x6-4c3p1-mp2-3c3p1-4fc", 8),
    (3, 2, "1x9x9-3c3p1-mp3-4c1p0-3", None),
])
def test_golden_matches_digit_serial_reference(seed, T, spec, input_bits):
    artifact = random_radix_artifact(spec, seed=seed, T=T, input_bits=input_bits,
                                     weight_sparsity=0.4)
    images = random_images(artifact, 3, seed=seed)
    golden = run_golden(artifact, images, record=True)
    for n, image in enumerate(images):
        assert golden.scores[n].tolist() == naive_radix(artifact, image), f"seed {seed}, image {n}"
    # values are spread over the range (the test exercises clipping and zeros)
    digits = np.concatenate([d.reshape(-1) for d in golden.spikes[:-1]])
    assert 0.05 < digits.mean() < 0.95


def test_pool_is_the_max_of_values_not_the_or_of_digits():
    # 0b0110 and 0b1001: OR of digits is 0b1111 = 15, max is 9
    assert digit_serial_max([6, 9], 4) == 9
    rng = np.random.default_rng(0)
    for _ in range(200):
        values = rng.integers(0, 64, size=rng.integers(1, 9)).tolist()
        assert digit_serial_max(values, 6) == max(values)


def test_rounding_shift_rounds_half_up():
    acc = np.arange(-20, 21).reshape(1, 1, -1)          # one channel, many positions
    for s in range(0, 5):
        expected = np.floor(acc / 2 ** s + 0.5).astype(np.int64)
        np.testing.assert_array_equal(rounding_shift(acc, np.array([s])), expected)


def test_digits_round_trip():
    values = np.arange(16).reshape(2, 8)
    digits = radix_digits(values, 4)
    assert digits.shape == (2, 4, 8)
    assert digits[1, :, 1].tolist() == [1, 0, 0, 1]          # 9, MSB first
    np.testing.assert_array_equal(radix_value(digits), values)


@pytest.mark.parametrize("T", [3, 4, 6])
def test_widths_hold_the_extremes(T):
    artifact = random_radix_artifact("1x6x6-5c3p1-mp2-4c3p1-3fc", seed=T, T=T,
                                     weight_sparsity=0.3)
    for i, layer in enumerate(artifact.layers):
        if not isinstance(layer, SynapticLayer):
            continue
        vmax = artifact.value_max(i)
        widths = layer_widths(layer, vmax, T, radix=True)
        w = layer.weight.reshape(layer.out_channels, -1)
        for sign in (1, -1):                  # every input at 0 or its max, against the weights
            x = np.where(sign * w > 0, vmax, 0)
            acc = layer.bias + (w * x).sum(axis=1)
            assert widths.current[0] <= acc.min() and acc.max() <= widths.current[1]
            # digit-serial partial sums of the same input
            v = np.zeros(layer.out_channels, np.int64)
            for t in range(T if i else artifact.input_bits):
                bits = T if i else artifact.input_bits
                v = 2 * v + (w * ((x >> (bits - 1 - t)) & 1)).sum(axis=1)
                assert widths.membrane[0] <= v.min() and v.max() <= widths.membrane[1]
        if layer.is_readout:
            assert widths.score == widths.current


def test_artifact_round_trip_and_version(tmp_path):
    artifact = random_radix_artifact("scnn5", seed=4, T=4)
    path = save_artifact(artifact, tmp_path / "r.npz")
    loaded = load_artifact(path)
    assert loaded.version == 2 and loaded.radix
    images = random_images(artifact, 4, seed=1)
    np.testing.assert_array_equal(run_golden(artifact, images).scores,
                                  run_golden(loaded, images).scores)
    for a, b in zip(artifact.synaptic_layers, loaded.synaptic_layers):
        if a.shift is not None:
            np.testing.assert_array_equal(a.shift, b.shift)
    # LIF artifacts keep version 1
    lif = random_artifact("1x8x8-4c3p1-3fc", seed=0)
    assert load_artifact(save_artifact(lif, tmp_path / "l.npz")).version == 1


def _rewrite_header(path, out, edit):
    import json
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays["header"].tobytes().decode())
    edit(header, arrays)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(out, **arrays)
    return out


def test_artifact_rejects(tmp_path):
    artifact = random_radix_artifact("1x8x8-4c3p1-mp2-3c3p1-3fc", seed=0, T=4)
    path = save_artifact(artifact, tmp_path / "r.npz")

    def version1(h, a):
        h["version"] = 1
    with pytest.raises(ArtifactError, match=r"layers\[0\]\.neuron is 'radix', which needs "
                                            r"version 2, but the file is version 1"):
        load_artifact(_rewrite_header(path, tmp_path / "v1.npz", version1))

    def no_shift(h, a):
        del a["layers.0.shift"]
    with pytest.raises(ArtifactError, match=r"layers\[0\]\.shift is missing"):
        load_artifact(_rewrite_header(path, tmp_path / "ns.npz", no_shift))

    def big_shift(h, a):
        a["layers.0.shift"] = a["layers.0.shift"] + 40
    with pytest.raises(ArtifactError, match=r"layers\[0\]\.shift has values in .*outside "
                                            r"\[0, 31\]"):
        load_artifact(_rewrite_header(path, tmp_path / "bs.npz", big_shift))

    layers = list(artifact.layers)
    layers[0] = dataclasses.replace(layers[0], neuron=NeuronKind.LIF, leak_shift=1, shift=None,
                                    threshold=np.ones(4, np.int64))
    with pytest.raises(ArtifactError, match=r"layers\[0\]\.neuron is 'lif', but a network with "
                                            r"radix layers must be radix throughout"):
        dataclasses.replace(artifact, layers=tuple(layers)).validate()
    layers = list(artifact.layers)
    layers[0] = dataclasses.replace(layers[0], threshold=np.ones(4, np.int64))
    with pytest.raises(ArtifactError, match=r"layers\[0\]\.threshold must be absent for a radix "
                                            r"layer"):
        dataclasses.replace(artifact, layers=tuple(layers)).validate()


# --- PyTorch QAT model against its export ----------------------------------------------------

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("T,spec", [(4, "1x12x12-4c3p1-mp2-8c3p1-mp2-10fc"),
                                    (3, "1x10x10-4c3p1-6c3p1-mp2-5"),
                                    (6, "1x8x8-3c3p1-mp2-4c3p1-3fc")])
def test_qat_model_matches_exported_artifact(T, spec):
    from fireflys_sw.radix import RadixNet, export_radix
    torch.manual_seed(T)
    rng = np.random.default_rng(T)
    model = RadixNet(spec, T=T, weight_bits=4)
    c, h, w = model.spec.input_shape
    images = rng.integers(0, 256, size=(64, c, h, w)).astype(np.float32)
    labels = torch.from_numpy(rng.integers(0, model.spec.classes, 64))
    x = torch.from_numpy(images)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.prune(0.3)                                # phase 1 prunes the float weights
    for _ in range(3):                              # phase 1: BN statistics move
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.fold()
    model.prune(0.5)  # after folding: masks on the folded weights
    optimiser = torch.optim.Adam(list(model.v) + list(model.b), lr=1e-3)
    for _ in range(3):                              # phase 2: integer QAT steps
        loss = torch.nn.functional.cross_entropy(model.logits(model(x)), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    artifact = export_radix(model, name="t")
    with torch.no_grad():
        scores = model(x).numpy()
    golden = run_golden(artifact, images.astype(np.uint8))
    np.testing.assert_array_equal(scores.astype(np.int64), golden.scores)
    assert np.array_equal(scores, np.round(scores))
    # the model exercises the requantisation (some zeros, some non-zero activations)
    assert 0 < artifact.weight_sparsity() < 1
    rec = run_golden(artifact, images[:8].astype(np.uint8), record=True)
    density = [d for d in rec.spike_density() if d is not None]
    assert 0 < density[0] < 1, density


@pytest.mark.parametrize("T", [3, 4, 6])
def test_model_from_artifact_computes_the_artifact(T):
    from fireflys_sw.radix import radix_model_from_artifact
    artifact = random_radix_artifact("1x10x10-4c3p1-mp2-6c3p1-5fc", seed=T, T=T)
    images = random_images(artifact, 16, seed=T)
    model = radix_model_from_artifact(artifact).eval()
    with torch.no_grad():
        scores = model(torch.from_numpy(images.astype(np.float32))).numpy()
    np.testing.assert_array_equal(scores.astype(np.int64), run_golden(artifact, images).scores)
