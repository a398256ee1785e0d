"""The host side of the board link: importable with numpy and pyserial only (no Amaranth, no
torch), so a machine that drives a board needs neither.

* :mod:`.protocol`: the UART link's wire format (frames, results, the info reply);
* :mod:`.beats`: the accelerator's input beats from images, and results back to scores;
* :mod:`.board`: :class:`~.board.Board`, the driver of a board on a serial port.
"""

from .board import Board, BoardError, RunResult

__all__ = ["Board", "BoardError", "RunResult"]
