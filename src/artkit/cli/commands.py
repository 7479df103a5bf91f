"""Typer commands built from config dataclasses: each option's flag, default, help, panel and range come
from its field (see :mod:`artkit.options`), so nothing here repeats a default.

A field with ``argument=True`` is a positional argument; when it has a default it is also a ``--flag``
(``artkit train DATA`` and ``artkit train --data DATA`` both work).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import MISSING
from typing import Any, List, Optional  # noqa: UP035 - Typer reads these annotations

import typer

from artkit.cli.app import run_core
from artkit.options import OptionInfo, check_outputs, coerce, merge, options, range_text

CONFIG_FILE = "config"
_ARG_SUFFIX = "_arg"


def _annotation(info: OptionInfo) -> Any:
    base = info.base
    if base is list:
        return List[str] if info.spec.argument else Optional[str]  # noqa: UP006, UP045 - Typer reads these
    return Optional[base] if info.optional or info.spec.argument else base  # noqa: UP045


def _help(info: OptionInfo) -> str:
    rng = range_text(info.spec)
    return info.spec.help + (f" [{rng}]" if rng else "")


def _option(info: OptionInfo) -> typer.models.OptionInfo:
    decls = [f"{info.flag}/--no-{info.flag[2:]}" if info.spec.negatable else info.flag]
    if info.spec.short:
        decls.append(info.spec.short)
    default = info.default
    if info.base is list and default is not None and default is not MISSING:
        default = ",".join(map(str, default))
    return typer.Option(
        default if default is not MISSING else None,
        *decls,
        help=_help(info),
        rich_help_panel=info.spec.panel,
        show_default=default not in (None, MISSING, ""),
    )


def _parameters(infos: list[OptionInfo]) -> list[inspect.Parameter]:
    kw = inspect.Parameter.KEYWORD_ONLY
    params = []
    for info in infos:
        if info.spec.argument:
            required = info.default is MISSING
            arg = typer.Argument(
                ... if required else None, help=info.spec.help, show_default=False, metavar=info.name.upper()
            )
            only_positional = required or info.base is list  # a list of paths has no --flag twin
            name = info.name if only_positional else info.name + _ARG_SUFFIX
            params.append(inspect.Parameter(name, kw, default=arg, annotation=_annotation(info)))
            if only_positional:
                continue
        params.append(inspect.Parameter(info.name, kw, default=_option(info), annotation=_annotation(info)))
    return params


def _given(ctx: typer.Context, name: str) -> bool:
    # compare by name: recent Typer vendors its own copy of click, with its own ParameterSource enum
    return getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"


def _values(infos: list[OptionInfo], ctx: typer.Context, kwargs: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """Typed option values and the names the user set on the command line."""
    values, explicit = {}, set()
    for info in infos:
        value = kwargs.get(info.name)
        given = info.name in kwargs and _given(ctx, info.name)
        positional = kwargs.get(info.name + _ARG_SUFFIX)
        if not given and positional is not None:
            value, given = positional, True
        if info.spec.argument and (info.default is MISSING or info.base is list):
            given = value is not None and value != []
            value = value or (None if info.default is MISSING else info.default)
        values[info.name] = (
            run_core(coerce, info, value, "command line")
            if value is not None
            else (None if info.default is MISSING else info.default)
        )
        if given:
            explicit.add(info.name)
    return values, explicit


COMMANDS: dict[str, type] = {}  # "train", "weights save", ... -> its config class, in registration order


def config_command(
    app: typer.Typer, name: str, cls: type, *, config_file: bool = False, epilog: str | None = None
) -> Callable[[Callable[[Any, set[str]], None]], Callable]:
    """Register ``fn(cfg, explicit)`` as command ``name`` with one option per field of ``cls``; the command's
    docstring is ``fn``'s. ``config_file`` adds ``--config FILE`` (YAML; command-line flags win)."""

    def decorate(fn: Callable[[Any, set[str]], None]) -> Callable:
        infos = [info for info in options(cls) if info.spec.cli]
        params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)]
        params += _parameters(infos)
        if config_file:
            params.append(
                inspect.Parameter(
                    CONFIG_FILE,
                    inspect.Parameter.KEYWORD_ONLY,
                    annotation=Optional[str],  # noqa: UP045
                    default=typer.Option(
                        None,
                        "--config",
                        help="YAML file of options "
                        "(e.g. eda's recommended.yaml); flags on the command "
                        "line override it.",
                        rich_help_panel="Run",
                    ),
                )
            )

        def command(ctx: typer.Context, **kwargs: Any) -> None:
            from artkit.reader import load_yaml

            values, explicit = _values(infos, ctx, kwargs)
            file_values = run_core(load_yaml, kwargs[CONFIG_FILE]) if kwargs.get(CONFIG_FILE) else None
            cfg = run_core(merge, cls, values, explicit, file_values, kwargs.get(CONFIG_FILE) or "config")
            run_core(check_outputs, cfg)  # every command: no output replaces an input or a file of the user's
            fn(cfg, explicit | {k.replace("-", "_") for k in (file_values or {})})

        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in params}
        command.__doc__ = fn.__doc__
        command.__name__ = fn.__name__
        app.command(name, epilog=epilog)(command)
        group = app.info.name if app.info.name not in (None, "artkit") else None  # a sub-app: "weights"
        COMMANDS[f"{group} {name}" if group else name] = cls
        return fn

    return decorate


def options_markdown(cls: type, title: str) -> str:
    """A Markdown table of ``cls``'s options (for docs/options.md)."""
    lines = [f"## {title}", "", "| option | default | meaning |", "| --- | --- | --- |"]
    for info in options(cls):
        flag = info.name.upper() if info.spec.argument and info.default is MISSING else info.flag
        if info.spec.negatable:
            flag = f"{info.flag}/--no-{info.flag[2:]}"
        if info.spec.short:
            flag += f", {info.spec.short}"
        default = "required" if info.default is MISSING else ("" if info.default is None else info.default)
        if isinstance(default, list):
            default = ",".join(map(str, default))
        lines.append(f"| `{flag}` | {f'`{default}`' if default != '' else ''} | {_help(info).replace('|', '/')} |")
    return "\n".join(lines) + "\n"
