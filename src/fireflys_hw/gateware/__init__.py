"""The gateware: Amaranth components of the accelerator and its board links.

One component (or one family of stream layouts) per module, from the bottom up:
:mod:`.util` (parameter checks, logic helpers), :mod:`.streams` (the stream payloads between
components), the layer core's parts (:mod:`.padding`, :mod:`.orchestrator`, :mod:`.detector`,
:mod:`.neuron`, :mod:`.synapse`, :mod:`.maxpool`), :mod:`.core` (one layer core),
:mod:`.accelerator` (the cores chained), and the links to the outside: :mod:`.uart`,
:mod:`.link` (the UART bridge to the host) and :mod:`.axis` (AXI4-Stream ports).

The gateware reads what the compiler chose (:mod:`fireflys_hw.compiler`: plans and weight
images) and speaks the host's wire formats (:mod:`fireflys_hw.host`); neither of those imports
it. Nothing here imports torch.
"""
