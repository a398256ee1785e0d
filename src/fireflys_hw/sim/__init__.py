"""Simulation backends for the accelerator behind one interface
(:func:`.run.run_frames` -> :class:`.trace.SimTrace`): :mod:`.verilator` (Verilog compiled by
Verilator, fast) and :mod:`.pysim` (Amaranth's Python simulator, slow); and :mod:`.serial`, a
simulated board behind a pyserial-like port for the host driver.
"""
