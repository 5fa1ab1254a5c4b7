"""What produced a run: fedsim's version, the git commit of a checkout, and every user plugin's file."""
from __future__ import annotations

import subprocess
from pathlib import Path

from fedsim._version import __version__


def git_commit() -> dict | None:
    """{commit, dirty} of the checkout fedsim is imported from, or None for an installed package."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": sha, "dirty": bool(dirty), "path": str(root)}


def run_provenance(cfg: dict) -> dict:
    """The `provenance` block of summary.json."""
    from fedsim.registry import provenance
    return {"fedsim_version": __version__, "git": git_commit(), "plugins": provenance(cfg)}


def plugin_dirs(plugins: dict) -> list[str]:
    """The folders the run's user plugins were imported from (recorded in config.yaml's plugins.paths,
    so the run directory's config re-runs from any current directory). Installed packages need none."""
    from fedsim.registry import is_installed

    out = []
    for info in plugins.values():
        d = info.get("search_dir")
        if d and not is_installed(info.get("file") or d) and d not in out:
            out.append(d)
    return out
