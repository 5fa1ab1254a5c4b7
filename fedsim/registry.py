"""One registry for the parts a user may bring: policies, models, datasets, losses, optimizers.

A name in the config is resolved, in this order, as
  1. a built-in short name (`gossip`, `cnn`, `synthmed`, `cross_entropy`, `adam`, ...),
  2. an import path `"package.module:attr"` (attr may be dotted: `module:Outer.Inner`),
  3. an entry point of an installed package, in group `fedsim.policies`, `fedsim.models`,
     `fedsim.datasets`, `fedsim.losses` or `fedsim.optimizers`.
Import paths are searched in the directories `plugins.paths` of the config, the config file's
folder and the current directory (see `importable_paths`), in every process that builds nodes.
Anything that goes wrong is a ConfigError naming the key, the value and what was expected.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from fedsim.errors import ConfigError

GROUPS = ("policies", "models", "datasets", "losses", "optimizers")
CONFIG_KEYS = {"policies": "policy.name", "models": "model.name", "datasets": "data.dataset",
               "losses": "train.loss", "optimizers": "train.optimizer"}
WHAT = {"policies": "a fedsim.Policy subclass", "models": "an nn.Module subclass or a callable returning one",
        "datasets": "a callable taking a fedsim.DataRequest", "losses": "a loss function or nn.Module class",
        "optimizers": "a torch.optim.Optimizer subclass or a callable returning one"}

_LOCK = threading.Lock()
_CACHE: dict[tuple[str, str], Any] = {}


@dataclass(frozen=True)
class PluginInfo:
    """Where a user component came from: recorded in summary.json so a run can be audited."""

    group: str
    ref: str
    module: str
    file: str | None
    sha256: str | None
    source: str  # "import path" or "entry point (distribution x y)"
    search_dir: str | None  # the sys.path entry its top-level module was found in

    def as_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- import paths

def importable_paths(cfg: dict) -> list[str]:
    """Directories user code is imported from, first match wins: plugins.paths, then the config
    file's folder, then the directory fedsim was started in (kept in the config as `_cwd`)."""
    extra = (cfg.get("plugins") or {}).get("paths") or []
    dirs = [*extra, cfg.get("_base_dir"), cfg.get("_cwd")]
    out: list[str] = []
    for d in dirs:
        if d and str(d) not in out:
            out.append(str(d))
    return out


def activate(cfg: dict) -> None:
    """Make the config's import directories importable in this process (idempotent)."""
    for d in reversed(importable_paths(cfg)):
        if d not in sys.path:
            sys.path.insert(0, d)


# ----------------------------------------------------------------------------- built-ins

def _builtin_policies() -> dict[str, Any]:
    from fedsim.policies import builtin_policies
    return builtin_policies()


def _builtin_models() -> dict[str, Any]:
    from fedsim.models import BUILTIN_MODELS
    return dict(BUILTIN_MODELS)


def _builtin_datasets() -> dict[str, Any]:
    from fedsim.data.spec import DATASETS
    return {name: name for name in DATASETS}  # built-in datasets are validated by data/spec.py


def _builtin_losses() -> dict[str, Any]:
    from fedsim.training import BUILTIN_LOSSES
    return dict(BUILTIN_LOSSES)


def _builtin_optimizers() -> dict[str, Any]:
    from fedsim.training import BUILTIN_OPTIMIZERS
    return dict(BUILTIN_OPTIMIZERS)


BUILTINS: dict[str, Callable[[], dict[str, Any]]] = {
    "policies": _builtin_policies, "models": _builtin_models, "datasets": _builtin_datasets,
    "losses": _builtin_losses, "optimizers": _builtin_optimizers}


def builtin_names(group: str) -> list[str]:
    return sorted(BUILTINS[group]())


def entry_points(group: str) -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=f"fedsim.{group}")}


def is_builtin(group: str, name: str) -> bool:
    return isinstance(name, str) and name in BUILTINS[group]()


# ----------------------------------------------------------------------------- resolution

def check_name(group: str, name: Any, key: str | None = None) -> None:
    """Refuse, without importing user code, a value that can name nothing: not a string, not a
    built-in, not 'module:attr' and no installed entry point."""
    key = key or CONFIG_KEYS[group]
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(key, name, _allowed(group))
    if ":" not in name and not is_builtin(group, name) and name not in entry_points(group):
        raise ConfigError(key, name, _allowed(group))


def resolve(group: str, name: Any, key: str | None = None) -> Any:
    """The object a config value names in `group` (a built-in, `module:attr` or an entry point)."""
    key = key or CONFIG_KEYS[group]
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(key, name, _allowed(group))
    builtins = BUILTINS[group]()
    if name in builtins:
        return builtins[name]
    with _LOCK:
        if (group, name) in _CACHE:
            return _CACHE[(group, name)]
    if ":" in name:
        obj = _import_attr(name, key, group)
    else:
        eps = entry_points(group)
        if name not in eps:
            raise ConfigError(key, name, _allowed(group))
        try:
            obj = eps[name].load()
        except Exception as exc:  # a broken installed plugin: say which distribution
            raise ConfigError(key, name, f"entry point {eps[name].value!r} that imports",
                              f"{type(exc).__name__}: {exc}") from None
    _check_kind(group, obj, key, name)
    with _LOCK:
        _CACHE[(group, name)] = obj
    return obj


def _allowed(group: str) -> str:
    eps = sorted(entry_points(group))
    text = " | ".join(builtin_names(group))
    if eps:
        text += " | installed: " + " | ".join(eps)
    return text + " | 'package.module:attr'"


def _import_attr(ref: str, key: str, group: str) -> Any:
    module_name, _, attr = ref.partition(":")
    module_name, attr = module_name.strip(), attr.strip()
    if not module_name or not attr:
        raise ConfigError(key, ref, "'package.module:attr' with both parts given")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        where = ", ".join(p for p in sys.path[:4] if p) or "sys.path"
        raise ConfigError(key, ref, f"an importable module ({WHAT[group]} in it)",
                          f"{exc}; searched plugins.paths, the config's folder and the current directory "
                          f"(first entries: {where})") from None
    except Exception as exc:  # the user's module raised while importing
        raise ConfigError(key, ref, "a module that imports without error",
                          f"importing {module_name} raised {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            where = getattr(module, "__file__", module_name)
            raise ConfigError(key, ref, f"an attribute of {module_name} ({WHAT[group]})",
                              f"{module_name} ({where}) has no attribute {attr!r}") from None
        obj = getattr(obj, part)
    return obj


def _check_kind(group: str, obj: Any, key: str, ref: str) -> None:
    ok = True
    if group == "policies":
        from fedsim.policies.base import Policy
        ok = inspect.isclass(obj) and issubclass(obj, Policy)
    elif group == "models":
        ok = callable(obj)
    elif group in ("datasets", "losses", "optimizers"):
        ok = callable(obj)
    if not ok:
        got = obj.__name__ if inspect.isclass(obj) else type(obj).__name__
        raise ConfigError(key, ref, WHAT[group], f"it is {got}")


# ----------------------------------------------------------------------------- provenance

def plugin_refs(cfg: dict) -> dict[str, tuple[str, str]]:
    """{config key: (group, value)} for every component of `cfg` that is not built in."""
    values = {
        "policies": (cfg.get("policy") or {}).get("name"),
        "models": (cfg.get("model") or {}).get("name"),
        "datasets": (cfg.get("data") or {}).get("dataset"),
        "losses": (cfg.get("train") or {}).get("loss"),
        "optimizers": (cfg.get("train") or {}).get("optimizer"),
    }
    return {CONFIG_KEYS[g]: (g, v) for g, v in values.items() if isinstance(v, str) and not is_builtin(g, v)}


def provenance(cfg: dict) -> dict[str, dict]:
    """{config key: PluginInfo as a dict} for the user components `cfg` names (resolving them)."""
    out = {}
    for key, (group, ref) in plugin_refs(cfg).items():
        obj = resolve(group, ref, key)
        out[key] = describe(group, ref, obj).as_dict()
    return out


def describe(group: str, ref: str, obj: Any) -> PluginInfo:
    module_name = getattr(obj, "__module__", None) or ref.partition(":")[0]
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    digest = hashlib.sha256(Path(file).read_bytes()).hexdigest() if file and Path(file).is_file() else None
    source = "import path"
    if ":" not in ref:
        ep = entry_points(group).get(ref)
        if ep is not None and ep.dist is not None:
            source = f"entry point (distribution {ep.dist.name} {ep.dist.version})"
    return PluginInfo(group, ref, module_name, file, digest, source, _search_dir(module_name))


def _search_dir(module_name: str) -> str | None:
    """The sys.path entry that holds the top-level package of `module_name`."""
    top = sys.modules.get(module_name.split(".")[0])
    file = getattr(top, "__file__", None)
    if not file:
        return None
    p = Path(file).resolve()
    return str(p.parent.parent if p.name == "__init__.py" else p.parent)


def ship_paths(cfg: dict) -> list[str]:
    """What a Ray worker on another machine needs to import the run's user plugins: the top-level
    package folder (or single .py file) of every plugin imported by path (Ray `py_modules`).
    Installed packages (entry points) are expected on every machine, like fedsim itself."""
    out: list[str] = []
    for key, (group, ref) in plugin_refs(cfg).items():
        if ":" not in ref:
            continue
        resolve(group, ref, key)
        top = sys.modules.get(ref.partition(":")[0].split(".")[0])
        path = getattr(top, "__path__", None)
        target = list(path)[0] if path else getattr(top, "__file__", None)
        if target and not is_installed(target) and target not in out:
            out.append(str(target))
    return out


def is_installed(path: str) -> bool:
    """True for code of the Python installation (stdlib, site-packages) or fedsim itself: every
    machine that runs fedsim has it, so it is neither shipped nor recorded as a plugin folder."""
    import sysconfig

    p = Path(path).resolve()
    roots = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(str(Path(__file__).resolve().parent))
    return any(p.is_relative_to(Path(r).resolve()) for r in roots if r)
