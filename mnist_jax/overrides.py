"""Hydra-style `KEY=VALUE` overrides: `model.hidden=[512,512]`, `lr=1e-4:1e-2:5`, `optimizer=adam`.

A comma outside brackets makes a sweep; `start:stop:count` is a log-spaced sweep, as `--lr` takes.
`loguniform(A,B)`, `uniform(A,B)` and `choice(X,Y,...)` are distributions for a search to sample
(`distributions.Distribution`).
Parsing only yields JSON values; `coerce` types them by the setting's default, so a config stays
plain data. Every refusal is an `OverrideError`, one line that says what to change.
"""

import dataclasses
import difflib
import json
import math
import re
from collections.abc import Iterable, Sequence

import numpy as np

from mnist_jax import budget, distributions

FORM = "KEY=VALUE, e.g. model.hidden=[512,512] or lr=1e-3,3e-3"
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_NON_FINITE = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)
# "/": a tfds config, emnist/digits; a path (`init_from=~/runs/a`, `../a`, `/abs/a`) too.
_NAME = re.compile(r"[A-Za-z_/~.][A-Za-z0-9_.\-/~]*")
_WORDS = {"true": True, "false": False, "null": None, "none": None}
_DISTRIBUTION = re.compile(r"([A-Za-z_]+)\((.*)\)", re.DOTALL)
_SHOWN_KEYS = 8  # `check_key` lists this many valid keys when none is near


class OverrideError(ValueError):
    """A `KEY=VALUE` override that cannot be used; the one-line message says what to change."""


@dataclasses.dataclass(frozen=True)
class Override:
    """One `KEY=VALUE`: `values` holds one JSON value, or several for a sweep."""

    key: str
    values: tuple


def parse(arg: str, shown: str | None = None) -> Override:
    """`arg` as a key and its values, untyped: `coerce` types them once the setting is known.
    A refusal quotes `arg`, or `shown` when given (a flag: `--lr 0:1`, not `'lr=0:1'`)."""
    where = _cut(repr(arg) if shown is None else shown)
    key, sep, text = arg.partition("=")
    key = key.strip()
    if not sep or not key:
        raise OverrideError(f"{where} is not an override; write {FORM}")
    if not _KEY.fullmatch(key):
        raise OverrideError(
            f"{where}: {key!r} is not a setting name; write {FORM} (a dotted name, no dashes)"
        )
    pieces = _pieces(where, text)
    if any(_DISTRIBUTION.fullmatch(p) for p in pieces):
        if len(pieces) > 1:
            raise OverrideError(f"{where}: a distribution is the key's only value; {FORM}")
        return Override(key, (_distribution(where, pieces[0]),))
    values = []
    for piece in pieces:
        values.extend(_range(where, piece) if _is_range(piece) else [_value(where, piece)])
    seen = set()
    for value in values:
        if _identity(value) in seen:
            raise OverrideError(f"{where}: {_show(value)} appears twice; give each value once")
        seen.add(_identity(value))
    return Override(key, tuple(values))


EXCLUSIVE = (("epochs", "steps"),)  # keys of which one at most is given


def parse_all(args: Sequence[str], shown: Sequence[str] | None = None) -> list[Override]:
    """Every override of `args`, the one parse of a command's settings: a key given twice is
    refused rather than one silently winning, and so are both of an `EXCLUSIVE` pair. `shown`:
    how the user wrote each (`--lr 1e-3` for a short form), quoted in refusals."""
    shown = [repr(arg) for arg in args] if shown is None else list(shown)
    overrides = [parse(arg, where) for arg, where in zip(args, shown, strict=True)]
    spelled: dict[str, list[str]] = {}  # key -> how each of its overrides was given
    for o, arg, where in zip(overrides, args, shown, strict=True):
        way = where.split()[0] if where.startswith("--") else f"{arg.partition('=')[0].strip()}="
        spelled.setdefault(o.key, []).append(way)
    for key, ways in spelled.items():
        if len(ways) > 1:
            raise OverrideError(
                f"give {' or '.join(ways)}, not both"
                if len(set(ways)) > 1
                else f"{key!r} is set {len(ways)} times; give it once "
                f"(a sweep is one override: {key}=A,B)"
            )
    for exclusive in EXCLUSIVE:
        if all(k in spelled for k in exclusive):
            raise OverrideError(f"give {' or '.join(spelled[k][0] for k in exclusive)}, not both")
    return overrides


def nearest(key: str, valid_keys: Iterable[str]) -> str | None:
    """The valid key most like `key`, if any is close enough to be the one meant."""
    matches = difflib.get_close_matches(key, list(valid_keys), n=1)
    return matches[0] if matches else None


def check_key(key: str, valid_keys: Iterable[str]) -> None:
    """Refuse a misspelt key, naming the one most likely meant."""
    valid = sorted(set(valid_keys))
    if key in valid:
        return
    guess = nearest(key, valid)
    if guess is not None:
        raise OverrideError(f"unknown key {key!r}; did you mean {guess!r}?")
    shown = ", ".join(valid[:_SHOWN_KEYS])
    more = f" and {len(valid) - _SHOWN_KEYS} more" if len(valid) > _SHOWN_KEYS else ""
    raise OverrideError(f"unknown key {key!r}; valid keys: {shown}{more}")


def coerce(key: str, value, default):
    """`value` typed as the setting's `default` is: an int widens to a float, nothing narrows."""
    if default is None:
        return list(value) if isinstance(value, list | tuple) else value
    if isinstance(default, list | tuple):
        return _coerce_list(key, value, default)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise OverrideError(f"{key} takes true or false, got {_show(value)}")
        return value
    if isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool):
            raise OverrideError(f"{key} takes a whole number, got {_show(value)}")
        return value
    if isinstance(default, float):
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise OverrideError(f"{key} takes a number, got {_show(value)}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise OverrideError(f"{key} takes a name, got {_show(value)}")
        return value
    raise OverrideError(f"{key} holds a {type(default).__name__}; it cannot be set as {FORM}")


def _coerce_list(key: str, value, default):
    """A bracketed list, each element typed by the default's first element when it has one."""
    if not isinstance(value, list):
        sample = _list_sample(key, value, default)
        other = _show(list(default)) if default and list(default) != sample else None
        other = other or _show(sample + sample)
        raise OverrideError(
            f"{key} takes a bracketed list: {key}={_show(sample)} "
            f"(several lists sweep: {key}={_show(sample)},{other})"
        )
    if not default:
        return list(value)
    return [coerce(f"{key}[{i}]", v, default[0]) for i, v in enumerate(value)]


def _list_sample(key: str, value, default) -> list:
    """`[value]` when that would be accepted, else the default itself: the form to show."""
    try:
        return _coerce_list(key, [value], default)
    except OverrideError:
        return list(default)


def _pieces(where: str, text: str) -> list[str]:
    """`text` split at commas outside brackets; brackets must pair and not nest."""
    pieces, depth, start, parens = [], 0, 0, 0
    for i, char in enumerate(text):
        if char in "()":  # a distribution's arguments: checked by `_distribution`
            parens += 1 if char == "(" else -1
        elif char == "[":
            depth += 1
            if depth > 1:
                raise OverrideError(f"{where}: lists do not nest; write a flat list like [64,128]")
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise OverrideError(f"{where}: a ']' without its '['; write a list as [64,128]")
        elif char == "," and depth == 0 and parens == 0:
            pieces.append(text[start:i])
            start = i + 1
    if depth:
        raise OverrideError(f"{where}: a '[' without its ']'; write a list as [64,128]")
    pieces.append(text[start:])
    pieces = [p.strip() for p in pieces]
    if "" in pieces:
        what = "no value after '='" if not text.strip() else "an empty value between commas"
        raise OverrideError(f"{where}: {what}; write {FORM}")
    return pieces


def _distribution(where: str, piece: str) -> distributions.Distribution:
    """`kind(args)`: each argument a value as a key takes it (a choice among lists too)."""
    kind, inner = _DISTRIBUTION.fullmatch(piece).groups()
    if kind not in distributions.KINDS:
        raise OverrideError(f"{where}: {kind!r} is not a distribution; write {distributions.FORMS}")
    if "(" in inner or ")" in inner:
        raise OverrideError(f"{where}: distributions do not nest; write {distributions.FORMS}")
    values = tuple(_value(where, p) for p in _pieces(where, inner)) if inner.strip() else ()
    try:
        return distributions.Distribution(kind, values)
    except ValueError as error:
        raise OverrideError(f"{where}: {error}") from None


def _value(where: str, piece: str):
    """One piece: a bracketed list of scalars, or a scalar."""
    if not (piece.startswith("[") and piece.endswith("]")):
        return _scalar(where, piece)
    inner = piece[1:-1].strip()
    if not inner:
        raise OverrideError(f"{where}: an empty list [] is not supported; give its elements")
    elements = [e.strip() for e in inner.split(",")]
    if "" in elements:
        raise OverrideError(f"{where}: an empty element in {piece}; write a list as [64,128]")
    return [_scalar(where, e) for e in elements]


MAX_DIGITS = 40  # more than any setting takes (a seed is at most 2**31 - 1)


def _cut(text: str, limit: int = 100) -> str:
    """`text` as a refusal quotes it: a value of 100,000 characters is not echoed whole."""
    return text if len(text) <= limit else f"{text[: limit - 20]}...({len(text)} characters)"


def _scalar(where: str, piece: str):
    """true/false, null/none, an int, a finite float, or a name, in that order."""
    if piece.lower() in _WORDS:
        return _WORDS[piece.lower()]
    if _INT.fullmatch(piece):
        if len(piece) > MAX_DIGITS:  # int() refuses 4300 and more in a traceback
            raise OverrideError(f"{where}: a whole number of {len(piece)} digits; none is so large")
        return int(piece)
    if _NON_FINITE.fullmatch(piece):
        raise OverrideError(f"{where}: {piece!r} is not a finite number; give a finite one")
    if _FLOAT.fullmatch(piece):
        number = float(piece)
        if not math.isfinite(number):
            raise OverrideError(f"{where}: {piece!r} overflows a float; give a finite number")
        return number
    if _NAME.fullmatch(piece):
        return piece
    raise OverrideError(
        f"{where}: {piece!r} is not a value; give a number, true/false, null, a name "
        "(letters, digits, _ - . / ~), a list [a,b] or a range start:stop:count"
    )


def _is_range(piece: str) -> bool:
    """A colon outside brackets; inside them it is a bad list element, refused as such."""
    return ":" in piece and "[" not in piece and "]" not in piece


def _range(where: str, piece: str) -> list[float]:
    """`start:stop:count` as `count` log-spaced floats, the ends included."""
    parts = [p.strip() for p in piece.split(":")]
    form = "start:stop:count, e.g. 1e-4:1e-2:5"
    if len(parts) != 3:
        raise OverrideError(f"{where}: a range has 3 parts, {form}, not {len(parts)}")
    ends = []
    for name, part in zip(("start", "stop"), parts[:2], strict=True):
        end = float(part) if _FLOAT.fullmatch(part) else math.nan
        if not (math.isfinite(end) and end > 0):
            raise OverrideError(
                f"{where}: the range's {name} {part!r} is not a positive finite number; {form}"
            )
        ends.append(end)
    if not _INT.fullmatch(parts[2]) or int(parts[2]) < 1:
        raise OverrideError(
            f"{where}: the range's count {parts[2]!r} is not a whole number of at least 1; {form}"
        )
    if too_many := budget.values_problem(int(parts[2])):  # before numpy builds them
        raise OverrideError(f"{where}: {too_many}")
    return [float(v) for v in np.geomspace(ends[0], ends[1], int(parts[2]))]


def _identity(value):
    """What makes two sweep values the same setting: 1 and 1.0 are, true and 1 are not."""
    if isinstance(value, list):
        return ("list", tuple(_identity(v) for v in value))
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    return ("number", float(value))


def _show(value) -> str:
    """`value` as it would be typed in an override; a name in quotes, so it reads as one."""
    if isinstance(value, list):
        return "[" + ",".join(_show(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    return json.dumps(value)
