"""Typed fields out of parsed JSON, naming the field in every error (artifact headers, plans)."""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from .errors import FireflysError

__all__ = ["FieldReader", "shown", "parse_json"]


def parse_json(raw: bytes, fail, what: str, max_depth: int) -> Any:
    """``raw`` (UTF-8 JSON) parsed, with at most ``max_depth`` levels of ``[`` / ``{``;
    ``fail(problem)`` makes the one-line error (``"<what> is nested too deeply ..."``,
    ``"<what> is not valid JSON (...)"``). Numbers over 4,300 digits are invalid JSON here
    (Python's int limit), not a traceback."""
    deep = f"{what} is nested too deeply (at most {max_depth} levels)"
    try:
        value = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise fail(deep) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise fail(f"{what} is not valid JSON ({str(error).splitlines()[0][:160]})") from None
    # iterative, so that a deep document cannot exhaust the stack here either
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise fail(deep)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, so that a huge value keeps a message short."""
    if isinstance(value, (str, list, dict)) and len(value) > limit:
        value = "{...}" if isinstance(value, dict) else value[:limit]
        text = value if isinstance(value, str) and value == "{...}" else repr(value)
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


class FieldReader:
    """Pulls typed fields out of JSON data; each error is one line ``"<where>: <name> <problem>"``
    of the subclass's :attr:`error` type."""

    #: The exception type raised (a :class:`FireflysError`).
    error: type[FireflysError] = FireflysError
    #: Upper bound of each dimension read by :meth:`shape` (``None``: none).
    shape_max: int | None = None

    def __init__(self, where: str):
        self.where = where

    def fail(self, name: str, problem: str) -> FireflysError:
        return self.error(f"{self.where}: {name} {problem}")

    def get(self, obj: dict, key: str, name: str) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise self.fail(name, "is missing")
        return obj[key]

    def int(self, obj: dict, key: str, name: str, lo: int = 0, hi: int | None = None) -> int:
        value = self.get(obj, key, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(name, f"must be an integer, not {shown(value)}")
        if hi is None and value < lo:
            raise self.fail(name, f"is {value}, less than {lo}")
        if hi is not None and not lo <= value <= hi:
            raise self.fail(name, f"is {value}, outside [{lo}, {hi}]")
        return value

    def str(self, obj: dict, key: str, name: str) -> str:
        value = self.get(obj, key, name)
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {shown(value)}")
        return value

    def enum(self, obj: dict, key: str, name: str, kind: type[Enum]) -> Any:
        value = self.get(obj, key, name)
        try:
            return kind(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in kind)
            raise self.fail(name, f"is {shown(value)}, not one of {allowed}") from None

    def shape(self, obj: dict, key: str, name: str) -> tuple[int, int, int]:
        value = self.get(obj, key, name)
        top = self.shape_max
        if (not isinstance(value, list) or len(value) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                           and (top is None or v <= top) for v in value)):
            raise self.fail(name, f"must be three positive integers [C, H, W], not {shown(value)}")
        return tuple(value)
