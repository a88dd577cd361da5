"""Tiny JSON-body validator shared by the fakes.

It reports problems as zod-style issues (Paperspace's v1 API is built on zod, so
its 400 bodies carry exactly these); the DigitalOcean fake folds them into one
422 message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

JSON_NAMES = {str: "string", int: "number", float: "number", bool: "boolean", list: "array", dict: "object"}


def json_type(value: object) -> str:
    """The JSON type name of a decoded value, as zod reports it in ``received``."""
    if value is None:
        return "null"
    return JSON_NAMES.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Field:
    """One body property: allowed JSON types and optional extra rules."""

    types: tuple[type, ...]
    required: bool = False
    nullable: bool = False
    enum: tuple[Any, ...] = ()
    items: tuple[type, ...] = ()  # element types when the value is an array
    check: Callable[[Any], str | None] | None = None  # returns an error message or None


@dataclass(frozen=True)
class Issue:
    """A zod-shaped validation problem."""

    code: str
    path: tuple[str | int, ...]
    message: str
    extra: tuple[tuple[str, Any], ...] = ()

    def as_zod(self) -> dict[str, Any]:
        return {"code": self.code, **dict(self.extra), "path": list(self.path), "message": self.message}

    def describe(self) -> str:
        where = ".".join(str(part) for part in self.path)
        return f"{where}: {self.message}" if where else self.message


def _type_ok(value: object, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # JSON booleans are not numbers
        return bool in types
    if isinstance(value, int) and float in types:
        return True
    return isinstance(value, types)


def _type_issue(path: tuple[str | int, ...], types: tuple[type, ...], value: object) -> Issue:
    expected = " | ".join(dict.fromkeys(JSON_NAMES[t] for t in types))
    received = "undefined" if value is _MISSING else json_type(value)
    message = "Required" if value is _MISSING else f"Expected {expected}, received {received}"
    return Issue("invalid_type", path, message, (("expected", expected), ("received", received)))


_MISSING = object()


def validate(body: object, fields: Mapping[str, Field], *, allow_unknown: bool = False) -> list[Issue]:
    """Check a decoded JSON object against ``fields``; an empty list means valid."""
    if not isinstance(body, dict):
        return [_type_issue((), (dict,), _MISSING if body is None else body)]
    issues = []
    unknown = [key for key in body if key not in fields]
    if unknown and not allow_unknown:
        keys = ", ".join(f"'{key}'" for key in unknown)
        issues.append(
            Issue("unrecognized_keys", (), f"Unrecognized key(s) in object: {keys}", (("keys", unknown),))
        )
    for name, spec in fields.items():
        value = body.get(name, _MISSING)
        if value is _MISSING:
            if spec.required:
                issues.append(_type_issue((name,), spec.types, value))
            continue
        issues.extend(_check_value((name,), spec, value))
    return issues


def _check_value(path: tuple[str | int, ...], spec: Field, value: object) -> list[Issue]:
    if value is None and spec.nullable:
        return []
    if not _type_ok(value, spec.types):
        return [_type_issue(path, spec.types, value)]
    if spec.enum and value not in spec.enum:
        options = " | ".join(f"'{option}'" for option in spec.enum)
        message = f"Invalid enum value. Expected {options}, received '{value}'"
        return [
            Issue("invalid_enum_value", path, message, (("options", list(spec.enum)), ("received", value)))
        ]
    if isinstance(value, list) and spec.items:
        bad = [
            _type_issue((*path, i), spec.items, item)
            for i, item in enumerate(value)
            if not _type_ok(item, spec.items)
        ]
        if bad:
            return bad
    message = spec.check(value) if spec.check else None
    return [Issue("custom", path, message)] if message else []
