"""What a simulation run observes, whichever backend ran it (:mod:`.verilator`, :mod:`.pysim`):
both stream frames into the accelerator's top with the same protocol and return a
:class:`SimTrace`, which :func:`fireflys_hw.flow.simulate_accelerator` turns into its report."""

from __future__ import annotations

from dataclasses import dataclass

from fireflys_sw.errors import FireflysError

__all__ = ["SimTrace", "SimulationError"]


class SimulationError(FireflysError, RuntimeError):
    """A simulation that stopped producing results (a deadlock, or a ``max_idle`` too small)."""


@dataclass(frozen=True, eq=False)
class SimTrace:
    """What one simulation run observed (either backend).

    Attributes
    ----------
    out_cycles : list of int
        Cycle of each output transfer.
    out_payloads : list of int
        Each output payload (raw bits).
    out_counters : list of int
        The ``counters`` port (raw bits) in the cycle of each output transfer (0 without
        profiling).
    frame_starts : list of int
        Cycle in which the first beat of each frame was taken.
    cycles : int
        Cycles simulated.
    seconds : float
        Wall time of the simulation loop.
    """

    out_cycles: list[int]
    out_payloads: list[int]
    out_counters: list[int]
    frame_starts: list[int]
    cycles: int
    seconds: float
