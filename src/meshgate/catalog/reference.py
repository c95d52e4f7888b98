"""The config format, generated from the models: a JSON Schema for editors and a reference page.

Both come from `catalog.config`, so the documented format cannot drift from what the loader
accepts (`meshgate config schema`, `meshgate config reference`; docs/ holds the committed copies).
"""

from __future__ import annotations

import datetime as dt
import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from meshgate.catalog.config import BUILTIN_MASKS, NAME_PATTERN, PRODUCT_PATTERN, ConfigFile
from meshgate.types import SUPPORTED_TYPES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def config_schema() -> dict[str, Any]:
    """The JSON Schema of one config file (any file of a config directory)."""
    schema = ConfigFile.model_json_schema(by_alias=True)
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "meshgate config file",
        **{k: v for k, v in schema.items() if k != "title"},
    }


def schema_text() -> str:
    """`config_schema()` as the committed docs/config.schema.json spells it."""
    return json.dumps(config_schema(), indent=2, sort_keys=True) + "\n"


INTRODUCTION = """\
# Config reference

Generated from `src/meshgate/catalog/config.py` by `meshgate config reference`; do not edit.
`tests/test_config_reference.py` fails when this page and the models differ.

A deployment is a directory of `*.yaml` files. Each file may hold any of the sections below;
meshgate reads them all and merges them (a name may be declared only once across files).
Strings may use `${VARIABLE}` or `${VARIABLE:-fallback}`; an unset variable is an error.

Editors with a YAML language server check and complete files as they are typed against the
JSON Schema `meshgate config schema` prints (committed as `docs/config.schema.json`): put
`# yaml-language-server: $schema=<path or URL of config.schema.json>` on a file's first line.

## Errors

`meshgate check`, `serve` and every other command report all problems of a directory at once,
sorted by file and line, one per line, then exit with code 2:

```text
error: invalid configuration in /srv/mesh (2 problems):
  mesh.yaml:9:5: sources[0].kind: unknown source kind 'sqlit'; did you mean 'sqlite'? (...)
  sales.yaml:7:5: products[0].tags: expected a list; write `tags: [orders]`
```

Each problem is `file:line:column: key path: message`. The file is relative to the config
directory; the key path names mapping keys with dots and list items by their index from 0
(`products[0]` is the first product of that file).
"""


def config_reference() -> str:
    """The reference page in Markdown: every section, key, type, default and description."""
    parts = [INTRODUCTION]
    for name, info in ConfigFile.model_fields.items():
        model = _element_model(info.annotation)
        assert model is not None
        listed = typing.get_origin(info.annotation) is tuple
        shape = f"a list of {model.__name__} items" if listed else f"one {model.__name__}"
        parts.append(f"## `{name}:` ({shape})\n\n{_describe(info) or ''}".rstrip() + "\n")
        parts.extend(_model_section(model, seen=set()))
    parts.append("## Column types\n\n" + ", ".join(f"`{t}`" for t in SUPPORTED_TYPES) + "\n\n"
                 "Timestamps travel in microseconds: `TIMESTAMP` (also `TIMESTAMP_S`, "
                 "`TIMESTAMP_MS`, `TIMESTAMP_NS` and PostgreSQL's `timestamp(p)`) without a "
                 "time zone, `TIMESTAMPTZ` in UTC; seconds and milliseconds widen exactly, "
                 "nanoseconds are cut to microseconds.\n")
    parts.append("## Masks\n\nBuilt-in masks: " + ", ".join(f"`{m}`" for m in BUILTIN_MASKS)
                 + "; or `{expression: <SQL>}` over the product's columns (not in "
                 "`mesh_policies`).\n")  # fmt: skip
    return "\n".join(parts)


def _model_section(model: type[BaseModel], seen: set[type[BaseModel]]) -> list[str]:
    seen.add(model)
    rows = ["| key | type | required / default | description |", "|---|---|---|---|"]
    nested: list[type[BaseModel]] = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        text = (_describe(info) or "").replace("|", "\\|")
        kind = " ".join([_type_name(info.annotation), *_constraints(info)])
        rows.append(f"| `{key}` | {kind} | {_default(info)} | {text} |")
        inner = _element_model(info.annotation)
        if inner is not None and inner not in seen:
            nested.append(inner)
    doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    sections = [f"### {model.__name__}\n\n{doc}\n\n" + "\n".join(rows) + "\n"]
    for inner in nested:
        sections.extend(_model_section(inner, seen))
    return sections


def _constraints(info: FieldInfo) -> list[str]:
    """What the field's declared limits allow, e.g. `> 0`, `a name (a-z, 0-9, _)`."""
    found = []
    for limit in info.metadata:
        for attribute, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if getattr(limit, attribute, None) is not None:
                found.append(f"{sign} {getattr(limit, attribute)}")
        if getattr(limit, "min_length", None):
            found.append("(not empty)")
        pattern = getattr(limit, "pattern", None)
        if pattern == NAME_PATTERN:
            found.append("(a name: a-z, 0-9 and _, not starting with a digit)")
        elif pattern == PRODUCT_PATTERN:
            found.append("(`<domain>.<product>`)")
        elif pattern is not None:
            found.append(f"(matching `{pattern}`)")
    return found


def _describe(info: FieldInfo) -> str | None:
    return info.description.replace("\n", " ") if info.description else None


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return ""
    else:
        value = info.default
    if isinstance(value, BaseModel):
        return "(its defaults)"
    if isinstance(value, tuple):
        value = list(value)
    return f"`{json.dumps(value)}`"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names)
    if origin is tuple:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    plain: dict[Any, str] = {str: "text", int: "integer", float: "number", bool: "true/false",
                             dt.date: "date (YYYY-MM-DD)", Any: "any"}  # fmt: skip
    return plain.get(annotation, str(annotation))


def _element_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, alone, optional or as list items."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _element_model(arg)
        if found is not None:
            return found
    return None
