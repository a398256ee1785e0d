"""Small helpers the gateware components share: parameter checks and logic builders."""

from amaranth.hdl import Cat, Const, Elaboratable

__all__ = ["check_positive", "popcount", "popcount_logic", "or_tree", "add_const",
           "at_least", "mark_used"]


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


def popcount_logic(value):
    """Number of set bits of ``value`` in plain logic, no adders: a Wallace tree of full and
    half adders written as XOR / majority, then a ripple of the last two rows, also as logic.
    Synthesis maps it onto LUTs as a whole (adders would become carry chains, which it cannot
    restructure): 5 LUT levels for 16 bits on a LUT6 family."""
    width = len(value).bit_length()
    cols = [[value[i] for i in range(len(value))]] + [[] for _ in range(width)]
    while any(len(c) > 2 for c in cols):
        nxt = [[] for _ in range(len(cols) + 1)]
        for w, col in enumerate(cols):
            i = 0
            while len(col) - i >= 3:
                a, b, c = col[i:i + 3]
                nxt[w].append(a ^ b ^ c)
                nxt[w + 1].append((a & b) | (a & c) | (b & c))
                i += 3
            nxt[w].extend(col[i:])
        cols = nxt
    out, carry = [], None
    for w in range(width):
        col = cols[w] + ([carry] if carry is not None else [])
        if not col:
            out.append(Const(0, 1))
            carry = None
        elif len(col) == 1:
            out.append(col[0])
            carry = None
        elif len(col) == 2:
            out.append(col[0] ^ col[1])
            carry = col[0] & col[1]
        else:
            a, b, c = col
            out.append(a ^ b ^ c)
            carry = (a & b) | (a & c) | (b & c)
    return Cat(*out)


def or_tree(bits):
    """The OR of ``bits`` (an iterable of 1-bit values, or a value: its bits) as a balanced tree of 2-input ORs (a reduction written as a chain
    keeps its depth through synthesis when its partial ORs are shared)."""
    bits = [bits[i] for i in range(len(bits))] if hasattr(bits, "shape") else list(bits)
    if not bits:
        return Const(0, 1)
    while len(bits) > 1:
        bits = [bits[i] | bits[i + 1] if i + 1 < len(bits) else bits[i]
                for i in range(0, len(bits), 2)]
    return bits[0]


def add_const(value, k: int, width: int):
    """``(value + k) mod 2 ** width`` for an unsigned ``value`` and a constant ``k``, in plain
    logic (a ripple of half adders with constant operands): synthesis maps it onto a few LUTs
    and, unlike an adder cell, does not merge it with the other sums a multiplexer picks among
    (Yosys' ``opt_share`` turns ``Mux(c, a + 1, a + 2)`` into ``a + Mux(c, 1, 2)``, which puts
    the control in front of the carry chain)."""
    k %= 1 << width
    bits, carry = [], Const(0, 1)
    for i in range(width):
        a = value[i] if i < len(value) else Const(0, 1)
        if (k >> i) & 1:
            bits.append(~(a ^ carry))
            carry = a | carry
        else:
            bits.append(a ^ carry)
            carry = a & carry
    return Cat(*bits)


def at_least(value, c: int):
    """``value >= c`` for an unsigned ``value`` and a constant ``c``, in plain logic (MSB
    first), so that it is no carry chain."""
    if c <= 0:
        return Const(1, 1)
    if c >= 1 << len(value):
        return Const(0, 1)
    result = Const(1, 1)                     # equal so far: >=
    for i in range(len(value)):              # from the LSB up: ge_i = v > c or (== and ge_lower)
        v = value[i]
        result = (v & result) if (c >> i) & 1 else (v | result)
    return result


def mark_used(top) -> None:
    """Mark ``top`` and every elaboratable reachable from its attributes as used, so that
    Amaranth does not warn about them at exit (``UnusedElaboratable``): for a design that is
    built but whose netlist comes from elsewhere (the simulation runs Verilog written earlier
    from an identical design) or of which only a part is elaborated (one core timed alone)."""
    seen, todo = set(), [top]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Elaboratable):
            obj._MustUse__used = True            # amaranth._unused.MustUse's own flag
            todo.extend(vars(obj).values())
        elif isinstance(obj, (list, tuple)):
            todo.extend(obj)
