"""Typed option dataclasses: each field is one option, written once with its default, help text, flag,
help panel, choices and valid range. The CLI builds its options from these fields, ``--config`` files and
``config.yaml`` are read and written through them, and ``docs/options.md`` is generated from them.

This module is light (no numpy, torch or pandas) so that ``artkit --help`` stays instant.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, field
from typing import Any

from artkit.errors import ArtkitError

# a fixed list; a name -> description mapping (its descriptions join the help); or a function returning names
Choices = Sequence[str] | Mapping[str, Any] | Callable[[], Sequence[str]]
_FIRST_SENTENCE = re.compile(r"(?<=[a-z0-9)])\. (?=[A-Z])")


@dataclass(frozen=True, kw_only=True)
class Spec:
    """How an option is presented and checked."""

    help: str
    flag: str | None = None  # default: --name-with-dashes
    short: str | None = None  # e.g. -m
    panel: str | None = None  # help section
    choices: Choices | None = None  # a fixed list, or a function returning a registry's names
    min: float | None = None
    max: float | None = None
    min_open: bool = False  # min itself is not allowed
    max_open: bool = False
    negatable: bool = False  # a bool shown as --x/--no-x
    argument: bool = False  # a positional argument on the command line
    cli: bool = True  # False: settable in config files only
    resumable: bool = False  # may change when a run is resumed
    reads: bool = False  # a path (file or folder) the command reads
    writes: str | None = None  # a file the command writes: its kind (artkit.writer.OUTPUT_KINDS)

    def names(self) -> list[str]:
        choices = self.choices() if callable(self.choices) else self.choices
        return list(choices or [])


def described(choices: Mapping[str, Any]) -> str:
    """``name: description; ...`` of a registry (a description is a string or has ``.description``)."""
    return "; ".join(f"{name}: {getattr(what, 'description', what)}" for name, what in choices.items())


def option(default: Any = MISSING, help: str = "", *, factory: Callable[[], Any] | None = None, **spec: Any) -> Any:
    """A dataclass field carrying its :class:`Spec`. ``choices`` given as a name -> description mapping (a
    registry) adds each choice and what it does to the help, so the help never repeats a registry by hand."""
    choices = spec.get("choices")
    if isinstance(choices, Mapping):
        help = f"{help} {described(choices)}." if help else f"{described(choices)}."
        spec["choices"] = tuple(choices)
    meta = {"spec": Spec(help=help, **spec)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class OptionInfo:
    name: str
    type: Any  # the resolved annotation
    default: Any
    spec: Spec

    @property
    def flag(self) -> str:
        return self.spec.flag or "--" + self.name.replace("_", "-")

    @property
    def base(self) -> type:
        """The annotation without ``| None``: int, float, bool, str or list."""
        return _base(self.type)

    @property
    def optional(self) -> bool:
        return _optional(self.type)

    @property
    def item(self) -> type:
        """The element type of a list option."""
        args = typing.get_args(_strip_none(self.type))
        return args[0] if args else str


def options(cls: type) -> list[OptionInfo]:
    """Every option of a config dataclass, in declaration order (inherited fields first)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("spec")
        if spec is None:
            continue
        out.append(OptionInfo(f.name, hints[f.name], _default(f), spec))
    return out


def _default(f: Field) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return MISSING


def _strip_none(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _base(tp: Any) -> type:
    inner = _strip_none(tp)
    origin = typing.get_origin(inner)
    return origin if origin is not None else inner


# ---------------------------------------------------------------- values


def coerce(info: OptionInfo, value: Any, source: str) -> Any:
    """``value`` as the option's type, or an error naming the option and where it came from."""
    if value is None:
        if info.optional:
            return None
        raise _type_error(info, value, source)
    base = info.base
    if base is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(info, value, source, "true or false")
    if base is int:
        return _to_int(info, value, source)
    if base is float:
        return _to_float(info, value, source)
    if base is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise _type_error(info, value, source, "text")
    if base is dict:
        if not isinstance(value, dict):
            raise _type_error(info, value, source, "a mapping")
        return {str(k): str(v) for k, v in value.items()}
    if base is list:
        items = split_list(value) if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise _type_error(info, value, source, "a list")
        item = OptionInfo(info.name, info.item, None, info.spec)
        return [coerce(item, v, source) for v in items]
    return value


def _to_int(info: OptionInfo, value: Any, source: str) -> int:
    if isinstance(value, bool):
        raise _type_error(info, value, source, "a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _type_error(info, value, source, "a whole number")


def _to_float(info: OptionInfo, value: Any, source: str) -> float:
    if isinstance(value, bool):
        raise _type_error(info, value, source, "a number")
    number = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):  # YAML reads 1e-4 (no dot) as a string
        with contextlib.suppress(ValueError):
            number = float(value.strip())
    if number is None:
        raise _type_error(info, value, source, "a number")
    if not math.isfinite(number):
        raise ArtkitError(f"{_where(info, source)} must be a finite number (got {value!r})")
    return number


def _where(info: OptionInfo, source: str) -> str:
    return info.flag if source == "command line" else f"'{info.name}' in {source}"


def _type_error(info: OptionInfo, value: Any, source: str, wanted: str | None = None) -> ArtkitError:
    wanted = wanted or ("a value" if not info.optional else "a value or null")
    return ArtkitError(
        f"{_where(info, source)} must be {wanted} (got {value!r})", f"see `artkit <command> --help` for {info.flag}"
    )


def split_list(value: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def range_text(spec: Spec) -> str | None:
    """The valid range in words, e.g. '>= 1' or 'between 0 and 1 (0 excluded)'."""
    lo, hi = spec.min, spec.max
    if lo is None and hi is None:
        return None
    fmt = _num
    if hi is None:
        return f"> {fmt(lo)}" if spec.min_open else f">= {fmt(lo)}"
    if lo is None:
        return f"< {fmt(hi)}" if spec.max_open else f"<= {fmt(hi)}"
    ex = [fmt(v) for v, o in ((lo, spec.min_open), (hi, spec.max_open)) if o]
    return f"between {fmt(lo)} and {fmt(hi)}" + (f" ({' and '.join(ex)} excluded)" if ex else "")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else str(v)


def check_value(info: OptionInfo, value: Any, source: str = "command line") -> None:
    """Range and choice checks of one option's (already typed) value."""
    if value is None:
        return
    values = value if isinstance(value, list) else [value]
    spec = info.spec
    for v in values:
        if isinstance(v, int | float) and not isinstance(v, bool) and not _in_range(v, spec):
            raise ArtkitError(
                f"{_where(info, source)} must be {range_text(spec)} (got {_num(v)})",
                f"pass {info.flag} with a value {range_text(spec)}",
            )
        names = spec.names()
        if names and isinstance(v, str) and v not in names:
            close = difflib.get_close_matches(v, names, n=3, cutoff=0.5)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise ArtkitError(f"unknown {_where(info, source)} value '{v}'", f"{hint}choose one of: {', '.join(names)}")


def _in_range(v: float, spec: Spec) -> bool:
    if spec.min is not None and (v < spec.min or (spec.min_open and v == spec.min)):
        return False
    return not (spec.max is not None and (v > spec.max or (spec.max_open and v == spec.max)))


def check_config(cfg: Any, source: str = "command line") -> None:
    """Range and choice checks of every option of ``cfg``."""
    for info in options(type(cfg)):
        check_value(info, getattr(cfg, info.name), source)


def input_paths(cfg: Any) -> list[str]:
    """Every file ``cfg`` names for reading; a data folder stands for the tables read from it by default."""
    from pathlib import Path

    from artkit.writer import DATA_FOLDER_INPUTS

    paths: list[str] = []
    for info in options(type(cfg)):
        value = getattr(cfg, info.name)
        if not info.spec.reads or not value:
            continue
        for item in value if isinstance(value, list) else [value]:
            paths.append(str(item))
            if Path(item).is_dir():
                paths += [str(Path(item) / name) for name in DATA_FOLDER_INPUTS]
    return paths


def check_outputs(cfg: Any) -> None:
    """Before any work: no output file of ``cfg`` may be one of its inputs or a file that artkit did not write
    as that kind of output (see :func:`artkit.writer.refuse_clobber`)."""
    from artkit.writer import refuse_clobber

    inputs = input_paths(cfg)
    for info in options(type(cfg)):
        value = getattr(cfg, info.name)
        if info.spec.writes and value:
            refuse_clobber(value, info.spec.writes, inputs)


# ---------------------------------------------------------------- mappings (YAML files)


def typed_mapping(cls: type, mapping: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """A mapping of option names (dashes or underscores) as typed, checked values. Unknown keys are refused
    with the closest valid name; a value of the wrong type or out of range names its key."""
    known = {info.name: info for info in options(cls)}
    values = {}
    for key, value in mapping.items():
        name = str(key).replace("-", "_")
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
            raise ArtkitError(
                f"unknown option '{key}' in {source}",
                f"did you mean {' or '.join(close)}?" if close else f"valid options: {', '.join(sorted(known))}",
            )
        values[name] = coerce(known[name], value, source)
        check_value(known[name], values[name], source)
    return values


def config_from_mapping(cls: type, mapping: Mapping[str, Any], source: str = "config") -> Any:
    """Build ``cls`` from a mapping (see :func:`typed_mapping`); options it lacks keep their defaults."""
    values = typed_mapping(cls, mapping, source)
    missing = [info.name for info in options(cls) if info.default is MISSING and info.name not in values]
    if missing:
        raise ArtkitError(f"{source} lacks the required option(s): {', '.join(missing)}")
    return cls(**values)


def to_dict(cfg: Any) -> dict[str, Any]:
    """The options of ``cfg`` as plain data (what config.yaml holds)."""
    return {info.name: getattr(cfg, info.name) for info in options(type(cfg))}


def help_comments(cls: type) -> dict[str, str]:
    """Option name -> the first sentence of its help, for comments in YAML files."""
    return {info.name: _FIRST_SENTENCE.split(info.spec.help)[0].rstrip(".") for info in options(cls)}


def merge(
    cls: type,
    given: Mapping[str, Any],
    explicit: set[str],
    file_values: Mapping[str, Any] | None,
    source: str = "config",
) -> Any:
    """Defaults < ``file_values`` (a --config file) < the options set explicitly on the command line."""
    values = dict(given)
    if file_values:
        values.update(typed_mapping(cls, file_values, source))
    values.update({k: given[k] for k in explicit if k in given})
    cfg = cls(**values)
    check_config(cfg)
    return cfg


def save_config(cfg: Any, path: Any, header: str | None = None) -> None:
    """``cfg`` as YAML with each option's help as a comment (what a run's config.yaml holds)."""
    from artkit.writer import write_yaml

    write_yaml(path, to_dict(cfg), help_comments(type(cfg)), header)


def load_config(cls: type, path: Any) -> Any:
    """A config saved by :func:`save_config` (or written by hand)."""
    from artkit.reader import load_yaml

    return config_from_mapping(cls, load_yaml(path), str(path))
