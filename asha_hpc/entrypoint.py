"""Resolve ``module:function`` and ``path/to/file.py:function`` entry points.

The config file's directory (its context directory, as in Determined) goes first on sys.path,
in the master and in every job alike, so ``model:train`` next to the YAML file just works.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Callable, Optional

from .errors import AshaError


def _split(entrypoint: str) -> "tuple[str, str]":
    mod, _, fn = entrypoint.rpartition(":")
    return mod, fn


def _file_of(mod: str, context_dir: str) -> Optional[Path]:
    if mod.endswith(".py") or "/" in mod or "\\" in mod:
        p = Path(mod)
        return p if p.is_absolute() else Path(context_dir) / p
    return None


def check_entrypoint(entrypoint: str, context_dir: str) -> Optional[str]:
    """Why the entry point cannot be found, or None. Cheap: nothing is imported (the master
    runs on a login node and must not import torch)."""
    mod, _ = _split(entrypoint)
    path = _file_of(mod, context_dir)
    if path is not None:
        return None if path.is_file() else f"entrypoint: file {path} does not exist"
    if context_dir not in sys.path:
        sys.path.insert(0, context_dir)
    try:
        spec = importlib.util.find_spec(mod.split(".")[0])
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return (f"entrypoint: module '{mod}' not found (looked in {context_dir} and on "
                f"sys.path); give 'module:function' relative to the config's folder")
    return None


def resolve_entrypoint(entrypoint: str, context_dir: str, key: str = "entrypoint") -> Callable:
    """Import and return the training function (job side); ``key`` names the config key in
    errors (``simulated.curve`` resolves the same way)."""
    mod, fn = _split(entrypoint)
    if context_dir not in sys.path:
        sys.path.insert(0, context_dir)
    path = _file_of(mod, context_dir)
    if path is not None:
        name = f"asha_entry_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise AshaError(f"{key}: cannot load {path}")
        sys.path.insert(0, str(path.parent))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(mod)
    try:
        func = getattr(module, fn)
    except AttributeError:
        raise AshaError(f"{key}: {mod} has no function '{fn}'") from None
    if key == "entrypoint" and isinstance(func, type):  # a Determined Trial class (plan and run
        # warn when they can tell)
        from .compat.determined_config import trial_class_message

        raise AshaError(trial_class_message(entrypoint))
    if not callable(func):
        raise AshaError(f"{key}: {mod}:{fn} is not callable")
    return func
