"""NIR graphs in: every supported node, scalar and per-neuron parameters, both threshold
conventions, the other frameworks' conventions, and every refusal pinned by its message."""

import re

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason="the nir package is not installed (pip install "
                                        "'fireflys[interop]')")

from fireflys_sw.artifact import LayerKind, PoolLayer  # noqa: E402
from fireflys_sw.golden import run_golden  # noqa: E402
from fireflys_sw.interop import InteropError, import_nir  # noqa: E402
from fireflys_sw.interop.chain import (FloatChain, FloatLayer, FloatNeuron,  # noqa: E402
                                       FloatSynapse)
from fireflys_sw.interop.quantize import QuantOptions, quantise_chain  # noqa: E402
from fireflys_sw.interop.reference import run_float_chain  # noqa: E402
from fireflys_sw.spec import NeuronKind  # noqa: E402

pytestmark = pytest.mark.interop

DT = 1e-4


def chain_graph(*nodes, names=None, type_check=False):
    """A NIR chain: Input, the nodes in order, edges between neighbours."""
    names = names or [f"n{i}" for i in range(len(nodes))]
    graph_nodes = dict(zip(names, nodes))
    return nir.NIRGraph(nodes=graph_nodes, edges=list(zip(names, names[1:])),
                        type_check=type_check)


def lif(shape, tau_steps=2.0, threshold=1.0, r=None, v_leak=0.0, v_reset=0.0, dt=DT):
    """snnTorch's convention: tau = steps * dt, r = tau / dt."""
    tau = tau_steps * dt
    r = tau / dt if r is None else r
    full = lambda v: np.broadcast_to(np.asarray(v, float), shape).copy()  # noqa: E731
    return nir.LIF(tau=full(tau), r=full(r), v_leak=full(v_leak), v_threshold=full(threshold),
                   v_reset=full(v_reset))


def scalar_lif(tau_steps=2.0, threshold=1.0, dt=DT):
    tau = tau_steps * dt
    return nir.LIF(tau=np.array(tau), r=np.array(tau / dt), v_leak=np.array(0.0),
                   v_threshold=np.array(threshold), v_reset=np.array(0.0))


def conv(co, ci, k=3, padding=1, stride=1, groups=1, seed=0, integer=True, input_hw=None):
    rng = np.random.default_rng(seed)
    weight = (rng.integers(-8, 8, (co, ci, k, k)) if integer
              else rng.normal(0, 0.3, (co, ci, k, k))).astype(float)
    return nir.Conv2d(input_shape=input_hw, weight=weight, stride=stride, padding=padding,
                      dilation=1, groups=groups, bias=np.zeros(co))


def affine(co, n, seed=0, integer=True):
    rng = np.random.default_rng(seed)
    weight = (rng.integers(-8, 8, (co, n)) if integer else rng.normal(0, 0.3, (co, n)))
    return nir.Affine(weight=weight.astype(float), bias=np.arange(co, dtype=float))


def every_node_graph(per_neuron=True):
    """Input, Conv2d, LIF, SumPool2d + Threshold, Flatten, Affine, IF, Linear, LI, Output."""
    lif1 = lif((2, 6, 6), tau_steps=4.0, threshold=4 * 2.5) if per_neuron else \
        scalar_lif(tau_steps=4.0, threshold=4 * 2.5)
    if_node = (nir.IF(r=np.ones(4), v_threshold=np.full(4, 3.0), v_reset=np.zeros(4))
               if per_neuron else
               nir.IF(r=np.array(1.0), v_threshold=np.array(3.0), v_reset=np.array(0.0)))
    return chain_graph(
        nir.Input(input_type=np.array([1, 6, 6])),
        conv(2, 1, input_hw=(6, 6)),
        lif1,
        nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                      padding=np.array([0, 0])),
        nir.Threshold(threshold=np.zeros((2, 3, 3))),
        nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0, end_dim=-1),
        affine(4, 18),
        if_node,
        nir.Linear(weight=np.eye(3, 4) * 2),
        nir.LI(tau=np.full(3, 2e-4), r=np.ones(3), v_leak=np.zeros(3)),
        nir.Output(output_type=np.array([3])))


def test_every_supported_node():
    # input_range 255: the graph takes integer pixels, so its integer weights stay as they are
    result = import_nir(every_node_graph(), input_range=255.0, remove_silent=False)
    a = result.artifact
    kinds = [l.kind for l in a.layers]
    assert kinds == [LayerKind.CONV, LayerKind.MAXPOOL, LayerKind.FC, LayerKind.FC]
    c0, pool, f1, readout = a.layers
    assert isinstance(pool, PoolLayer) and pool.kernel == 2
    # integer weights are kept exactly (unit 1); r = tau/dt = 4 is folded into the threshold
    assert (c0.weight == every_node_graph().nodes["n1"].weight).all()
    assert c0.neuron is NeuronKind.LIF and c0.leak_shift == 2
    assert list(c0.threshold) == [3, 3]          # fires on v/r > 2.5: H >= 3
    assert f1.neuron is NeuronKind.IF and list(f1.threshold) == [4] * 4  # v > 3: H >= 4
    assert list(f1.bias) == [0, 1, 2, 3]
    assert readout.is_readout and (readout.weight == np.eye(3, 4) * 2).all()
    assert [m["step_rule"] for m in result.mappings if "step_rule" in m] == ["integer"] * 3
    assert any("dt = 0.0001 recovered" in n for n in result.chain.notes)


def test_scalar_parameters_broadcast_like_per_neuron_ones():
    a = import_nir(every_node_graph(per_neuron=True), remove_silent=False).artifact
    b = import_nir(every_node_graph(per_neuron=False), remove_silent=False).artifact
    assert a.layers[0].leak_shift == b.layers[0].leak_shift == 2
    x = np.random.default_rng(0).integers(0, 256, (16, 1, 6, 6), dtype=np.uint8)
    assert (run_golden(a, x).scores == run_golden(b, x).scores).all()
    for la, lb in zip(a.synaptic_layers, b.synaptic_layers):
        assert (la.threshold is None) == (lb.threshold is None)
        if la.threshold is not None:
            assert (la.threshold == lb.threshold).all()


def _one_layer_chain(threshold, strict):
    syn = FloatSynapse("fc", LayerKind.FC, (4, 1, 1), (2, 1, 1), 0, 0,
                       np.array([[1.0, 2, 0, -1], [3, 0, 1, 1]]), np.zeros(2))
    neuron = FloatNeuron("if", NeuronKind.IF, None, np.array([threshold, threshold]), strict)
    readout = FloatSynapse("out", LayerKind.FC, (2, 1, 1), (2, 1, 1), 0, 0, np.eye(2),
                           np.zeros(2))
    return FloatChain("t", "test", (4, 1, 1), (
        FloatLayer(syn, neuron),
        FloatLayer(readout, FloatNeuron("o", NeuronKind.NONE, None, None, strict))))


@pytest.mark.parametrize("threshold, strict, expected", [
    (3.0, True, 4), (3.0, False, 3), (2.5, True, 3), (2.5, False, 3)])
def test_threshold_conventions_are_exact_on_integers(threshold, strict, expected):
    chain = _one_layer_chain(threshold, strict)
    opts = QuantOptions(input_range=255.0, remove_silent=False)
    artifact, _ = quantise_chain(chain, opts)
    assert list(artifact.layers[0].threshold) == [expected] * 2
    # IF with integer weights: the float source and the integer network agree exactly
    x = np.random.default_rng(1).integers(0, 4, (64, 4, 1, 1), dtype=np.uint8)
    ref = run_float_chain(chain, x, T=4, input_range=255.0)
    assert (ref == run_golden(artifact, x).scores).all()


def test_float_weights_get_per_channel_steps():
    graph = chain_graph(nir.Input(input_type=np.array([1, 6, 6])),
                        conv(3, 1, integer=False), lif((3, 6, 6), threshold=2 * 0.5),
                        nir.Flatten(input_type={"input": np.array([3, 6, 6])}, start_dim=0,
                                    end_dim=-1),
                        affine(5, 108, integer=False), nir.Output(output_type=np.array([5])))
    for bits in (4, 8):
        result = import_nir(graph, weight_bits=bits, remove_silent=False)
        layer = result.artifact.layers[0]
        assert layer.weight.min() >= -(1 << (bits - 1)) and layer.weight.max() < 1 << (bits - 1)
        m = result.mappings[0]
        assert m["step_rule"] == "lsq" and m["step_per"] == "channel" and m["leak_rounding"]
        assert result.mappings[1]["step_per"] == "layer"
    rmax = import_nir(graph, weight_bits=4, step_rule="max", remove_silent=False)
    assert np.abs(rmax.artifact.layers[0].weight).reshape(3, -1).max(axis=1).tolist() == [7] * 3


def test_pruning_to_a_target_sparsity():
    graph = chain_graph(nir.Input(input_type=np.array([1, 6, 6])), conv(3, 1, integer=False),
                        lif((3, 6, 6)), nir.Flatten(input_type={"input": np.array([3, 6, 6])},
                                                    start_dim=0, end_dim=-1),
                        affine(5, 108, integer=False), nir.Output(output_type=np.array([5])))
    a = import_nir(graph, sparsity=0.8, remove_silent=False).artifact
    for layer in a.synaptic_layers:
        assert (layer.weight == 0).mean() >= 0.8


def test_readout_lif_is_read_as_summed_current():
    graph = chain_graph(nir.Input(input_type=np.array([4])), affine(3, 4), lif((3,)),
                        nir.Output(output_type=np.array([3])))
    result = import_nir(graph)
    assert result.artifact.layers[-1].is_readout
    assert any("read as the contract's readout" in n for n in result.chain.notes)


def test_written_files_read_back(tmp_path):
    path = tmp_path / "net.nir"
    nir.write(path, every_node_graph())
    result = import_nir(path, remove_silent=False)
    assert result.chain.name == "net"
    assert any(n.startswith("NIR file written by nir") for n in result.chain.notes)


def test_a_file_that_fails_nir_type_check_is_read_without_it(tmp_path):
    graph = chain_graph(nir.Input(input_type=np.array([4])), affine(3, 4),
                        nir.Output(output_type=np.array([7])))  # an inconsistent output type
    path = tmp_path / "old.nir"
    nir.write(path, graph)
    result = import_nir(path)
    assert any("read without nir's type check" in n for n in result.chain.notes)


# --- other frameworks' conventions --------------------------------------------------------------

def norse_style(flatten=True):
    """Norse 1.1: r = 1, tau written as tau_steps * dt**2; Flatten and pools as None nodes."""
    dt = 1e-3
    nodes = [nir.Input(input_type=np.array([1, 4, 4])), conv(2, 1),
             nir.LIF(tau=np.full((2, 4, 4), 8 * dt * dt), r=np.ones((2, 4, 4)),
                     v_leak=np.zeros((2, 4, 4)), v_threshold=np.ones((2, 4, 4)),
                     v_reset=np.zeros((2, 4, 4))),
             nir.Flatten(input_type={"input": np.array([2, 4, 4])}, start_dim=0, end_dim=-1)
             if flatten else None,
             affine(3, 32), nir.Output(output_type=np.array([3]))]
    return chain_graph(*nodes)


def test_norse_style_needs_dt_then_imports():
    with pytest.raises(InteropError, match=re.escape(
            "node 'n2' (LIF): cannot tell the time step (tau / r = 8e-06 is not a time step "
            "below tau); give --dt (snnTorch and SpikingJelly write 1e-4, Sinabs 1, Norse dt "
            "squared)")):
        import_nir(norse_style())
    a = import_nir(norse_style(), dt=1e-6).artifact
    assert a.layers[0].leak_shift == 3


def test_norse_none_node_is_refused():
    with pytest.raises(InteropError, match=r"^node 'n3' is incomplete \(None\): the exporter "
                                           r"could not convert that layer \(Norse 1\.1 writes "
                                           r"Flatten and pooling layers this way\); the graph "
                                           r"cannot be imported$"):
        import_nir(norse_style(flatten=False))


def sinabs_style():
    """Sinabs 3.1: tau in steps, r = 1, shapes left as None."""
    shape = (2, 4, 4)
    return chain_graph(
        nir.Input(input_type=None) if False else _input_without_shape(), conv(2, 1),
        nir.LIF(tau=np.full(shape, 4.0), r=np.ones(shape), v_leak=np.zeros(shape),
                v_threshold=np.ones(shape), v_reset=np.zeros(shape)),
        nir.Flatten(input_type=None, start_dim=0, end_dim=-1), affine(3, 32),
        nir.Output(output_type=np.array([3])))


def _input_without_shape():
    node = nir.Input(input_type=np.array([1, 4, 4]))
    node.input_type = {"input": None}
    node.output_type = {"output": None}
    return node


def test_sinabs_style_needs_the_input_shape_and_dt():
    with pytest.raises(InteropError, match=re.escape(
            "node 'n0' (Input): the input shape is unknown (Sinabs 3.1 leaves shapes as None); "
            "give --input-shape C,H,W")):
        import_nir(sinabs_style(), dt=1.0)
    with pytest.raises(InteropError, match="cannot tell the time step"):
        import_nir(sinabs_style(), input_shape=(1, 4, 4))
    a = import_nir(sinabs_style(), input_shape=(1, 4, 4), dt=1.0).artifact
    assert a.layers[0].leak_shift == 2


# --- refusals -----------------------------------------------------------------------------------

def _head(*middle, tail=None):
    """Input 1x6x6 -> middle -> Flatten -> Affine -> Output."""
    return [nir.Input(input_type=np.array([1, 6, 6])), *middle] + (tail or [])


def _net(shape_after, *middle):
    c, h, w = shape_after
    return chain_graph(*_head(*middle), nir.Flatten(input_type={"input": np.array(shape_after)},
                                                    start_dim=0, end_dim=-1),
                       affine(3, c * h * w), nir.Output(output_type=np.array([3])))


REFUSALS = [
    ("stride", lambda: _net((2, 3, 3), conv(2, 1, stride=2), lif((2, 3, 3))),
     "node 'n1' (Conv2d): stride [2, 2]; the contract's convolutions have stride 1 (pool "
     "instead)"),
    ("groups", lambda: _net((2, 6, 6), conv(2, 2, groups=2), lif((2, 6, 6))),
     "node 'n1' (Conv2d): groups = 2; the contract's convolutions are dense (groups 1)"),
    ("tau", lambda: _net((2, 6, 6), conv(2, 1), lif((2, 6, 6), tau_steps=3.0)),
     "layer 0 (n1): node 'n2' (LIF): tau / dt = 3 is 25.0% from the nearest power of two 4 "
     "(2**2); the contract's leak is tau = 2**k steps, k in 1..16, accepted within 2.0% "
     "(--tau-tolerance, or check --dt)"),
    ("reset", lambda: _net((2, 6, 6), conv(2, 1), lif((2, 6, 6), v_reset=0.5)),
     "node 'n2' (LIF): v_reset = 0.5; the contract resets to 0 (a non-zero or subtractive "
     "reset cannot be expressed)"),
    ("threshold per neuron", lambda: _net(
        (2, 6, 6), conv(2, 1), nir.LIF(tau=np.full((2, 6, 6), 2e-4), r=np.full((2, 6, 6), 2.0),
                                       v_leak=np.zeros((2, 6, 6)),
                                       v_threshold=np.arange(72.0).reshape(2, 6, 6) + 1,
                                       v_reset=np.zeros((2, 6, 6)))),
     "node 'n2' (LIF): v_threshold differs between neurons of one channel; the contract has "
     "one v_threshold per output channel"),
    ("avgpool", lambda: _net((2, 3, 3), conv(2, 1), lif((2, 6, 6)),
                             nir.AvgPool2d(kernel_size=np.array([2, 2]),
                                           stride=np.array([2, 2]), padding=np.array([0, 0]))),
     "node 'n3': an average pool feeds the next layer directly; the contract pools spikes by OR "
     "(max), which changes what the network computes; pass --pool-as-or to accept that (the "
     "report shows the cost), or pool by SumPool2d + Threshold / MaxPool2d in the source"),
    ("sumpool", lambda: _net((2, 3, 3), conv(2, 1), lif((2, 6, 6)),
                             nir.SumPool2d(kernel_size=np.array([2, 2]),
                                           stride=np.array([2, 2]), padding=np.array([0, 0]))),
     "node 'n3': a sum pool feeds the next layer directly"),
    ("or threshold", lambda: _net((2, 3, 3), conv(2, 1), lif((2, 6, 6)),
                                  nir.SumPool2d(kernel_size=np.array([2, 2]),
                                                stride=np.array([2, 2]),
                                                padding=np.array([0, 0])),
                                  nir.Threshold(threshold=np.full((2, 3, 3), 1.5))),
     "node 'n4' (Threshold) after SumPool2d 'n3': threshold 1.5..1.5; only a threshold in "
     "[0, 1) (any spike in the window) is the contract's OR pool"),
    ("pool stride", lambda: _net((2, 2, 2), conv(2, 1), lif((2, 6, 6)),
                                 nir.SumPool2d(kernel_size=np.array([3, 3]),
                                               stride=np.array([2, 2]),
                                               padding=np.array([0, 0])),
                                 nir.Threshold(threshold=np.zeros((2, 2, 2)))),
     "node 'n3' (SumPool2d): kernel [3, 3], stride [2, 2], padding [0, 0]; the contract pools "
     "square windows with stride = kernel and no padding"),
    ("threshold alone", lambda: _net((2, 6, 6), conv(2, 1),
                                     nir.Threshold(threshold=np.ones((2, 6, 6)))),
     "node 'n2' (Threshold) follows synapse 'n1' without a neuron in between; the contract "
     "gives every synaptic layer its neurons"),
    ("cuba", lambda: _net((2, 6, 6), conv(2, 1), nir.CubaLIF(
        tau_syn=np.full((2, 6, 6), 2e-4), tau_mem=np.full((2, 6, 6), 2e-4),
        r=np.ones((2, 6, 6)), v_leak=np.zeros((2, 6, 6)), v_threshold=np.ones((2, 6, 6)))),
     "node 'n2' (CubaLIF): a current-based LIF keeps a synaptic current state, which the "
     "contract has not"),
    ("delay", lambda: _net((2, 6, 6), conv(2, 1), lif((2, 6, 6)),
                           nir.Delay(delay=np.ones((2, 6, 6)))),
     "node 'n3' (Delay): the contract has no delays"),
    ("no neuron", lambda: _net((2, 6, 6), conv(2, 1), conv(2, 2)),
     "node 'n2' (Conv2d) follows synapse 'n1' without a neuron in between"),
    ("unflattened", lambda: chain_graph(*_head(conv(2, 1), lif((2, 6, 6))), affine(3, 72),
                                        nir.Output(output_type=np.array([3]))),
     "node 'n3' (Affine) takes an unflattened [2, 6, 6] input: put a Flatten before it"),
]


@pytest.mark.parametrize("graph, message", [(g, m) for _, g, m in REFUSALS],
                         ids=[n for n, _, _ in REFUSALS])
def test_refusals(graph, message):
    with pytest.raises(InteropError, match="^" + re.escape(message)):
        import_nir(graph())


def test_average_pool_as_or_on_request():
    graph = _net((2, 3, 3), conv(2, 1), lif((2, 6, 6)),
                 nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                               padding=np.array([0, 0])))
    result = import_nir(graph, pool_as_or=True)
    assert isinstance(result.artifact.layers[1], PoolLayer)
    assert any("computed as OR" in n for n in result.notes)
    report = result.report(random_images=16)
    assert 0 <= report["agreement"]["imported_vs_source"] <= 1


def test_branch_merge_and_loop_are_refused():
    nodes = {"in": nir.Input(input_type=np.array([4])), "a": affine(4, 4), "b": affine(4, 4),
             "l": lif((4,)), "out": nir.Output(output_type=np.array([4]))}
    branch = nir.NIRGraph(nodes=nodes, edges=[("in", "a"), ("in", "b"), ("a", "l"),
                                              ("b", "l"), ("l", "out")], type_check=False)
    with pytest.raises(InteropError, match=r"^node 'in' feeds 'a', 'b': the contract takes a "
                                           r"chain of layers, not a branching graph$"):
        import_nir(branch)
    recurrent = nir.NIRGraph(nodes=nodes, edges=[("in", "a"), ("a", "l"), ("l", "b"),
                                                 ("b", "a"), ("l", "out")], type_check=False)
    with pytest.raises(InteropError, match=r"^node 'a' has inputs from 'in', 'b': the contract "
                                           r"takes a chain of layers, not a graph with merges$"):
        import_nir(recurrent)
    loop = nir.NIRGraph(nodes=nodes, edges=[("in", "a"), ("a", "l"), ("l", "in")],
                        type_check=False)
    with pytest.raises(InteropError, match=r"^edge 'l' -> 'in' closes a loop \(recurrence\); "
                                           r"the contract's layers are feed-forward$"):
        import_nir(loop)


def test_recurrent_subgraph_is_refused():
    inner = nir.NIRGraph(nodes={"input": nir.Input(input_type=np.array([4])), "lif": lif((4,)),
                                "w_rec": nir.Linear(weight=np.eye(4)),
                                "output": nir.Output(output_type=np.array([4]))},
                         edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                                ("lif", "output")], type_check=False)
    graph = chain_graph(nir.Input(input_type=np.array([4])), affine(4, 4), inner, affine(3, 4),
                        nir.Output(output_type=np.array([3])))
    with pytest.raises(InteropError, match=r"^node 'n2' \(NIRGraph\): a nested subgraph "
                                           r"\(snnTorch writes RLeaky/RSynaptic this way\): "
                                           r"recurrence is not part of the contract$"):
        import_nir(graph)


def test_missing_file_and_not_a_nir_file(tmp_path):
    with pytest.raises(InteropError, match=r"^NIR file '.*nope\.nir' not found$"):
        import_nir(tmp_path / "nope.nir")
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(InteropError, match=r"^'.*bad\.nir': not a readable NIR file"):
        import_nir(bad)
