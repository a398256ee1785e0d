"""Argument types of the command lines (``fireflys_sw.cli``, ``fireflys_hw.cli``), in one place:
each is an ``argparse`` ``type=`` that converts the text or refuses it, so that a bad value ends
in argparse's own one-line error (exit status 2) before any work starts.

Ranges are those the commands can run with: counts and limits at least 1, seeds in the range
torch and numpy take, floats finite, names a single path component (so that ``--name ../x``
cannot write outside ``--out``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["int_in", "float_in", "file_name", "plain_name_problem", "POSITIVE", "NON_NEGATIVE",
           "SEED", "BITS", "TIME_STEPS", "PROBABILITY", "POSITIVE_FLOAT", "NON_NEGATIVE_FLOAT"]

#: Largest integer any count or size option takes (far above any real use; keeps values
#: printable and inside C ``long``).
_INT_MAX = 1 << 62


def int_in(lo: int, hi: int = _INT_MAX) -> Callable[[str], int]:
    """An integer in ``[lo, hi]``, ASCII digits with an optional sign."""
    def convert(text: str) -> int:
        body = text.strip()
        digits = body[1:] if body[:1] in "+-" else body
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
            raise argparse.ArgumentTypeError(f"must be an integer, not {text[:40]!r}")
        value = int(body)
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(
                f"must be at least {lo}, not {value}" if hi == _INT_MAX else
                f"must be in [{lo}, {hi}], not {value}")
        return value
    convert.__name__ = "integer"       # argparse names the type in some messages
    return convert


def float_in(lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False,
             hi_open: bool = False) -> Callable[[str], float]:
    """A finite float in ``[lo, hi]`` (``(lo`` / ``hi)`` when open)."""
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {text[:40]!r}") from None
        if not math.isfinite(value) or value < lo or value > hi or (lo_open and value == lo) \
                or (hi_open and value == hi):
            raise argparse.ArgumentTypeError(f"must be a finite number in {left}{lo:g}, "
                                             f"{hi:g}{right}, not {text[:40]}")
        return value
    convert.__name__ = "number"
    return convert


def plain_name_problem(text) -> str | None:
    """Why ``text`` cannot be one file name inside an output folder (``None`` if it can): it
    must be a non-empty string without a path separator, not ``.`` or ``..``, without control
    characters, not starting with ``-``, at most 128 characters. :func:`file_name` (the
    command lines) and :class:`fireflys_sw.train.TrainConfig` (the Python API) share it."""
    if not isinstance(text, str) or not text or len(text) > 128 or text in (".", "..") \
            or "/" in text or "\\" in text or any(ord(c) < 32 or ord(c) == 127 for c in text) \
            or text.startswith("-"):
        shown = repr(text[:40]) if isinstance(text, str) else repr(text)[:40]
        return (f"must be a plain name (no '/', not '.' or '..', at most 128 characters), "
                f"not {shown}")
    return None


def file_name(text: str) -> str:
    """A name used as one file name inside an output folder (:func:`plain_name_problem`)."""
    problem = plain_name_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(problem)
    return text


POSITIVE = int_in(1)
NON_NEGATIVE = int_in(0)
#: Seeds: what ``torch.manual_seed`` and ``numpy.random.default_rng`` both take.
SEED = int_in(0, (1 << 32) - 1)
#: Weight bits of the contract.
BITS = int_in(2, 8)
#: Time steps of the contract.
TIME_STEPS = int_in(1, 256)
PROBABILITY = float_in(0.0, 1.0, hi_open=True)
POSITIVE_FLOAT = float_in(0.0, lo_open=True)
NON_NEGATIVE_FLOAT = float_in(0.0)
