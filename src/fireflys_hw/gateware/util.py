"""Small helpers the gateware components share: parameter checks and logic builders."""

from amaranth.hdl import Const

__all__ = ["check_positive", "popcount"]


def check_positive(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int, or a ``TypeError``/``ValueError`` that names ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


def popcount(value):
    """Number of set bits of ``value`` as a balanced adder tree (log depth, not a chain)."""
    terms = [value[i] for i in range(len(value))]
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]
