"""README option tables are generated from the components' Option declarations: they cannot drift.

Each block between `<!-- options: KIND NAME -->` and `<!-- /options -->` must equal
`fedsim options KIND NAME --markdown`; every built-in whose options are all declared as
fedsim.Option must have such a block."""
from __future__ import annotations

import re
from pathlib import Path

from fedsim.catalog import component_options
from fedsim.options import Option

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"<!-- options: (\w+) (\S+) -->\n(.*?)\n<!-- /options -->", re.S)


def test_readme_option_tables_match_the_declarations():
    blocks = BLOCK.findall(README.read_text())
    assert blocks, "README has no generated option tables"
    for kind, name, table in blocks:
        assert table.strip() == component_options(kind, name, markdown=True).strip(), \
            f"README table for {kind} {name} is stale: run `fedsim options {kind} {name} --markdown`"


def test_every_fully_declared_builtin_has_its_readme_table():
    from fedsim.models import BACKBONES, BUILTIN_MODELS
    from fedsim.policies import builtin_policies

    documented = {(k, n) for k, n, _ in BLOCK.findall(README.read_text())}
    wanted = {("model", n) for n in BUILTIN_MODELS if n not in BACKBONES}
    wanted |= {("policy", n) for n, cls in builtin_policies().items()
               if cls.options and all(isinstance(v, Option) for v in cls.options.values())}
    assert wanted <= documented, f"no README option table for {sorted(wanted - documented)}"
