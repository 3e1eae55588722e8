"""Tracker parameters: typed from the factory's signature, strictly, before anything runs.

``-p NAME=VALUE`` gives text. Each value is read as the type the factory
declares for that parameter (its annotation, else its default's type): a whole
number for ``int`` (decimal only: ``010`` is ten), any number for ``float``,
``true``/``false`` for ``bool``, the text as it is for ``str``. A parameter with
no declared type is read as a YAML 1.2 core-schema scalar (decimal integers,
floats, ``true``/``false``, ``null``, else text), never YAML 1.1's octal or
``yes``/``no``/``on``/``off``. Values given from Python are checked the same way.
"""

from __future__ import annotations

import inspect
import re
import types
import typing

from .base import TrackerError

__all__ = ["check_params", "coerce_params", "read_scalar"]

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][+-]?[0-9]+)?")
_SCALARS = (bool, int, float, str)


def read_scalar(text: str):
    """Read text as a YAML 1.2 core-schema scalar: int, float, bool, None or the text.

    A flow collection (``[a, b]``, ``{k: v}``) is read as YAML's list or mapping.
    """
    if text[:1] in ("[", "{"):
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text
    if _INT.fullmatch(text):
        return int(text, 10)
    if _FLOAT.fullmatch(text):
        return float(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "~", ""):
        return None
    return text


def _declared(factory) -> dict[str, tuple[type, ...]]:
    """Return, per parameter, the scalar types its annotation or default allows."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        hints = {}
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    out = {}
    for name, p in sig.parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        hint = hints.get(name)
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        args = typing.get_args(hint) if union else (hint,)
        allowed = tuple(a for a in args if a in _SCALARS or a is type(None))
        if not allowed and hint is None and isinstance(p.default, _SCALARS):
            allowed = (type(p.default),)
        if allowed:
            out[name] = allowed
    return out


def _accepts(factory) -> tuple[set[str] | None, list[str]]:
    """Return the parameter names the factory takes (None: any), and their list to show."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return None, []
    names = [
        n for n, p in sig.parameters.items() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return None, names
    return set(names), names


def _convert(spec: str, name: str, value, allowed: tuple[type, ...]):
    shown = f"-p {name}={value}"
    if isinstance(value, str) and str not in allowed:
        text = value.strip()
        if type(None) in allowed and text.lower() in ("null", "none", "~"):
            return None
        if bool in allowed:
            if text.lower() in ("true", "false"):
                return text.lower() == "true"
            raise TrackerError(f"tracker {spec!r}: {shown}: {name} is true or false")
        if int in allowed and _INT.fullmatch(text):
            return int(text, 10)
        if float in allowed and (_FLOAT.fullmatch(text) or text.lower() in ("inf", "-inf")):
            return float(text)
        kind = "a whole number" if int in allowed else "a number"
        raise TrackerError(f"tracker {spec!r}: {shown}: {name} takes {kind}, e.g. {name}=8")
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict, str)):
        value = value.item()  # numpy scalars from Python callers
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, bool):
        if bool in allowed:
            return value
        raise TrackerError(f"tracker {spec!r}: {name}={value}: {name} takes a number, not a bool")
    if isinstance(value, int) and int in allowed:
        return value
    if isinstance(value, (int, float)) and float in allowed:
        return float(value)
    if isinstance(value, float) and int in allowed:
        if value.is_integer():
            return int(value)
        raise TrackerError(f"tracker {spec!r}: {shown}: {name} takes a whole number")
    if isinstance(value, str) and str in allowed:
        return value
    kinds = " or ".join(t.__name__ for t in allowed if t is not type(None))
    raise TrackerError(f"tracker {spec!r}: {name}={value!r}: {name} takes a {kinds}")


def coerce_params(spec: str, factory, params: dict) -> dict:
    """Check parameter names and read each value as the type the factory declares.

    Raises
    ------
    TrackerError
        Naming the parameter, the value and what it takes.

    """
    names, shown = _accepts(factory)
    if names is not None:
        unknown = sorted(set(params) - names)
        if unknown:
            listed = ", ".join(shown) if shown else "none"
            raise TrackerError(
                f"tracker {spec!r} has no parameter {unknown[0]!r}; its parameters: {listed}"
            )
    declared = _declared(factory)
    out = {}
    for name, value in params.items():
        if name in declared:
            out[name] = _convert(spec, name, value, declared[name])
        elif isinstance(value, str):
            out[name] = read_scalar(value)
        else:
            out[name] = value
    return out


def _plain(value) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def check_params(spec: str, tracker) -> dict:
    """Return ``tracker.params()``, refusing what the store's attributes cannot hold.

    Raises
    ------
    TrackerError
        If ``params()`` raises or returns anything but plain Python values
        (numbers, text, booleans, None, and lists or dicts of them).

    """
    try:
        got = tracker.params()
    except Exception as exc:
        raise TrackerError(
            f"tracker {spec!r}: its params() raised {type(exc).__name__}: {exc}; fix the tracker"
        ) from None
    if not isinstance(got, dict):
        raise TrackerError(
            f"tracker {spec!r}: params() returned {type(got).__name__}, not a dict; fix the tracker"
        )
    for key, value in got.items():
        if not isinstance(key, str) or not _plain(value):
            raise TrackerError(
                f"tracker {spec!r}: params() returned {key}={value!r} "
                f"({type(value).__module__}.{type(value).__name__}); return plain Python "
                "values (int, float, str, bool, lists of them), e.g. int(x) for numpy numbers"
            )
    return got
