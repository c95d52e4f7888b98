"""Config problems in one style: `file:line:column: key.path[index]: what is wrong`.

A YAML file is read together with where each key starts, so every problem, whether pydantic
found it or a cross-check across files did, points at the line an operator has to edit. Messages
speak YAML, not pydantic: "expected a list; write `tags: [orders]`".
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic_core import ErrorDetails

from meshgate.catalog.config import NAME_PATTERN, PRODUCT_PATTERN

KeyPath = tuple[str | int, ...]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True, order=True)
class ConfigProblem:
    """One thing wrong in a config directory; sorts by file, then line and column."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        parts = [p for p in (where, self.path) if p]
        return ": ".join([*parts, self.message])


def key_path(parts: Iterable[str | int]) -> str:
    """`("products", 0, "columns", 2, "type")` -> `products[0].columns[2].type`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.6) -> str:
    """`; did you mean 'x'?` for a close match (similarity at least `cutoff`), else nothing."""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


@dataclass
class Document:
    """One YAML file's data and where each key path starts in it (1-based line and column)."""

    file: str
    data: Any
    marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    scalars: dict[KeyPath, str] = field(default_factory=dict)

    def at(self, path: KeyPath, message: str) -> ConfigProblem:
        """A problem at `path`, placed at the nearest enclosing key that the file spells out."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.marks:
                line, column = self.marks[path[:end]]
                return ConfigProblem(self.file, line, column, key_path(path), message)
        return ConfigProblem(self.file, 0, 0, key_path(path), message)


def read_document(file: str, text: str) -> Document | ConfigProblem:
    """Parse YAML keeping each node's position; a syntax error is a problem at its line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        reason = getattr(exc, "problem", None) or str(exc)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        return ConfigProblem(file, line, column, "", f"not valid YAML ({reason}); check the "
                             "indentation and quoting on this line")
    finally:
        loader.dispose()
    document = Document(file, data, {(): (1, 1)})
    if node is not None:
        _record(node, (), document)
    return document


def _record(node: yaml.Node, path: KeyPath, document: Document) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                child = (*path, key.value)
                document.marks[child] = (key.start_mark.line + 1, key.start_mark.column + 1)
                _record(value, child, document)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            document.marks[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _record(item, child, document)
    elif isinstance(node, yaml.ScalarNode):
        document.scalars[path] = node.value


# --- pydantic's errors, said in YAML terms ----------------------------------------------------

PASSWORD_HINT = (
    "; store a hash under `password_hash` instead: run `meshgate hash-password` and paste "
    "its output (a plain password never goes into a config file)"
)


def explain_errors(
    document: Document, prefix: KeyPath, model: type[BaseModel], errors: Sequence[ErrorDetails]
) -> list[ConfigProblem]:
    """One problem per place; union alternatives at one place are merged into one message."""
    by_path: dict[KeyPath, list[str]] = {}
    for error in errors:
        loc = _data_loc(document.data, prefix, tuple(error["loc"]), error["type"] == "missing")
        by_path.setdefault(loc, [])
        message = _explain(document, prefix, loc, model, error)
        if message not in by_path[loc]:
            by_path[loc].append(message)
    return [document.at(loc, "; or ".join(messages)) for loc, messages in by_path.items()]


def _data_loc(data: Any, prefix: KeyPath, loc: KeyPath, missing: bool) -> KeyPath:
    """The error's place in the file: pydantic's union-branch names are dropped."""
    node: Any = data
    for part in prefix:
        node = node[part]
    kept: list[str | int] = list(prefix)
    for index, part in enumerate(loc):
        found, child = child_of(node, part)
        if found:
            node = child
        elif not (missing and index == len(loc) - 1):
            continue
        kept.append(part)
    return tuple(kept)


def child_of(node: Any, part: str | int) -> tuple[bool, Any]:
    """Whether `node` has the key or index `part`, and the value there."""
    if isinstance(node, dict) and part in node:
        return True, node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    return False, None


def _explain(
    document: Document, prefix: KeyPath, loc: KeyPath, model: type[BaseModel],
    error: ErrorDetails,
) -> str:  # fmt: skip
    kind, given = error["type"], error.get("input")
    key = next((p for p in reversed(loc) if isinstance(p, str)), "")
    text = document.scalars.get(loc, repr(given))
    context = error.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = keys_of(model_at(model, loc[len(prefix) : -1]))
        hint = did_you_mean(key, allowed) or f" (allowed here: {', '.join(allowed)})"
        if key == "password" and "password_hash" in allowed:
            hint = PASSWORD_HINT
        return f"unknown key {key!r}{hint}"
    if kind == "missing":
        return "required key is missing"
    if kind in ("tuple_type", "list_type", "set_type"):
        if isinstance(given, str | int | float | bool):
            return f"expected a list; write `{key}: [{text}]`"
        return "expected a list, e.g. `[a, b]`"
    if kind == "string_type":
        if isinstance(given, bool | int | float):
            return f'expected text, and YAML read {text} as a number or boolean; quote it: ' \
                   f'`{key}: "{text}"`'
        return f"expected text, got {_shape(given)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {text}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {text}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (`key: value` lines), got {_shape(given)}"
    if kind == "greater_than":
        return f"must be greater than {context.get('gt')}, got {text}"
    if kind == "greater_than_equal":
        return f"must be at least {context.get('ge')}, got {text}"
    if kind == "less_than_equal":
        return f"must be at most {context.get('le')}, got {text}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_pattern_mismatch":
        pattern = context.get("pattern")
        if pattern == PRODUCT_PATTERN:
            return f"{given!r} is not a product name: write 'domain.product'"
        if pattern == NAME_PATTERN:
            return f"{given!r} is not a valid name: use lower-case letters, digits and _, " \
                   "starting with a letter or _"
        return f"{given!r} does not have the expected form {pattern}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"])


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (an empty value)"
    return f"{value!r}"


def keys_of(model: type[BaseModel] | None) -> list[str]:
    """The keys a YAML mapping of this model may hold, as the file spells them."""
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def model_at(model: type[BaseModel], loc: KeyPath) -> type[BaseModel] | None:
    """The model a mapping at `loc` (below `model`) is validated against, if one is."""
    current: Any = model
    for part in loc:
        if isinstance(part, str) and _is_model(current):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[part].annotation
        current = _unwrap(current)
    return current if _is_model(current) else None


def _unwrap(annotation: Any) -> Any:
    """tuple[X, ...], dict[str, X] and X | None -> X: the type of one element."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None) and a is not Ellipsis]
    if origin in (tuple, list, dict) and args:
        return args[-1]
    if origin in (typing.Union, types.UnionType):
        models = [a for a in args if _is_model(a)]
        return models[0] if len(models) == 1 and len(args) == 1 else annotation
    return annotation


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)
