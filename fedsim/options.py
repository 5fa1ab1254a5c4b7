"""Option declarations: one place that says what a policy, model or dataset accepts.

A component declares `options = {"name": Option(default, "help", check), ...}`. From that one
declaration come the validation (an unknown key or a bad value is a ConfigError naming the key,
the value and what is allowed), `fedsim options` / `--help` listings and the README tables, so
the three cannot drift. A plain value instead of an `Option` is a default with no check (what a
quick user plugin may write).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from fedsim.errors import ConfigError

Check = Callable[[Any], bool]


@dataclass(frozen=True)
class Option:
    """One option: its default, a one-line help text and (optionally) what values are allowed."""

    default: Any = None
    help: str = ""
    check: Check | None = None
    allowed: str = "any value"   # how `check` reads in an error message and in the docs
    nullable: bool = False       # None is allowed besides what `check` accepts

    def validate(self, key: str, value: Any) -> None:
        if value is None and (self.nullable or self.default is None):
            return
        if self.check is not None and not self.check(value):
            raise ConfigError(key, value, self.allowed + (" or null" if self.nullable else ""))

    # ------------------------------------------------------------------ common shapes
    @classmethod
    def number(cls, default: float | None, help: str = "", *, min: float | None = None, max: float | None = None,
               min_strict: bool = False, max_strict: bool = False, nullable: bool = False) -> "Option":
        lo = "" if min is None else f"{'>' if min_strict else '>='} {min:g}"
        hi = "" if max is None else f"{'<' if max_strict else '<='} {max:g}"
        allowed = "a number" + (f" {lo}" if lo else "") + (" and" if lo and hi else "") + (f" {hi}" if hi else "")

        def check(v: Any) -> bool:
            if not _is_num(v) or not math.isfinite(v):
                return False
            if min is not None and (v < min or (min_strict and v == min)):
                return False
            return max is None or not (v > max or (max_strict and v == max))
        return cls(default, help, check, allowed, nullable)

    @classmethod
    def integer(cls, default: int | None, help: str = "", *, min: int | None = None, max: int | None = None,
                nullable: bool = False) -> "Option":
        allowed = "an integer" + (f" >= {min}" if min is not None else "") + (f" <= {max}" if max is not None else "")

        def check(v: Any) -> bool:
            return _is_int(v) and (min is None or v >= min) and (max is None or v <= max)
        return cls(default, help, check, allowed, nullable)

    @classmethod
    def choice(cls, default: Any, choices: Sequence[Any], help: str = "", *, nullable: bool = False) -> "Option":
        allowed = ", ".join(str(c) for c in choices)
        return cls(default, help, lambda v: v in choices, allowed, nullable)

    @classmethod
    def boolean(cls, default: bool, help: str = "") -> "Option":
        return cls(default, help, lambda v: isinstance(v, bool), "true or false")

    @classmethod
    def int_list(cls, default: Sequence[int], help: str = "", *, allow_empty: bool = True) -> "Option":
        allowed = f"a {'' if allow_empty else 'non-empty '}list of positive integers"

        def check(v: Any) -> bool:
            return (isinstance(v, (list, tuple)) and all(_is_int(x) and x > 0 for x in v)
                    and (allow_empty or len(v) > 0))
        return cls(tuple(default), help, check, allowed)

    @classmethod
    def text(cls, default: str | None, help: str = "", *, nullable: bool = False) -> "Option":
        return cls(default, help, lambda v: isinstance(v, str) and bool(v), "a non-empty string", nullable)


@dataclass
class OptionSet:
    """The options of one component, validated as a whole."""

    declared: Mapping[str, Any] = field(default_factory=dict)

    def specs(self) -> dict[str, Option]:
        return {k: v if isinstance(v, Option) else Option(v) for k, v in self.declared.items()}

    def defaults(self) -> dict[str, Any]:
        return {k: spec.default for k, spec in self.specs().items()}

    def resolve(self, given: Mapping[str, Any], prefix: str, owner: str,
                ignore: Sequence[str] = ("name",)) -> dict[str, Any]:
        """Defaults overlaid with `given`; unknown keys and bad values raise ConfigError under `prefix`."""
        specs = self.specs()
        for key, value in given.items():
            if key in ignore:
                continue
            if key not in specs:
                allowed = ", ".join(sorted(specs)) or "no options"
                raise ConfigError(f"{prefix}{key}", value, f"options of {owner}: {allowed}", "unknown option")
            specs[key].validate(f"{prefix}{key}", value)
        return {**self.defaults(), **{k: v for k, v in given.items() if k not in ignore}}


def options_of(component: Any) -> OptionSet:
    """The OptionSet a class or callable declares in its `options` attribute (empty when none)."""
    declared = getattr(component, "options", None)
    return OptionSet(declared if isinstance(declared, Mapping) else {})


def markdown_table(options: OptionSet) -> str:
    """The option table of a component, as the README shows it."""
    lines = ["| option | default | allowed | what it does |", "|---|---|---|---|"]
    for key, spec in options.specs().items():
        allowed = spec.allowed + (" or null" if spec.nullable and spec.allowed != "any value" else "")
        lines.append(f"| `{key}` | `{_show(spec.default)}` | {allowed} | {spec.help} |")
    return "\n".join(lines)


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
