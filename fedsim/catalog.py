"""`fedsim options`: what can be named in a config, and each component's options.

The listing is generated from the components' own `options` declarations (fedsim.Option), the
same ones that validate a config, so `--help`, this command and the README tables agree.
"""
from __future__ import annotations

import argparse
import inspect
from typing import Any

from fedsim.options import markdown_table, options_of

KINDS = {"policy": "policies", "model": "models", "dataset": "datasets", "loss": "losses", "optimizer": "optimizers"}

EPILOG = """\
examples:
  fedsim options                         every built-in and installed component
  fedsim options policy fedrewind        the options of one policy, with defaults and allowed values
  fedsim options model mypkg.nets:TinyNet --markdown
"""


def summary_line(obj: Any) -> str:
    """The first line of a component's own docstring, else of its module's (a policy file's docstring
    reads like its paper: its first line says what the policy is)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if not doc or not doc.strip():
        doc = getattr(inspect.getmodule(obj), "__doc__", None) or ""
    doc = inspect.cleandoc(doc)
    return doc.splitlines()[0] if doc else ""


def listing() -> str:
    from fedsim.registry import builtin_names, entry_points, resolve

    lines = []
    for kind, group in KINDS.items():
        lines.append(f"{group}:")
        for name in builtin_names(group):
            obj = resolve(group, name)
            if isinstance(obj, str):  # a built-in dataset: described in data/spec.py
                from fedsim.data.spec import DATASET_HELP
                text = DATASET_HELP.get(name, "")
            else:
                text = summary_line(obj)
            lines.append(f"  {name:<16} {text}".rstrip())
        for name, ep in sorted(entry_points(group).items()):
            lines.append(f"  {name:<16} (installed: {ep.value})")
    lines.append("any of them may also be 'package.module:attr' (see docs/plugins.md)")
    return "\n".join(lines)


def component_options(kind: str, name: str, markdown: bool = False) -> str:
    from fedsim.registry import resolve

    group = KINDS[kind]
    obj = resolve(group, name)
    if group == "datasets" and isinstance(obj, str):  # built-in datasets: the data/spec.py schema
        from fedsim.data.spec import DATA_SPEC_DEFAULTS, USED_KEYS
        keys = ("dataset", "continual", *USED_KEYS[name])
        return "\n".join(f"  {k}: {DATA_SPEC_DEFAULTS.get(k)!r}" for k in keys)
    opts = options_of(obj)
    if markdown:
        return markdown_table(opts)
    specs = opts.specs()
    if not specs:
        return f"{kind} {name}: no options"
    width = max(len(k) for k in specs)
    out = [f"{kind} {name}: {summary_line(obj)}".rstrip()]
    for key, spec in specs.items():
        out.append(f"  {key:<{width}}  default {spec.default!r}; {spec.allowed}{'; ' + spec.help if spec.help else ''}")
    return "\n".join(out)


def add_command(sub) -> None:
    p = sub.add_parser("options", help="list policies, models, datasets, losses, optimizers and their options",
                       description="Without arguments: every built-in and installed component. With KIND NAME: "
                                   "that component's options (defaults, allowed values, help).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", nargs="?", choices=sorted(KINDS))
    p.add_argument("name", nargs="?", help="a built-in name, an entry point or 'package.module:attr'")
    p.add_argument("--markdown", action="store_true", help="the options as a Markdown table (as in the README)")
    p.set_defaults(func=_cmd)


def _cmd(args) -> int:
    if args.kind is None:
        print(listing())
        return 0
    if args.name is None:
        from fedsim.registry import builtin_names
        print("\n".join(builtin_names(KINDS[args.kind])))
        return 0
    import os
    import sys
    if os.getcwd() not in sys.path:  # `fedsim options model mymod:Net` from the plugin's folder
        sys.path.insert(0, os.getcwd())
    print(component_options(args.kind, args.name, args.markdown))
    return 0
