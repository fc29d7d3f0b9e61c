"""The hyperparameter search space (spec section 6), Determined-compatible.

    space, problems = parse_space(cfg["hyperparameters"])

``parse_space`` never raises on bad user input: it returns every problem found, each a string
that starts with its dotted path in the file (``hyperparameters.lr.minval: must be < maxval
...``). Types: ``const`` (``val``; a bare scalar or list is a constant too), ``int`` (``minval``,
``maxval`` inclusive, optional ``count``), ``double`` (``minval``, ``maxval``, ``count``; with
``log: true`` the bounds are values drawn on a log scale, as Optuna's ``log=True``: a ``log``
of base 10), ``log`` (``minval``/``maxval`` are exponents, ``base`` > 0, 10 when left out,
``count``), ``categorical`` (``vals``) and nested maps without a ``type`` key, to any depth.

Sampling draws the names in sorted order (depth first through nested maps) from one numpy
Generator, so a seed reproduces the trials and adding a parameter whose name sorts last leaves
the earlier values alone. Values are plain Python types (JSON-able, no numpy scalars).
"""
from __future__ import annotations

import copy
import difflib
import itertools
import math
import re
from typing import Any

from .errors import shown

TYPES = ("const", "int", "double", "log", "categorical")
# other tools' type names, and what they are here
_STEPS = " (no step here: a categorical of the values keeps a grid)"
_OTHER_TYPES = {
    "float": "type: double", "uniform": "type: double", "quniform": "type: double" + _STEPS,
    "loguniform": "type: double with log: true",
    "qloguniform": "type: double with log: true" + _STEPS,
    "randint": "type: int (maxval is included: Ray's randint(a, b) is minval: a, maxval: b - 1)",
    "qrandint": "type: int" + _STEPS, "integer": "type: int",
    "lograndint": "type: int with log: true (maxval is included)",
    "choice": "type: categorical with vals: [...]", "category": "type: categorical",
    "constant": "type: const with val: ...", "fixed": "type: const with val: ...",
    "suggest_float": "type: double (log: true for log=True)",
    "suggest_int": "type: int (log: true for log=True)",
    "suggest_categorical": "type: categorical with vals: [...]",
    "grid_search": "type: categorical with vals: [...], or searcher.name: grid",
    "sample_from": "a categorical, or a value the code derives from the others",
    "randn": "type: double over the range that matters", "normal": "type: double",
    # Hydra's sweeper grammar (hydra-optuna-sweeper, hydra-ax-sweeper)
    "interval": "type: double (Hydra's interval(a, b))",
    "range": "type: int (Hydra's range(a, b) excludes b: maxval: b - 1), or a categorical",
    "tag": "type: double or int with log: true (Hydra's tag(log, interval(...)))"}
# text a search space of another tool would be written as: tune.loguniform(1e-4, 1e-1),
# trial.suggest_float("lr", ...), hp.choice(...)
_DRAW_TEXT = re.compile(r"\s*(?:tune\.|trial\.|hp\.)?(suggest_\w+|q?(?:log)?uniform|q?(?:log)?randint|"
                        r"q?randn|q?normal|choice|grid_search|sample_from|interval|range|tag)\s*\(")


# W&B Sweeps' distributions, as this space writes them
_WANDB = {
    "constant": "a constant (lr: 0.01), or type: const with val",
    "categorical": "type: categorical with vals: [...] (W&B's values)",
    "int_uniform": "type: int with minval and maxval (W&B's min and max, both included)",
    "uniform": "type: double with minval and maxval",
    "q_uniform": "type: double" + _STEPS,
    "log_uniform_values": "type: double with log: true, minval and maxval (W&B's min and max)",
    "q_log_uniform_values": "type: double with log: true" + _STEPS,
    "log_uniform": "type: log with base: 2.718281828459045 (W&B's min and max are natural "
                   "exponents), or type: double with log: true over the values",
    "q_log_uniform": "type: log with base: 2.718281828459045" + _STEPS,
    "inv_log_uniform_values": "type: double with log: true over 1/max .. 1/min, and the code "
                              "takes 1/value",
    "normal": "type: double over the range that matters", "q_normal": "type: double" + _STEPS,
}


# hyperparameter names that are the training's length, which the search sets per segment
_LENGTH_NAMES = {"epochs", "num_epochs", "n_epochs", "max_epochs", "max_steps", "steps",
                 "num_steps", "total_timesteps", "timesteps", "n_iter", "iterations",
                 "num_boost_round", "n_estimators", "num_train_epochs"}


def _wandb_hint(spec: dict[str, Any]) -> str:
    """What to write for W&B Sweeps' ``{distribution: ..., min: ..., max: ...}``."""
    d = spec["distribution"]
    what = _WANDB.get(d, "a mapping with a type (" + ", ".join(TYPES) + ")")
    return (f"W&B Sweeps' distribution: {d} is not searched here (a map without 'type' is a "
            f"group of constants): write {what}")


def looks_like_a_draw(value: Any) -> str | None:
    """For a constant that is another tool's search space written as text: what to write
    here instead; None for any other constant."""
    m = _DRAW_TEXT.match(value) if isinstance(value, str) else None
    if m is None:
        return None
    name = m.group(1)
    return _OTHER_TYPES.get(name) or _OTHER_TYPES.get(name.lstrip("q")) or "a mapping with a type"
_KEYS = {
    "const": ("type", "val"),
    "int": ("type", "minval", "maxval", "count", "log"),
    "double": ("type", "minval", "maxval", "count", "log"),
    "log": ("type", "minval", "maxval", "base", "count"),
    "categorical": ("type", "vals"),
}
_REQUIRED = {
    "const": ("val",),
    "int": ("minval", "maxval"),
    "double": ("minval", "maxval"),
    "log": ("minval", "maxval"),
    "categorical": ("vals",),
}
MAX_GRID_POINTS = 1_000_000
_IMMUTABLE = (str, int, float, bool, type(None))  # a grid larger than this is reported as a problem




def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return _is_int(v) or isinstance(v, float)


def _round_half_away(x: float) -> int:
    """Round half away from zero (Go's math.Round, as Determined's grid does)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    return repr(x) if isinstance(x, str) else str(x)


# ----------------------------------------------------------------------------- parameters
class Param:
    """One leaf hyperparameter."""

    kind = ""

    def sample(self, rng: Any) -> Any:
        raise NotImplementedError

    def grid_points(self) -> list[Any]:
        raise NotImplementedError

    def grid_size(self) -> int:
        return len(self.grid_points())

    def describe(self) -> str:
        raise NotImplementedError


class Const(Param):
    kind = "const"

    def __init__(self, val: Any) -> None:
        self.val = val

    def sample(self, rng: Any) -> Any:
        return self.val if isinstance(self.val, _IMMUTABLE) else copy.deepcopy(self.val)

    def grid_points(self) -> list[Any]:
        return [copy.deepcopy(self.val)]

    def grid_size(self) -> int:
        return 1

    def describe(self) -> str:
        return f"const, {_fmt(self.val)}"


class Int(Param):
    kind = "int"

    def __init__(self, minval: int, maxval: int, count: int | None = None,
                 log: bool = False) -> None:
        self.minval, self.maxval, self.count, self.log = minval, maxval, count, log

    def log_bounds(self) -> tuple[float, float]:
        """On a log scale: the logarithms of minval - 1/2 and maxval + 1/2, between which a
        value is drawn uniformly and rounded (Optuna's ``suggest_int(log=True)``)."""
        return math.log(self.minval - 0.5), math.log(self.maxval + 0.5)

    def sample(self, rng: Any) -> int:
        if self.log:
            lo, hi = self.log_bounds()
            x = round(math.exp(lo + (hi - lo) * float(rng.random())))
            return int(min(max(x, self.minval), self.maxval))
        return int(rng.integers(self.minval, self.maxval + 1))

    def _count(self) -> int:
        span = self.maxval - self.minval + 1
        return span if self.count is None else min(self.count, span)

    def grid_points(self) -> list[int]:
        n = self._count()
        lo, hi = self.minval, self.maxval
        if self.log and self.count is not None:  # evenly spaced logarithms, each once
            if n == 1:
                return [_round_half_away(math.sqrt(lo * hi))]
            a, b = math.log(lo), math.log(hi)
            return sorted({min(max(_round_half_away(math.exp(a + i * (b - a) / (n - 1))), lo), hi)
                           for i in range(n)})
        if n == 1:
            return [_round_half_away((lo + hi) / 2)]
        return [_round_half_away(lo + i * (hi - lo) / (n - 1)) for i in range(n)]

    def grid_size(self) -> int:
        return len(self.grid_points()) if self.log and self.count is not None else self._count()

    def describe(self) -> str:
        c = f", count {self.count}" if self.count is not None else ""
        return f"int, {self.minval} .. {self.maxval} (inclusive{', log scale' if self.log else ''}){c}"


class Double(Param):
    kind = "double"

    def __init__(self, minval: float, maxval: float, count: int | None = None) -> None:
        self.minval, self.maxval, self.count = float(minval), float(maxval), count

    def sample(self, rng: Any) -> float:
        # bit for bit rng.uniform(minval, maxval) (numpy computes low + (high-low) * next_double)
        # at a third of the cost of the general call
        return self.minval + (self.maxval - self.minval) * float(rng.random())

    def _exponents(self) -> list[float]:
        n = self.count or 1
        lo, hi = self.minval, self.maxval
        if n == 1:
            return [(lo + hi) / 2]
        return [lo + i * (hi - lo) / (n - 1) for i in range(n)]

    def grid_points(self) -> list[float]:
        return self._exponents()

    def grid_size(self) -> int:
        return self.count or 1

    def describe(self) -> str:
        c = f", count {self.count}" if self.count is not None else ""
        return f"double, {_fmt(self.minval)} .. {_fmt(self.maxval)} (uniform){c}"


class Log(Double):
    kind = "log"

    def __init__(self, minval: float, maxval: float, base: float, count: int | None = None) -> None:
        super().__init__(minval, maxval, count)
        self.base = float(base)

    def sample(self, rng: Any) -> float:
        return float(self.base ** super().sample(rng))

    def grid_points(self) -> list[float]:
        return [float(self.base ** e) for e in self._exponents()]

    def describe(self) -> str:
        c = f", count {self.count}" if self.count is not None else ""
        b = _fmt(self.base)
        return (f"log, {b}^{_fmt(self.minval)} .. {b}^{_fmt(self.maxval)} "
                f"({_fmt(self.base ** self.minval)} .. {_fmt(self.base ** self.maxval)}){c}")


class Categorical(Param):
    kind = "categorical"

    def __init__(self, vals: list[Any]) -> None:
        self.vals = list(vals)

    def sample(self, rng: Any) -> Any:
        v = self.vals[int(rng.integers(len(self.vals)))]
        return v if isinstance(v, _IMMUTABLE) else copy.deepcopy(v)

    def grid_points(self) -> list[Any]:
        return copy.deepcopy(self.vals)

    def grid_size(self) -> int:
        return len(self.vals)

    def describe(self) -> str:
        return f"categorical, {len(self.vals)} values: " + ", ".join(_fmt(v) for v in self.vals)


# ----------------------------------------------------------------------------- space
class Space:
    """A tree of named hyperparameters: leaves are ``Param``, inner nodes are dicts."""

    def __init__(self, tree: dict[str, Any], path: str = "hyperparameters") -> None:
        self.tree = tree
        self.path = path
        self._leaves: list[tuple[tuple[str, ...], Param]] | None = None
        self._items: list[tuple[str, Any]] | None = None

    # leaves in draw order: depth first, names sorted at every level
    def leaves(self) -> list[tuple[tuple[str, ...], Param]]:
        if self._leaves is not None:
            return self._leaves
        out: list[tuple[tuple[str, ...], Param]] = []

        def walk(node: dict[str, Any], prefix: tuple[str, ...]) -> None:
            for name in sorted(node):
                v = node[name]
                if isinstance(v, dict):
                    walk(v, prefix + (name,))
                else:
                    out.append((prefix + (name,), v))

        walk(self.tree, ())
        self._leaves = out
        return out

    def flat_names(self) -> list[str]:
        """Dotted names of the leaf hyperparameters, in draw order."""
        return [".".join(p) for p, _ in self.leaves()]

    def _build(self, values: list[Any]) -> dict[str, Any]:
        """The nested dict (names sorted at every level) from leaf values in draw order."""
        it = iter(values)

        def fill(node: dict[str, Any]) -> dict[str, Any]:
            return {name: fill(node[name]) if isinstance(node[name], dict) else next(it)
                    for name in sorted(node)}

        return fill(self.tree)

    def _sorted_tree(self) -> list[tuple[str, Any]]:
        """The tree as nested lists of (name, Param or sub-list), names sorted: for sample()."""
        if self._items is None:
            def conv(node: dict[str, Any]) -> list[tuple[str, Any]]:
                return [(n, conv(node[n]) if isinstance(node[n], dict) else node[n])
                        for n in sorted(node)]

            self._items = conv(self.tree)
        return self._items

    def sample(self, rng: Any, point: dict[str, Any] | None = None) -> dict[str, Any]:
        """One draw: every leaf in sorted-name order (depth first) from ``rng`` (a numpy
        Generator). With ``point`` (from ``check_point``) its values replace the drawn ones;
        every leaf is drawn all the same, so the stream moves on as without it."""
        def draw(items: list[tuple[str, Any]]) -> dict[str, Any]:
            return {n: draw(p) if type(p) is list else p.sample(rng) for n, p in items}

        hp = draw(self._sorted_tree())
        return hp if point is None else self.with_point(hp, point)

    def grid_size(self) -> int:
        n = 1
        for _, param in self.leaves():
            n *= param.grid_size()
        return n

    def grid(self) -> list[dict[str, Any]]:
        """All grid points: the Cartesian product of every leaf's points, names sorted, the last
        name varying fastest (itertools.product)."""
        leaves = self.leaves()
        axes = [param.grid_points() for _, param in leaves]
        return [self._build([copy.deepcopy(v) for v in combo]) for combo in itertools.product(*axes)]

    def grid_problems(self, path: str | None = None) -> list[str]:
        """Problems that only matter for grid search: a double/log without ``count``, or a
        grid too large to enumerate."""
        base = path or self.path
        out = [f"{base}.{'.'.join(p)}.count: required for grid search"
               for p, param in self.leaves() if isinstance(param, Double) and param.count is None]
        if not out:
            n = self.grid_size()
            if n > MAX_GRID_POINTS:
                out.append(f"{base}: the grid has {n:,} points, more than {MAX_GRID_POINTS:,}; "
                           f"lower some counts")
        return out

    def check_point(self, raw: Any, path: str) -> tuple[dict[str, Any], list[str]]:
        """A configuration the user gives (``searcher.points_to_evaluate``): every value it
        names must lie in the searched range, an int be whole, a categorical one of its
        values. Hyperparameters it leaves out are drawn (``with_point``). Returns the point
        with each value as the space would draw it (a categorical's own value), and the
        problems, each starting with ``path`` and the dotted name."""
        problems: list[str] = []

        def walk(node: dict[str, Any], given: Any, where: str) -> dict[str, Any]:
            if not isinstance(given, dict):
                problems.append(f"{where}: must be a map of hyperparameter names to values, "
                                f"got {shown(given)}")
                return {}
            out: dict[str, Any] = {}
            for name, v in given.items():
                at = f"{where}.{name}"
                if name not in node:
                    near = difflib.get_close_matches(str(name), [str(k) for k in node], 1)
                    head, _, rest = str(name).partition(".")
                    hint = (f"a nested one is a map: {head}: {{{rest}: ...}}" if rest
                            else f"did you mean {near[0]}?" if near
                            else f"the names here are {', '.join(sorted(map(str, node))) or '(none)'}")
                    problems.append(f"{at}: not a hyperparameter; {hint}")
                elif isinstance(node[name], dict):
                    out[name] = walk(node[name], v, at)
                else:
                    ok, val = _point_value(node[name], v)
                    if ok:
                        out[name] = val
                    else:
                        problems.append(f"{at}: {val}")
            return out

        return walk(self.tree, raw, path), problems

    def config_of(self, hp: Any) -> tuple[dict[str, Any] | None, str]:
        """Another search's configuration as one of this space (``searcher.warm_start``): the
        values of the searched hyperparameters as the space draws them, and this space's
        constants; or (None, why not): a searched name it lacks, or a value outside the
        range. Names this space does not search are left aside."""
        values: list[Any] = []
        for path, param in self.leaves():
            if isinstance(param, Const):
                values.append(param.sample(None))
                continue
            v = hp
            for name in path:
                if not isinstance(v, dict) or name not in v:
                    return None, f"it has no {'.'.join(path)}"
                v = v[name]
            ok, val = _point_value(param, v)
            if not ok:
                return None, f"{'.'.join(path)}: {val}"
            values.append(val)
        return self._build(values), ""

    def with_point(self, hp: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
        """``hp`` (a draw) with the values ``point`` (from ``check_point``) gives."""
        def merge(node: dict[str, Any], drawn: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
            out = dict(drawn)
            for k, v in given.items():
                out[k] = merge(node[k], drawn[k], v) if isinstance(node[k], dict) \
                    else copy.deepcopy(v)
            return out

        return merge(self.tree, hp, point)

    def describe(self) -> list[str]:
        """One line per hyperparameter: dotted name, type, range or values."""
        leaves = self.leaves()
        if not leaves:
            return ["(no hyperparameters)"]
        w = max(len(".".join(p)) for p, _ in leaves)
        return [f"{'.'.join(p):<{w}}  {param.describe()}" for p, param in leaves]

    def __repr__(self) -> str:
        return f"Space({self.flat_names()})"


def _yaml_hint(v: Any) -> str:
    """A number that came as text: quoted in the YAML (configs read ``1e-5`` as a number,
    yamlfile.py), or a string from Python."""
    if isinstance(v, str):
        try:
            float(v)
        except ValueError:
            return ""
        return " (a number written as text: write it without quotes)"
    return ""


def _point_value(param: Param, v: Any) -> tuple[bool, Any]:
    """(True, the value as ``param`` draws it) when ``v`` is one of its values, else (False,
    what is wrong)."""
    if isinstance(param, Categorical):
        for w in param.vals:  # the same type first: 1 and True are equal in Python
            if w == v and type(w) is type(v):
                return True, copy.deepcopy(w)
        for w in param.vals:
            if w == v:
                return True, copy.deepcopy(w)
        for w in param.vals:  # a float a step wrote (Optuna's step=0.1: 0.30000000000000004)
            if _is_num(v) and _is_num(w) \
                    and math.isclose(float(v), float(w), rel_tol=1e-9, abs_tol=1e-12):
                return True, copy.deepcopy(w)
        return False, (f"{shown(v)} is not one of the values ({', '.join(_fmt(w) for w in param.vals)})")
    if isinstance(param, Const):
        if v == param.val:
            return True, copy.deepcopy(param.val)
        return False, f"a constant ({_fmt(param.val)}): leave it out or give that value"
    if not _is_num(v) or (isinstance(v, float) and not math.isfinite(v)):
        return False, f"must be a number, got {shown(v)}{_yaml_hint(v)}"
    if isinstance(param, Int):
        if float(v) != int(v):
            return False, f"{shown(v)} is not a whole number (an int hyperparameter)"
        if not param.minval <= int(v) <= param.maxval:
            return False, (f"{shown(v)} is outside {param.minval} .. {param.maxval}: change the "
                           "point or the range")
        return True, int(v)
    assert isinstance(param, Double)
    lo, hi = param.minval, param.maxval
    if isinstance(param, Log):
        lo, hi = sorted((param.base ** lo, param.base ** hi))
    slack = 1e-9 * max(abs(lo), abs(hi))  # 1e-5 written for log exponent -5
    if not lo - slack <= float(v) <= hi + slack:
        return False, f"{shown(v)} is outside {_fmt(lo)} .. {_fmt(hi)}: change the point or the range"
    return True, float(min(max(float(v), lo), hi))


# ----------------------------------------------------------------------------- parsing
def flat_hparams(hp: dict[str, Any], keep_empty: bool = False, prefix: str = "") -> dict[str, Any]:
    """A trial's hyperparameters with nested maps as dotted names (``{"opt.lr": 0.1}``), for
    tables, text and trackers; an empty map is a value of its own with ``keep_empty``, else
    it has no name at all."""
    out: dict[str, Any] = {}
    for k, v in hp.items():
        if isinstance(v, dict) and (v or not keep_empty):
            out.update(flat_hparams(v, keep_empty, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class _Parser:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def bad(self, path: str, msg: str) -> None:
        self.problems.append(f"{path}: {msg}")

    def node(self, raw: Any, path: str) -> dict[str, Any]:
        """A nested map (no ``type`` key) -> dict of name -> Param or dict."""
        out: dict[str, Any] = {}
        for name, spec in raw.items():
            full = f"{path}.{name}"
            if not isinstance(name, str) or not name:
                self.bad(full, f"a hyperparameter name must be a non-empty string, got {shown(name)}")
                continue
            p = self.param(spec, full)
            if p is not None:
                out[name] = p
        return out

    def param(self, spec: Any, path: str) -> Any:
        if spec is None:
            self.bad(path, "has no value; give a constant or a mapping with a 'type' "
                           f"({', '.join(TYPES)})")
            return None
        if isinstance(spec, dict):
            if "type" not in spec and isinstance(spec.get("distribution"), str):
                self.bad(path, _wandb_hint(spec))
                return None
            if set(spec) == {"parameters"} and isinstance(spec["parameters"], dict):
                self.bad(path, "W&B Sweeps' nested parameters: write the nested map itself "
                               f"({path.rpartition('.')[2]}: {{NAME: {{type: ...}}}}); ${{args}} "
                               "passes --" + path.rpartition('.')[2] + ".NAME=VALUE")
                return None
            if set(spec) == {"grid_search"}:  # what Ray's tune.grid_search([...]) returns
                self.bad(path, "Ray Tune's grid_search: write type: categorical, vals: "
                               f"{shown(spec['grid_search'])} (with searcher.name: grid to "
                               "train every point to max_length)")
                return None
            if set(spec) == {"values"} and isinstance(spec["values"], list) or \
                    set(spec) == {"value"}:  # W&B's forms, which nobody means as a group
                name = path.rpartition('.')[2]
                form = "type: categorical, vals: [...]" if "values" in spec else \
                    f"the constant itself ({name}: {shown(spec['value'])})"
                if "value" in spec and name in _LENGTH_NAMES:
                    form = (f"nothing: {name} is the search's length (searcher.max_length); a "
                            f"command takes each segment's as --{name}=${{ASHA_TARGET_LENGTH}}")
                self.bad(path, f"W&B Sweeps' {next(iter(spec))}: write {form} (a group of one "
                               f"constant so named: type: const, val: {{...}})")
                return None
            if "type" not in spec:
                return self.node(spec, path)
            return self.typed(spec, path)
        if isinstance(spec, float) and not math.isfinite(spec):
            self.bad(path, f"a constant must be a finite number, got {shown(spec)}")
            return None
        inner = _spec_inside(spec, path) if isinstance(spec, list) else None
        if inner is not None:  # one per layer, as Optuna's n_units_l{i}: not searched as written
            self.bad(inner, "a search space inside a list is passed to the trial as it is "
                     "written, not searched: declare one hyperparameter per element "
                     "(n_units_l0: {type: int, ...}, n_units_l1: ...) and let the code build "
                     "the list")
            return None
        return Const(spec)  # bare scalar or list

    def number(self, spec: dict[str, Any], key: str, path: str, integer: bool = False) -> Any:
        """``spec[key]`` checked as a finite number (an integer if ``integer``), else None."""
        full = f"{path}.{key}"
        if key not in spec or spec[key] is None:
            return None
        v = spec[key]
        what = "an integer" if integer else "a number"
        if integer and not _is_int(v):
            self.bad(full, f"must be {what}, got {shown(v)}")
            return None
        if not integer and not _is_num(v):
            self.bad(full, f"must be {what}, got {shown(v)}{_yaml_hint(v)}")
            return None
        if not math.isfinite(v):
            self.bad(full, f"must be a finite number, got {shown(v)}")
            return None
        return v

    def typed(self, spec: dict[str, Any], path: str) -> Param | None:
        t = spec["type"]
        if not isinstance(t, str) or t not in TYPES:
            close = difflib.get_close_matches(str(t), TYPES, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else f" (one of {', '.join(TYPES)})"
            if str(t).lower() in _OTHER_TYPES:  # Optuna's and Ray Tune's names
                hint = f" here: write {_OTHER_TYPES[str(t).lower()]}"
            self.bad(f"{path}.type", f"unknown type {shown(t)}{hint}")
            return None
        ok = True
        known = _KEYS[t]
        for k in spec:
            if k not in known:
                ok = False
                close = difflib.get_close_matches(str(k), known, n=1, cutoff=0.6)
                hint = (f"; did you mean '{close[0]}'?" if close
                        else f" (type '{t}' takes {', '.join(x for x in known if x != 'type')})")
                if k in ("low", "high", "lower", "upper", "min", "max"):  # Optuna's, Ray's
                    hint = (f" (Optuna's low/high, Ray's lower/upper): write "
                            f"{'minval' if k in ('low', 'lower', 'min') else 'maxval'}")
                if k in ("step", "q") and t in ("int", "double", "log"):  # Optuna's, Ray's
                    hint += ("; values on a grid of steps: a categorical of them "
                             "(type: categorical, vals: [32, 64, 96, 128])")
                self.bad(f"{path}.{k}", f"unknown key{hint}")
        for k in _REQUIRED[t]:
            if k not in spec or (spec[k] is None and k != "val"):
                ok = False
                self.bad(f"{path}.{k}", f"missing (required for type '{t}')")
        if t == "const":
            return Const(spec.get("val")) if ok else None
        if t == "categorical":
            vals = spec.get("vals")
            if "vals" in spec and (not isinstance(vals, list) or not vals):
                self.bad(f"{path}.vals", f"must be a non-empty list, got {shown(vals)}")
                return None
            if ok and isinstance(vals, list):
                for i, v in enumerate(vals):
                    inner = _spec_inside(v, f"{path}.vals[{i}]")
                    if inner is not None:
                        self.bad(inner, "a search space inside a categorical value is passed to "
                                 "the trial as it is written, not searched: there are no "
                                 "conditional hyperparameters. Declare it as a hyperparameter "
                                 "of its own (hyperparameters.momentum: {type: double, ...}) "
                                 "and let the code use it where it applies")
                        return None
                return Categorical(vals)
            return None
        integer = t == "int"
        lo = self.number(spec, "minval", path, integer)
        hi = self.number(spec, "maxval", path, integer)
        count = None
        if spec.get("count") is not None:
            count = spec["count"]
            if not _is_int(count) or count < 1:
                self.bad(f"{path}.count", f"must be an integer >= 1, got {shown(count)}")
                ok = False
        log_scale = spec.get("log", False)
        if log_scale not in (True, False):
            self.bad(f"{path}.log", f"must be true or false, got {shown(log_scale)}")
            ok = False
        base = 10.0 if t == "log" else None
        if t == "log" and spec.get("base") is not None:
            base = self.number(spec, "base", path)
            if base is None:
                ok = False
            elif base <= 0:
                self.bad(f"{path}.base", f"must be > 0, got {shown(base)}")
                ok = False
        if lo is None or hi is None:
            return None
        if not lo < hi:
            self.bad(f"{path}.minval", f"must be < maxval (got minval={shown(lo)}, maxval={shown(hi)})")
            return None
        if not math.isfinite(float(hi) - float(lo)):
            self.bad(f"{path}.maxval", f"the range {shown(lo)} .. {shown(hi)} is too wide for a float")
            return None
        if not ok:
            return None
        if t == "int":
            if max(abs(lo), abs(hi)) >= 2**62:
                self.bad(f"{path}.maxval", "int bounds must lie within +-2**62")
                return None
            if log_scale is True and lo < 1:
                self.bad(f"{path}.minval", f"must be >= 1 on a log scale (log: true), got "
                         f"{shown(lo)}")
                return None
            return Int(lo, hi, count, log=log_scale is True)
        if t == "double" and log_scale is True:
            if lo <= 0:
                self.bad(f"{path}.minval", f"must be > 0 on a log scale (log: true), got {shown(lo)}")
                return None
            return Log(math.log10(lo), math.log10(hi), 10.0, count)
        if t == "double":
            return Double(lo, hi, count)
        assert base is not None  # 10 when left out; a bad one set ok to False above
        if 0 < lo < hi and (hi <= 1 or lo < 0.1) and hi / lo >= 10 and base > 1:
            # values written for exponents: 1e-5 .. 1e-1 draws 1.00002 .. 1.259, 0.001 .. 10
            # draws 1.002 .. 1e10; nobody means an exponent of 0.001
            self.bad(path, f"type 'log' takes exponents: minval {shown(lo)}, maxval {shown(hi)} "
                     f"draw {_fmt(base ** lo)} .. {_fmt(base ** hi)}. For values "
                     f"{shown(lo)} .. {shown(hi)} write minval: {_fmt(math.log(lo, base))}, "
                     f"maxval: {_fmt(math.log(hi, base))} (base {_fmt(base)}), or type: double "
                     f"with log: true")
            return None
        try:
            float(base) ** float(lo), float(base) ** float(hi)  # noqa: B018  (overflow check)
        except OverflowError:
            self.bad(path, f"{base}^{hi} overflows a float")
            return None
        return Log(lo, hi, base, count)


def _spec_inside(v: Any, path: str) -> str | None:
    """The path of a search-space spec (a mapping with a known ``type``) inside a value."""
    if isinstance(v, dict):
        if v.get("type") in TYPES and ({"minval", "maxval", "vals", "val"} & set(v)):
            return path
        for k, x in v.items():
            found = _spec_inside(x, f"{path}.{k}")
            if found is not None:
                return found
    elif isinstance(v, list):
        for i, x in enumerate(v):
            found = _spec_inside(x, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def parse_space(raw: Any, path: str = "hyperparameters") -> tuple[Space, list[str]]:
    """Parse the ``hyperparameters`` mapping. Returns ``(space, problems)``; never raises on bad
    input. When there are problems the space holds only the parameters that parsed."""
    p = _Parser()
    if raw is None:
        return Space({}, path), []
    if not isinstance(raw, dict):
        p.bad(path, f"must be a mapping of name: spec, got {shown(raw)}")
        return Space({}, path), p.problems
    tree = p.node(raw, path)
    space = Space(tree, path)
    seen: dict[str, str] = {}
    for names, _ in space.leaves():
        flat = ".".join(names)
        if flat in seen:  # a dotted name and a nested one: one column in tables and exports
            p.bad(f"{path}.{flat}", f"two hyperparameters have this dotted name ({seen[flat]!r} "
                  f"and {'.'.join(repr(n) for n in names)}): rename one")
        seen[flat] = ".".join(repr(n) for n in names)
    return space, p.problems

