"""The one command-line parser of every entry point except ``train.py`` (which is Hydra's): ``key=value`` options,
spelled as Hydra spells them, checked against a dataclass that lists them with their types and defaults.

    @dataclass
    class Options:
        data_dir: str                       # no default: required
        checkpoints: list[str] = field(default_factory=list)
        batch_size: int = 2
        extract: dict = field(default_factory=dict)     # open group: extract.<key>=value

    opts = cli.parse(Options, argv, __doc__, positional=("data_dir",))

``-h``/``--help`` prints the entry point's own usage; an unknown option, a value of the wrong type or a missing
required one ends the command with one line that names the option (and the valid ones), never a traceback.
It lives in the lowest layer because ``python -m data.synth`` and ``python -m data.folds`` use it too.

Written here rather than with OmegaConf dotlists: those parse every value as YAML, so ``types=0001`` would become
the integer 1 and ``checkpoints=a.pt`` could not fill a list; here each value is converted by its field's type.
"""
from __future__ import annotations

import dataclasses
import difflib
import sys
import typing
from contextlib import contextmanager
from typing import Collection, Mapping

TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class UsageError(SystemExit):
    """A bad command line: the interpreter prints the one-line message to stderr and exits with status 1."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")


@contextmanager
def reported(*errors: type[BaseException]):
    """Inside: ``errors`` (default ValueError, OSError, KeyError) end the command with their message and exit
    status 1 instead of a traceback.  For the set-up steps of a command (options, files, checkpoints), where the
    message says all the user needs; not around per-image work, whose failures are handled there."""
    try:
        yield
    except (errors or (ValueError, OSError, KeyError)) as e:
        raise UsageError(str(e).strip("'\"")) from None


def split_list(value: str) -> list[str]:
    """``[a,b]``, ``a,b`` or ``a`` -> ['a', 'b'] / ['a'] (items keep their spelling: 0001 stays '0001')."""
    return [x.strip().strip("'\"") for x in value.strip().strip("[]").split(",") if x.strip()]


def scalar(value: str):
    """An open group's value: int, float, bool, null or the string as typed."""
    v = value.strip()
    if v.lower() in ("null", "none"):
        return None
    if v.lower() in ("true", "false"):
        return v.lower() == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _convert(name: str, value: str, tp):
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union or type(tp).__name__ == "UnionType":      # Optional[X] / X | None
        if value.strip().lower() in ("null", "none", ""):
            return None
        tp = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(tp), typing.get_args(tp)
    try:
        if tp is bool:
            v = value.strip().lower()
            if v not in TRUE + FALSE:
                raise ValueError
            return v in TRUE
        if tp is int:
            return int(value)
        if tp is float:
            return float(value)
        if origin is list:
            item = args[0] if args else str
            return [_convert(name, x, item) for x in split_list(value)]
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(tp, getattr(tp, "__name__", tp))
        raise UsageError(f"option {name}={value!r}: expected {kind}") from None
    return value


def _is_group(tp) -> bool:
    return tp is dict or typing.get_origin(tp) is dict


def parse(schema: type, argv: list[str] | None, usage: str, positional: tuple[str, ...] = (),
          open_keys: Mapping[str, Collection[str] | None] | None = None, rest: str | None = None):
    """argv -> an instance of the dataclass ``schema``.

    ``positional``: fields that leading arguments without ``=`` fill in order (they may be given as key=value too);
    a field typed ``list`` takes every such argument from there on (``PATH...``).
    Fields typed ``dict`` are open groups: ``group.key=value``; ``open_keys[group]`` lists the keys they accept
    (None: any).  ``rest``: a dict field that collects every other ``key=value`` (e.g. config overrides checked
    later against a checkpoint's config) instead of rejecting it.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(usage.strip())
        raise SystemExit(0)
    hints = typing.get_type_hints(schema)
    fields = {f.name: (f, hints[f.name]) for f in dataclasses.fields(schema)}
    open_keys = dict(open_keys or {})
    given: dict = {}
    pos = list(positional)
    for a in argv:
        key, eq, value = a.partition("=")
        if not eq:
            if not pos:
                raise UsageError(f"unexpected argument {a!r}: options are key=value (--help for the usage)")
            if typing.get_origin(fields[pos[0]][1]) is list:
                given.setdefault(pos[0], []).append(a)
            else:
                given[pos.pop(0)] = a
            continue
        key = key.strip()
        group, dot, sub = key.partition(".")
        if dot and group in fields and group != rest and _is_group(fields[group][1]):
            allowed = open_keys.get(group)
            if allowed is not None and sub not in allowed:
                raise UsageError(f"unknown option {key!r}; valid {group}.<key>: {', '.join(sorted(allowed))}")
            given.setdefault(group, {})[sub] = scalar(value)
        elif key in fields and key != rest:
            given[key] = _convert(key, value, fields[key][1])
        elif rest is not None:
            given.setdefault(rest, {})[key] = value
        else:
            valid = [f"{n}.<key>" if _is_group(t) else n for n, (_, t) in fields.items() if n != rest]
            close = difflib.get_close_matches(key, list(fields), 1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"unknown option {key!r}{hint}; valid options: {', '.join(valid)}")
    for name, value in list(given.items()):
        if name in positional and isinstance(value, str) and name in fields:
            given[name] = _convert(name, value, fields[name][1])
        elif name in positional and isinstance(value, list) and typing.get_origin(fields[name][1]) is list:
            item = (typing.get_args(fields[name][1]) or (str,))[0]
            given[name] = [_convert(name, v, item) if isinstance(v, str) else v for v in value]
    missing = [n for n, (f, _) in fields.items() if n not in given and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise UsageError(f"missing {', '.join(missing)} (--help for the usage)")
    return schema(**given)
