"""How every experiment config is read: YAML's safe subset, with numbers as YAML 1.2 reads
them.

PyYAML implements YAML 1.1, where a float needs a dot: ``1e-4``, ``5e-5`` and ``1E3`` are
text. ML configs write learning rates that way everywhere (Determined's examples, Hugging Face
configs), and Determined (ruamel, YAML 1.2), OmegaConf and JSON read them as numbers; a
constant or a categorical value of ``1e-4`` reached the training code as the string "1e-4".
Here they are floats, as everywhere else. Everything else is PyYAML's safe loader unchanged
(1.1's yes/no/on/off booleans included: config.py says so per value).

An experiment folder of an earlier release (folder format 3 or less) started its search with
such values as text, and its journal's config hash says so: its config is read as it was
(``yaml11=True``) until a master of this release upgrades the folder, which first quotes those
values in its experiment.yaml (``keep_yaml11_text``) so that they stay the text they were.
"""
from __future__ import annotations

import re
from typing import Any

import yaml


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, with a float resolver for exponents without a dot."""


_EXPONENT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")
# tried after the YAML 1.1 resolvers (an int or a 1.1 float matches first): only what they
# leave as text changes, and only the forms a number takes in YAML 1.2 and JSON
ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("-+0123456789."))


class ConfigDumper(yaml.SafeDumper):
    """PyYAML's SafeDumper, resolving as ConfigLoader does: the text "1e-4" is written quoted
    (plain, it would read back as a number)."""


ConfigDumper.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("-+0123456789."))


def write_yaml(data: Any, **options: Any) -> str:
    """``data`` as YAML that ``read_yaml`` reads back as it is (``yaml.safe_dump``'s options)."""
    return yaml.dump(data, Dumper=ConfigDumper, **options)


def read_yaml(text: str, yaml11: bool = False) -> Any:
    """``text`` as a config reads: ``yaml.safe_load`` but for the floats above (all of
    PyYAML's own with ``yaml11``: an earlier release's folder)."""
    return yaml.load(text, Loader=yaml.SafeLoader if yaml11 else ConfigLoader)  # noqa: S506


def compose_yaml(text: str, yaml11: bool = False) -> Any:
    """The node tree of ``text``, resolved as ``read_yaml`` resolves it (line numbers)."""
    return yaml.compose(text, Loader=yaml.SafeLoader if yaml11 else ConfigLoader)


def keep_yaml11_text(text: str) -> str:
    """``text`` with each plain scalar that YAML 1.1 reads as text and ``read_yaml`` as a
    number quoted, so that both read the same: an earlier release's experiment.yaml, upgraded
    in place."""
    spans: list[tuple[int, int, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                walk(k)
                walk(v)
        elif isinstance(node, yaml.SequenceNode):
            for v in node.value:
                walk(v)
        elif (isinstance(node, yaml.ScalarNode) and node.style is None
              and node.tag == "tag:yaml.org,2002:str" and _EXPONENT.match(node.value)):
            spans.append((node.start_mark.index, node.end_mark.index, node.value))

    walk(yaml.compose(text, Loader=yaml.SafeLoader))
    for start, end, value in sorted(spans, reverse=True):
        text = text[:start] + f"'{value}'" + text[end:]
    return text
