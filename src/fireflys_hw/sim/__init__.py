"""Simulation backends for the accelerator, behind one result type (:class:`.trace.SimTrace`):
:mod:`.verilator` (Verilog compiled by Verilator, fast) and :mod:`.pysim` (Amaranth's Python
simulator, slow), and :mod:`.serial`, a simulated board behind a pyserial-like port for the host
driver. :func:`fireflys_hw.flow.simulate_accelerator` picks the backend.
"""
