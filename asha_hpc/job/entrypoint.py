"""Resolve ``module:function`` and ``path/to/file.py:function`` entry points.

The config file's directory (its context directory, as in Determined) goes first on sys.path,
in the master and in every job alike, so ``model:train`` next to the YAML file just works.
"""
from __future__ import annotations

import importlib
import importlib.util
import keyword
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import FatalTrialError


def _split(entrypoint: str) -> tuple[str, str]:
    mod, _, fn = entrypoint.rpartition(":")
    return mod, fn


def _file_of(mod: str, context_dir: str) -> Path | None:
    if mod.endswith(".py") or "/" in mod or "\\" in mod:
        p = Path(mod)
        return p if p.is_absolute() else Path(context_dir) / p
    return None


def _from_a_notebook(mod: str) -> str | None:
    """Why ``mod`` cannot hold a job's function: a notebook, or the running script itself."""
    if mod == "__main__" or mod.endswith(".ipynb") or mod.endswith("ipynb_checkpoints"):
        return (f"entrypoint: {mod}: a function defined in a notebook (or in the script that "
                f"runs as __main__) cannot be a job's: each job imports it from a file. Put it "
                f"in a .py file next to the config (in Jupyter: %%writefile train.py) and give "
                f"train:FUNCTION")
    return None


def check_entrypoint(entrypoint: str, context_dir: str) -> str | None:
    """Why the entry point cannot be found, or None. Cheap: nothing is imported (the master
    runs on a login node and must not import torch)."""
    mod, _ = _split(entrypoint)
    notebook = _from_a_notebook(mod)
    if notebook is not None:
        return notebook
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
        if (Path(context_dir) / f"{mod}.ipynb").exists():
            return _from_a_notebook(f"{mod}.ipynb")
        return (f"entrypoint: module '{mod}' not found (looked in {context_dir} and on "
                f"sys.path); give 'module:function' relative to the config's folder")
    return None


PRIVATE_PREFIX = "asha_entry_"


def _module_name(path: Path) -> str:
    """The name a ``file.py`` entry point's module is imported under in a job: the file's stem,
    as ``import stem`` names it in the file's folder, so that what its code pickles (a schedule
    or a model class in a checkpoint) loads there afterwards. A stem that cannot be that name,
    or is another module's (the standard library's ``code``, a module already imported), gets
    a private one: the job's libraries must not import the user's file in its place."""
    stem = path.stem
    held = sys.modules.get(stem)
    if held is not None:  # the same file again (a warm worker's next trial) keeps its name
        file = getattr(held, "__file__", None)
        return stem if file and Path(file).resolve() == path.resolve() else PRIVATE_PREFIX + stem
    if not stem.isidentifier() or keyword.iskeyword(stem) or stem in sys.stdlib_module_names:
        return PRIVATE_PREFIX + stem
    return stem


def import_entry_module(mod: str, context_dir: str) -> Any:
    """The module of a ``module:name`` entry point (dotted, or a ``path.py`` relative to
    ``context_dir``), imported with ``context_dir`` on sys.path. A module that does not exist
    raises FatalTrialError: every trial would fail the same way."""
    if context_dir not in sys.path:
        sys.path.insert(0, context_dir)
    path = _file_of(mod, context_dir)
    if path is not None:
        if not path.is_file():
            raise FatalTrialError(f"entrypoint: file {path} does not exist")
        name = _module_name(path)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise FatalTrialError(f"entrypoint: cannot load {path}")
        sys.path.insert(0, str(path.parent))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        sys.modules[PRIVATE_PREFIX + path.stem] = module  # the name earlier releases gave it
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as e:
            # the entry point's own module (or a package above it) is missing; a module that
            # it imports and that is missing is the user's error, with its traceback
            if e.name is not None and (mod == e.name or mod.startswith(e.name + ".")):
                raise FatalTrialError(
                    f"entrypoint: module '{mod}' not found in the job (looked in {context_dir} "
                    f"and on sys.path)") from None
            raise
    return module


def resolve_entrypoint(entrypoint: str, context_dir: str) -> Callable:
    """Import and return the training function (job side). A module or function that does not
    exist raises FatalTrialError: every trial would fail the same way."""
    mod, fn = _split(entrypoint)
    module = import_entry_module(mod, context_dir)
    try:
        func = getattr(module, fn)
    except AttributeError:
        names = sorted(n for n, v in vars(module).items()
                       if callable(v) and not n.startswith("_") and
                       getattr(v, "__module__", None) == module.__name__)
        raise FatalTrialError(f"entrypoint: {mod} has no function '{fn}'"
                              + (f" (it has: {', '.join(names[:10])})" if names else "")) from None
    if isinstance(func, type):  # a Determined Trial class (plan and run warn when they can tell)
        from ..compat.determined_config import trial_class_message

        raise FatalTrialError(trial_class_message(entrypoint))
    if not callable(func):
        raise FatalTrialError(f"entrypoint: {mod}:{fn} is not callable")
    _say_if_wandb_agent_form(func, f"{mod}:{fn}")
    return func


def _say_if_wandb_agent_form(func: Callable, name: str) -> None:
    """W&B's ``def train(config=None): with wandb.init(config=config): config = wandb.config``
    kept as it is: the function gets a Trial, which wandb.init takes as a config with no
    values, and the first ``config.lr`` fails far from the cause."""
    import inspect

    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return
    if params and params[0].name == "config" and params[0].default is None:
        from . import notes

        notes.warn(f"{name}(config=None) is W&B's agent function: here it gets the Trial, not "
                   f"a config. Take trial and use trial.hparams (wandb.init(config="
                   f"trial.hparams), then wandb.config as before)")


def defines(entrypoint: str, context_dir: str) -> str | None:
    """Why the entry point's function is not defined at the top of its module's source, or
    None (also when that cannot be told without importing: no source, a star import, a module
    ``__getattr__``). Nothing is imported."""
    import ast

    mod, fn = _split(entrypoint)
    path = _file_of(mod, context_dir)
    if path is None and "." in mod:
        return None  # finding pkg.mod imports pkg: the master imports no user code
    if path is None:
        if context_dir not in sys.path:
            sys.path.insert(0, context_dir)
        try:
            spec = importlib.util.find_spec(mod)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        path = Path(spec.origin)
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return None  # a syntax error shows in the job, with its traceback
    names: set = set()
    funcs: set = set()
    star = [False]

    def collect(body) -> None:  # top-level names, any branch of an if/try/with/for counting
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
                funcs.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for a in node.names:
                    star[0] = star[0] or a.name == "*"
                    names.add((a.asname or a.name).split(".")[0])
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For,
                                   ast.AsyncFor, ast.With, ast.AsyncWith)):
                targets = (node.targets if isinstance(node, ast.Assign) else
                           [i.optional_vars for i in node.items if i.optional_vars is not None]
                           if isinstance(node, (ast.With, ast.AsyncWith)) else [node.target])
                for t in targets:
                    names.update(n.id for n in ast.walk(t) if isinstance(n, ast.Name))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            for field in ("body", "orelse", "finalbody"):
                sub = getattr(node, field, None)
                if isinstance(sub, list):
                    collect(sub)
            for h in getattr(node, "handlers", None) or []:
                collect(h.body)

    collect(tree.body)
    if star[0] or fn in names or "__getattr__" in names:
        return None
    return (f"entrypoint: {path} defines no '{fn}'"
            + (f" (functions there: {', '.join(sorted(funcs)[:10])})" if funcs else ""))


def check_command(command: list[str], context_dir: str, local: bool) -> str | None:
    """Why a command entrypoint cannot run, or None. A path (``./train.sh``, relative to the
    config's folder) must exist and be executable; a bare name must be on PATH when jobs run on
    this machine (``local``; on a cluster the job's setup lines may provide it)."""
    import os
    import shutil

    exe = command[0]
    if "/" in exe:
        p = Path(exe) if Path(exe).is_absolute() else Path(context_dir) / exe
        if not p.is_file():
            return f"command: {exe} does not exist (looked for {p})"
        if not os.access(p, os.X_OK):
            return f"command: {exe} is not executable: chmod +x {p}"
    elif local and shutil.which(exe) is None:
        return f"command: '{exe}' not found on PATH"
    return None


def code_files(context_dir: str, seen: dict[str, int]) -> None:
    """Add to ``seen`` the user's code this process has imported since: the modules loaded
    from under ``context_dir`` (installed packages there aside), by file, with the
    modification time they had when first seen. A warm worker keeps its modules across
    trials, so an edit made while it waited (between a stopped master and ``resume``) would
    not reach it (``changed_code``)."""
    roots = tuple({os.path.join(os.path.abspath(context_dir), ""),
                   os.path.join(os.path.realpath(context_dir), "")})
    for module in list(sys.modules.values()):
        f = getattr(module, "__file__", None)
        if not isinstance(f, str) or not f.startswith(roots) or f in seen:
            continue
        if "site-packages" in f or "dist-packages" in f:
            continue
        try:
            seen[f] = os.stat(f).st_mtime_ns
        except OSError:
            pass


def changed_code(seen: dict[str, int]) -> str | None:
    """The first file of ``seen`` changed (or gone) since, or None."""
    for f, mtime in seen.items():
        try:
            if os.stat(f).st_mtime_ns != mtime:
                return f
        except OSError:
            return f
    return None
