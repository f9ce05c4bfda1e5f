"""One way between the project's dataclasses and JSON: `to_data()` and `from_data()`.

Used by the trace, the retrain cache, results, the gradebook and the batch's job spec. `from_data`
recurses through the type hints (dataclasses, lists, tuples, dicts, `X | None`, `Path`) and ignores
keys a class does not have, so a newer file read by older code loses fields instead of failing.
With `strict=True` (data that crossed the trust boundary: the probe's events) every value is checked
against its type hint, required fields must be present, and strings are capped; a mismatch raises
`DecodeError` (a ValueError).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
MAX_STRICT_STR = 5000  # characters kept of one string from untrusted data


class DecodeError(ValueError):
    """Strict decoding met data that does not match the type hints."""


def to_data(obj: Any) -> Any:
    """Plain JSON-ready data for a dataclass (recursively), with `Path`s as strings."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_data(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_data(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def to_json(obj: Any, **kwargs: Any) -> str:
    return json.dumps(to_data(obj), ensure_ascii=False, **kwargs)


def from_data(cls: type[T], data: Any, *, strict: bool = False) -> T:
    """Build `cls` (a dataclass) from plain data produced by `to_data` (see the module doc for strict)."""
    if strict and not isinstance(data, dict):
        raise DecodeError(cls.__name__)
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.name in data:
            kwargs[f.name] = (_strict if strict else _convert)(hints[f.name], data[f.name])
        elif strict and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DecodeError(f"{cls.__name__}.{f.name} missing")
    return cls(**kwargs)


def from_json(cls: type[T], text: str) -> T:
    return from_data(cls, json.loads(text))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _convert(tp: Any, value: Any) -> Any:
    if value is None or tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        return _convert(kinds[0], value) if len(kinds) == 1 else value
    if origin is list:
        return [_convert(args[0] if args else Any, v) for v in value]
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v) for v in value)
        return tuple(_convert(a, v) for a, v in zip(args, value)) if args else tuple(value)
    if origin is dict:
        item = args[1] if len(args) == 2 else Any
        return {k: _convert(item, v) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_data(tp, value)
    if tp is Path:
        return Path(value)
    return value


def _strict(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        return _strict(kinds[0], value) if len(kinds) == 1 else value
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_data(tp, value, strict=True)
    if origin is list:
        if not isinstance(value, list):
            raise DecodeError("list")
        (item,) = typing.get_args(tp) or (Any,)
        return [_strict(item, v) for v in value]
    if origin is tuple:
        if not isinstance(value, list):
            raise DecodeError("tuple")
        args = typing.get_args(tp)
        return tuple(_strict(args[0] if args else Any, v) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise DecodeError("dict")
        _, item = typing.get_args(tp) or (str, Any)
        return {str(k): _strict(item, v) for k, v in value.items()}
    if tp is bool and not isinstance(value, bool):
        raise DecodeError("bool")
    if tp is int and type(value) is not int:
        raise DecodeError("int")
    if tp is float:
        if type(value) not in (int, float):
            raise DecodeError("float")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise DecodeError("str")
        return value[:MAX_STRICT_STR]
    return value
