"""What changed in each product's contract between two configs, and the version bump it needs.

A consumer depends on a product's columns, their types and nullability, its primary key, and
the rows and values each role receives. So, as semantic versioning asks:

* **breaking** (a major bump): a product removed without a prior deprecation, or before
  its sunset date; a column removed (a rename is a removal and an addition), a type that is
  not a widening, a column that may now be NULL, a changed primary
  key, and a row filter or mask that is new or changed for a role that already existed;
* **compatible** (at least a minor bump): a column added, a type widened (a wider integer,
  FLOAT -> DOUBLE, a DECIMAL with no fewer integer or fraction digits, an integer into a
  DECIMAL that holds it), a NULL-able column becoming NOT NULL, a filter or mask removed, a
  product marked deprecated (and, with no version left to bump, a deprecated product removed
  after its sunset date);
* **metadata** (at least a patch bump): descriptions, tags, owner, classification, a
  deprecation's details or its withdrawal.

A new product needs no bump. Masks from `mesh_policies` count per role like a product's own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum

import pyarrow as pa

from meshgate.catalog.config import SEMANTIC_VERSION, MaskConfig, ProductConfig
from meshgate.catalog.loader import MeshDefinition
from meshgate.types import arrow_type, parse_sql_type, sql_type_name


class Impact(IntEnum):
    """How far a change reaches, and so the least version bump it needs."""

    METADATA = 1
    COMPATIBLE = 2
    BREAKING = 3

    @property
    def bump(self) -> str:
        return {Impact.METADATA: "patch", Impact.COMPATIBLE: "minor",
                Impact.BREAKING: "major"}[self]  # fmt: skip


@dataclass(frozen=True)
class ContractChange:
    product: str
    impact: Impact
    what: str


@dataclass(frozen=True)
class VersionProblem:
    product: str
    message: str


def contract_changes(
    old: MeshDefinition, new: MeshDefinition, today: dt.date | None = None
) -> list[ContractChange]:
    """Every change of every product, in product order; `today` (UTC by default) tells
    whether a deprecated product's sunset has passed."""
    today = today if today is not None else dt.datetime.now(dt.UTC).date()
    changes: list[ContractChange] = []
    for key in sorted(old.products.keys() | new.products.keys()):
        name = ".".join(key)
        if key not in new.products:
            changes.append(ContractChange(name, *_removal(old.products[key], today)))
        elif key in old.products:
            changes += [ContractChange(name, impact, what)
                        for impact, what in _product_changes(old, new, key)]  # fmt: skip
    return changes


def version_problems(
    old: MeshDefinition, new: MeshDefinition, changes: list[ContractChange]
) -> list[VersionProblem]:
    """Products whose new version does not bump as far as their changes need."""
    problems: list[VersionProblem] = []
    for key, config in sorted(new.products.items()):
        name = ".".join(key)
        needed = max((c.impact for c in changes if c.product == name), default=None)
        if needed is None or key not in old.products:
            continue
        before, after = old.products[key].version, config.version
        if _bump(before, after) < needed:
            problems.append(VersionProblem(name, (
                f"version {before} -> {after}, but a {needed.name.lower()} change needs a "
                f"{needed.bump} bump (at least {_least(before, needed)})")))  # fmt: skip
    for change in changes:
        removal = _REMOVAL_PROBLEMS.get(change.what.partition(" (")[0])
        if removal is not None:
            problems.append(VersionProblem(change.product, removal))
    return problems


_UNANNOUNCED = "product removed without a prior deprecation"
_EARLY = "product removed before its sunset"
_REMOVAL_PROBLEMS = {
    _UNANNOUNCED: "removed without a prior deprecation: consumers lose it unwarned; mark it "
                  "`deprecated:` (with a successor and a sunset date) and remove it after that "
                  "date",
    _EARLY: "removed before its sunset date: consumers were told it stays until then; keep it "
            "until after that day",
}  # fmt: skip


def _removal(product: ProductConfig, today: dt.date) -> tuple[Impact, str]:
    """A removed product: compatible only once it was deprecated and its sunset passed."""
    deprecation = product.deprecated
    if deprecation is None:
        return Impact.BREAKING, _UNANNOUNCED
    if today <= deprecation.sunset:
        return Impact.BREAKING, f"{_EARLY} ({deprecation.sunset.isoformat()})"
    return Impact.COMPATIBLE, f"product removed after its sunset ({deprecation.sunset.isoformat()})"


def _product_changes(
    old: MeshDefinition, new: MeshDefinition, key: tuple[str, str]
) -> list[tuple[Impact, str]]:
    before, after = old.products[key], new.products[key]
    found: list[tuple[Impact, str]] = []
    old_columns = {c.name: c for c in before.columns}
    new_columns = {c.name: c for c in after.columns}
    for name, column in old_columns.items():
        if name not in new_columns:
            found.append((Impact.BREAKING, f"column {name} removed"))
            continue
        now = new_columns[name]
        if _type(column.type) != _type(now.type):
            impact = (Impact.COMPATIBLE if _widens(_type(column.type), _type(now.type))
                      else Impact.BREAKING)  # fmt: skip
            found.append((impact, f"column {name}: type {_spelled(column.type)} -> "
                                  f"{_spelled(now.type)}"))  # fmt: skip
        if column.nullable != now.nullable:
            found.append((Impact.BREAKING if now.nullable else Impact.COMPATIBLE,
                          f"column {name}: {'may now be NULL' if now.nullable else 'NOT NULL'}"))
        if (column.description, column.classification) != (now.description, now.classification):
            found.append((Impact.METADATA, f"column {name}: description or classification"))
    found += [(Impact.COMPATIBLE, f"column {n} added") for n in new_columns if n not in old_columns]
    if before.primary_key != after.primary_key:
        found.append((Impact.BREAKING, f"primary key ({', '.join(before.primary_key)}) -> "
                                       f"({', '.join(after.primary_key)})"))  # fmt: skip
    found += _policy_changes(old, new, key)
    found += _deprecation_changes(before, after)
    if (before.description, before.tags, before.owner) != (after.description, after.tags,
                                                           after.owner):  # fmt: skip
        found.append((Impact.METADATA, "description, tags or owner"))
    return found


def _deprecation_changes(before: ProductConfig, after: ProductConfig) -> list[tuple[Impact, str]]:
    """Deprecating a product breaks nobody (its queries still run); it needs a minor bump."""
    was, now = before.deprecated, after.deprecated
    if was == now:
        return []
    if was is None and now is not None:
        successor = f", successor {now.successor}" if now.successor else ""
        return [(Impact.COMPATIBLE, f"deprecated (sunset {now.sunset.isoformat()}{successor})")]
    if now is None:
        return [(Impact.METADATA, "no longer deprecated")]
    return [(Impact.METADATA, "deprecation: successor, sunset or reason")]


def _policy_changes(
    old: MeshDefinition, new: MeshDefinition, key: tuple[str, str]
) -> list[tuple[Impact, str]]:
    """Row filters and masks per role that existed before: new or changed ones break."""
    found: list[tuple[Impact, str]] = []
    for role in sorted(old.roles.keys() & new.roles.keys()):
        was, now = _filter(old, key, role), _filter(new, key, role)
        if was != now:
            impact = Impact.COMPATIBLE if now is None else Impact.BREAKING
            found.append((impact, f"role {role}: row filter {_shown(was)} -> {_shown(now)}"))
        was_masks, now_masks = _masks(old, key, role), _masks(new, key, role)
        for column in sorted(was_masks.keys() | now_masks.keys()):
            before, after = was_masks.get(column), now_masks.get(column)
            if before != after and column in {c.name for c in old.products[key].columns}:
                impact = Impact.COMPATIBLE if after is None else Impact.BREAKING
                found.append((impact, f"role {role}: column {column} mask "
                                      f"{_shown(before)} -> {_shown(after)}"))  # fmt: skip
    return found


def _filter(definition: MeshDefinition, key: tuple[str, str], role: str) -> str | None:
    policy = definition.policies.get((".".join(key), role))
    return policy.row_filter if policy is not None else None


def _masks(definition: MeshDefinition, key: tuple[str, str], role: str) -> dict[str, str]:
    """column -> the mask `role` gets on it, from the product's policy and the mesh's rules."""
    product = definition.products.get(key)
    if product is None:
        return {}
    masks: dict[str, str] = {}
    policy = definition.policies.get((".".join(key), role))
    if policy is not None:
        masks.update({column: _mask_text(m) for column, m in policy.masks.items()})
    for rule in definition.mesh_policies.values():
        if role in rule.exempt_roles or (rule.tags and not set(rule.tags) & set(product.tags)):
            continue
        for column in _classified(product, rule.classification):
            masks.setdefault(column, f"{_mask_text(rule.mask)} (mesh policy {rule.name})")
    return masks


def _classified(product: ProductConfig, classification: str) -> list[str]:
    return [c.name for c in product.columns if c.classification == classification]


def _mask_text(mask: MaskConfig | str) -> str:
    return mask if isinstance(mask, str) else mask.expression


def _shown(value: str | None) -> str:
    return "none" if value is None else repr(value)


def _type(text: str) -> pa.DataType:
    return arrow_type(parse_sql_type(text))


def _spelled(text: str) -> str:
    return sql_type_name(_type(text))


_SIGNED = (pa.int8(), pa.int16(), pa.int32(), pa.int64())
_UNSIGNED = (pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64())
_DIGITS = {pa.int8(): 3, pa.int16(): 5, pa.int32(): 10, pa.int64(): 19,
           pa.uint8(): 3, pa.uint16(): 5, pa.uint32(): 10, pa.uint64(): 20}  # fmt: skip


def _widens(before: pa.DataType, after: pa.DataType) -> bool:
    """Every value of `before` is a value of `after`, unchanged."""
    if before in _SIGNED and after in _SIGNED:
        return bool(_SIGNED.index(after) > _SIGNED.index(before))
    if before in _UNSIGNED and after in _UNSIGNED:
        return _UNSIGNED.index(after) > _UNSIGNED.index(before)
    if before in _UNSIGNED and after in _SIGNED:
        return bool(after.bit_width > before.bit_width)
    if before == pa.float32() and after == pa.float64():
        return True
    if pa.types.is_decimal(after):
        if pa.types.is_decimal(before):
            return bool(after.scale >= before.scale
                        and after.precision - after.scale >= before.precision - before.scale)
        if before in _DIGITS:
            return bool(after.precision - after.scale >= _DIGITS[before])
    return False


def _parts(version: str) -> tuple[int, int, int]:
    match = SEMANTIC_VERSION.fullmatch(version)
    assert match is not None, version  # the config model checked it
    return int(match[1]), int(match[2]), int(match[3])


def _bump(before: str, after: str) -> int:
    """The impact a move from `before` to `after` covers (0: none, or a step back)."""
    old, new = _parts(before), _parts(after)
    if new <= old:
        return 0
    if new[0] > old[0]:
        return Impact.BREAKING
    return Impact.COMPATIBLE if new[1] > old[1] else Impact.METADATA


def _least(version: str, needed: Impact) -> str:
    major, minor, patch = _parts(version)
    if needed is Impact.BREAKING:
        return f"{major + 1}.0.0"
    if needed is Impact.COMPATIBLE:
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"

