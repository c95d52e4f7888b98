"""Row filters and column masks from the config, compiled once and checked against the products.

A product policy belongs to one (product, role); mesh-wide rules mask classified columns of
every product, now and later. For one caller the policies add up (ARCHITECTURE.md §4,
issue 12): a row is visible when any granting role's filter admits it (a granting role without
a filter admits every row), a column is unmasked when any granting role leaves it unmasked,
and mesh-wide rules are applied on top of the result, always.

Anything that does not compile or type-check is a configuration error: a policy never falls
open.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from meshgate.catalog.catalog import Catalog, DataProduct, ProductColumn
from meshgate.catalog.config import BUILTIN_MASKS, ExpressionMask, MaskConfig
from meshgate.catalog.loader import MeshDefinition, summary
from meshgate.catalog.problems import did_you_mean
from meshgate.errors import ConfigError, MeshgateError
from meshgate.policy.principal import bind_principal, describe_principal
from meshgate.principal import Principal
from meshgate.query.names import folded
from meshgate.spi import CANONICAL_DIALECT
from meshgate.sql.functions import ALLOWED_FUNCTION_CLASSES, ALLOWED_FUNCTION_NAMES
from meshgate.sql.parse import parse_statement

_TEXT_TYPES = {exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT, exp.DataType.Type.CHAR,
               exp.DataType.Type.NVARCHAR, exp.DataType.Type.NCHAR}  # fmt: skip
_DATE_TYPES = {exp.DataType.Type.DATE, exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ,
               exp.DataType.Type.TIMESTAMPNTZ, exp.DataType.Type.DATETIME}  # fmt: skip
_TRUNCATE = re.compile(r"^truncate_date\((day|month|year)\)$")
# DuckDB's "No function matches the given name and argument types 'f(A, B)'. ..."
_NO_MATCH = re.compile(r"^No function matches the given name and argument types '(.+)\((.*)\)'")
_ERROR_KIND = re.compile(r"^[A-Z][A-Za-z ]* Error: ")
REDACTED = "****"
HMAC_BLOCK = 64


@dataclass(frozen=True)
class Mask:
    """One way of hiding a column's value; `apply` keeps the column's declared type."""

    kind: str  # a built-in name, "truncate_date" or "expression"
    unit: str | None = None  # truncate_date's unit
    expression: exp.Expr | None = None  # over the product's raw columns, by name

    def apply(self, value: exp.Expr, column: ProductColumn, hash_key: bytes | None) -> exp.Expr:
        """`value` masked; expressions see the raw columns by name, built-ins see `value`."""
        kind = self.kind
        if kind == "null":
            return exp.cast(exp.null(), column.sql_type.copy())
        if kind == "expression":
            assert self.expression is not None
            return exp.cast(exp.paren(self.expression.copy()), column.sql_type.copy())
        if kind == "truncate_date":
            truncated = exp.func("date_trunc", exp.Literal.string(self.unit or "day"), value)
            return exp.cast(truncated, column.sql_type.copy())
        if not _is_text(column):
            return exp.cast(exp.null(), column.sql_type.copy())  # redact of a non-text value
        if kind == "redact":
            return _unless_null(value, exp.Literal.string(REDACTED))
        if kind == "last4":
            stars = exp.func(
                "repeat",
                exp.Literal.string("*"),
                exp.func("greatest", exp.Sub(this=exp.Length(this=value.copy()),
                                             expression=exp.Literal.number(4)),
                         exp.Literal.number(0)),
            )  # fmt: skip
            right = exp.Right(this=value.copy(), expression=exp.Literal.number(4))
            return _unless_null(value, exp.DPipe(this=stars, expression=right))
        if kind == "email_domain":
            at = exp.StrPosition(this=value.copy(), substr=exp.Literal.string("@"))
            domain = exp.Substring(this=value.copy(), start=exp.Add(
                this=at.copy(), expression=exp.Literal.number(1)))  # fmt: skip
            return exp.Case(
                ifs=[exp.If(this=exp.GT(this=at, expression=exp.Literal.number(0)),
                            true=exp.DPipe(this=exp.Literal.string("***@"), expression=domain))],
                default=_unless_null(value, exp.Literal.string(REDACTED)),
            )  # fmt: skip
        if kind == "hash":
            assert hash_key is not None
            return keyed_hash(value, hash_key)
        raise AssertionError(f"unknown mask {kind}")


def _is_text(column: ProductColumn) -> bool:
    return column.sql_type.this in _TEXT_TYPES


def _unless_null(value: exp.Expr, replacement: exp.Expr) -> exp.Expr:
    return exp.Case(
        ifs=[exp.If(this=exp.Is(this=value.copy(), expression=exp.null()), true=exp.null())],
        default=replacement,
    )


def keyed_hash(value: exp.Expr, key: bytes) -> exp.Expr:
    """HMAC-SHA256 of the value's UTF-8 bytes as lower-case hex, in DuckDB SQL (RFC 2104).

    The key is folded into the inner and outer pads at plan time, so the SQL carries only the
    padded keys, which the audit never shows to non-admins.
    """
    block = hashlib.sha256(key).digest() if len(key) > HMAC_BLOCK else key
    block = block.ljust(HMAC_BLOCK, b"\0")
    inner_pad = bytes(b ^ 0x36 for b in block).hex()
    outer_pad = bytes(b ^ 0x5C for b in block).hex()
    template = sqlglot.parse_one(
        f"sha256(unhex('{outer_pad}') || unhex(sha256(unhex('{inner_pad}') || encode(v))))",
        read=CANONICAL_DIALECT,
    )
    outer = template.transform(
        lambda node: value.copy() if isinstance(node, exp.Column) else node, copy=True
    )
    return _unless_null(value, outer)


def hmac_hex(value: str, key: bytes) -> str:
    """The reference the SQL above must agree with (used by tests and docs)."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class RolePolicy:
    """One role's view of one product."""

    name: str
    role: str
    row_filter: exp.Expr | None
    masks: Mapping[str, Mask]
    priority: int


@dataclass(frozen=True)
class MeshRule:
    name: str
    classification: str
    mask: Mask
    exempt_roles: frozenset[str]
    tags: frozenset[str]

    def covers(self, product: DataProduct, column: ProductColumn) -> bool:
        if column.classification != self.classification:
            return False
        return not self.tags or bool(self.tags & set(product.tags))


@dataclass(frozen=True)
class EffectivePolicy:
    """What one caller sees of one product: filter over raw columns, masks per column."""

    row_filter: exp.Expr | None
    masks: Mapping[str, tuple[Mask, ...]]  # applied in order, product masks before mesh rules
    names: tuple[str, ...]

    @property
    def restricts(self) -> bool:
        return self.row_filter is not None or bool(self.masks)


UNRESTRICTED = EffectivePolicy(None, {}, ())


def policy_problems(definition: MeshDefinition) -> list[str]:
    """What the policies' compiler finds wrong, for the loader's one report (its `checks`).

    Nothing when no catalog can be built from `definition` yet: the loader has reported why,
    and the policies are checked once that is fixed.
    """
    try:
        catalog = Catalog(definition)
    except ConfigError:
        return []
    problems: list[str] = []
    PolicySet(catalog, problems)
    return problems


class PolicySet:
    """Every policy of a deployment, compiled; `for_caller` is what secure() applies."""

    def __init__(self, catalog: Catalog, problems: list[str] | None = None) -> None:
        """Compile every policy; what does not compile goes to `problems` when given (the
        loader's one report), else it is raised."""
        definition = catalog.definition
        self._catalog = catalog
        self.hash_key = (
            definition.mesh.hash_key.encode() if definition.mesh.hash_key is not None else None
        )
        self._by_product: dict[str, list[RolePolicy]] = {}
        self._rules: list[MeshRule] = []
        found: list[str] = []
        self._compile(catalog, found)
        if problems is not None:
            problems.extend(found)
        elif found:
            raise ConfigError(summary(definition.directory, found))

    def _compile(self, catalog: Catalog, problems: list[str]) -> None:
        definition = catalog.definition
        checker = _TypeChecker()
        for (product_name, role), config in definition.policies.items():
            label = f"policy {config.product}.{config.role}"
            product = catalog.products.get(tuple(product_name.split(".", 1)))  # type: ignore[arg-type]
            if product is None:
                continue  # the loader reported it
            row_filter = None
            if config.row_filter is not None:
                where = definition.where(label, "row_filter")
                row_filter = _compile_expression(config.row_filter, where, problems)
                if row_filter is not None:
                    checker.boolean(product, row_filter, where, problems)
            masks: dict[str, Mask] = {}
            for column_name, mask_config in config.masks.items():
                column = next((c for c in product.columns if c.name == column_name), None)
                if column is None:
                    continue  # the loader reported it
                where = definition.where(label, "masks", column_name)
                mask = self._compile_mask(mask_config, column, where, problems)
                if mask is not None:
                    checker.mask(product, column, mask, self.hash_key, where, problems)
                    masks[column_name] = mask
            self._by_product.setdefault(product_name, []).append(
                RolePolicy(config.name, role, row_filter, masks, config.priority)
            )
        for name, rule in definition.mesh_policies.items():
            where = definition.where(f"mesh policy {name}", "mask")
            if isinstance(rule.mask, ExpressionMask):
                problems.append(
                    f"{where}: mesh-wide rules take a built-in mask ({', '.join(BUILTIN_MASKS)})"
                )
                continue
            mask = _builtin(rule.mask, where, problems)
            if mask is None:
                continue
            if mask.kind == "hash" and self.hash_key is None:
                problems.append(f"{where}: the hash mask needs mesh.hash_key (from ${{ENV}})")
                continue
            exempt, tags = frozenset(rule.exempt_roles), frozenset(rule.tags)
            self._rules.append(MeshRule(name, rule.classification, mask, exempt, tags))
        _check_conflicts(self._by_product, definition, problems)

    def _compile_mask(
        self, config: MaskConfig, column: ProductColumn, where: str, problems: list[str]
    ) -> Mask | None:
        if isinstance(config, ExpressionMask):
            expression = _compile_expression(config.expression, f"{where}.expression", problems)
            return None if expression is None else Mask("expression", expression=expression)
        mask = _builtin(config, where, problems)
        if mask is None:
            return None
        if mask.kind in ("last4", "hash", "email_domain") and not _is_text(column):
            problems.append(f"{where}: {mask.kind} applies to text columns; use null or an "
                            "expression")  # fmt: skip
            return None
        if mask.kind == "truncate_date" and column.sql_type.this not in _DATE_TYPES:
            problems.append(f"{where}: truncate_date applies to DATE and TIMESTAMP columns")
            return None
        if mask.kind == "hash" and self.hash_key is None:
            problems.append(f"{where}: the hash mask needs mesh.hash_key (from ${{ENV}})")
            return None
        return mask

    def for_caller(self, product: DataProduct, principal: Principal) -> EffectivePolicy:
        """The policy one caller's granting roles add up to, with its principal bound."""
        granting = self._catalog.granting_roles(principal, product)
        by_role = {p.role: p for p in self._by_product.get(product.qualified_name, ())}
        applied = [by_role[r] for r in sorted(granting) if r in by_role]
        names = [p.name for p in applied]
        row_filter: exp.Expr | None = None
        if granting and len(applied) == len(granting) and all(p.row_filter for p in applied):
            filters = [bind_principal(p.row_filter, principal) for p in applied if p.row_filter]
            row_filter = exp.or_(*(exp.paren(f) for f in filters)) if len(filters) > 1 else (
                filters[0])  # fmt: skip
        masks: dict[str, tuple[Mask, ...]] = {}
        for column in product.columns:
            chosen = _mask_for(column.name, applied, len(granting))
            steps = [] if chosen is None else [_bound(chosen, principal)]
            for rule in self._rules:
                if rule.covers(product, column) and not (rule.exempt_roles & principal.roles):
                    steps.append(rule.mask)
                    names.append(rule.name)
            if steps:
                masks[column.name] = tuple(steps)
        return EffectivePolicy(row_filter, masks, tuple(dict.fromkeys(names)))


def _mask_for(column: str, applied: Sequence[RolePolicy], granting: int) -> Mask | None:
    """None when any granting role leaves the column unmasked, else the winning mask."""
    if len(applied) < granting or any(column not in p.masks for p in applied):
        return None
    return max(applied, key=lambda p: p.priority).masks[column]


def _bound(mask: Mask, principal: Principal) -> Mask:
    if mask.expression is None:
        return mask
    return Mask(mask.kind, mask.unit, bind_principal(mask.expression, principal))


def _check_conflicts(
    by_product: Mapping[str, list[RolePolicy]], definition: MeshDefinition, problems: list[str]
) -> None:
    """Two roles one caller may hold that mask a column differently need distinct priorities."""
    for product_name, policies in by_product.items():
        for index, first in enumerate(policies):
            for second in policies[index + 1 :]:
                for column in set(first.masks) & set(second.masks):
                    if first.masks[column] != second.masks[column] and (
                        first.priority == second.priority
                    ):
                        where = definition.where(f"policy {product_name}.{second.role}")
                        problems.append(
                            f"{where}: roles {first.role!r} and "
                            f"{second.role!r} mask column {column!r} differently; give one of "
                            "them a higher `priority` to declare which wins for callers holding "
                            "both"
                        )


def _builtin(name: str, where: str, problems: list[str]) -> Mask | None:
    truncate = _TRUNCATE.match(name)
    if truncate:
        return Mask("truncate_date", unit=truncate.group(1))
    if name in ("null", "redact", "last4", "hash", "email_domain"):
        return Mask(name)
    problems.append(
        f"{where}: unknown mask {name!r}; use one of {', '.join(BUILTIN_MASKS)} "
        "or {expression: <SQL>}"
    )
    return None


def _compile_expression(text: str, where: str, problems: list[str]) -> exp.Expr | None:
    """One scalar SQL expression over the product's columns, through the query gate."""
    try:
        select = sqlglot.parse_one(f"SELECT {text}", read=CANONICAL_DIALECT)
    except SqlglotError as exc:
        problems.append(f"{where}: not valid SQL: {str(exc).splitlines()[0]}")
        return None
    if (
        not isinstance(select, exp.Select)
        or len(select.expressions) != 1
        or any(k != "expressions" and v for k, v in select.args.items())
        or isinstance(select.expressions[0], exp.Alias)
    ):
        problems.append(f"{where}: must be one SQL expression over the product's columns")
        return None
    expression: exp.Expr = folded(select.expressions[0])
    if any(isinstance(n, (exp.Subquery, exp.Query, exp.Table)) for n in expression.walk()):
        problems.append(f"{where}: may use only the product's own columns, not subqueries")
        return None
    described = describe_principal(expression)
    unknown = [_unknown_function(call) for call in described.find_all(exp.Anonymous)]
    if any(unknown):
        problems.extend(f"{where}: {message}" for message in unknown if message)
        return None
    try:
        parse_statement(f"SELECT {described.sql(CANONICAL_DIALECT)}")
    except MeshgateError as exc:
        problems.append(f"{where}: {exc.message}")
        return None
    return expression


def _unknown_function(call: exp.Anonymous) -> str | None:
    """A call of a function DuckDB does not have, said so (the gate would call it forbidden)."""
    name = call.name.lower()
    if name in _duckdb_functions():
        return None
    # Function names are many and short: only a near miss is worth suggesting.
    hint = did_you_mean(name, _policy_functions(), cutoff=0.8)
    return f"unknown function {name!r}" + (hint or ": DuckDB has no function of that name")


# Policy expressions are checked in DuckDB: no files, no Python objects, no extension loads.
_LOCKED_DOWN: dict[str, str | bool | int | float | list[str]] = {
    "python_enable_replacements": False, "enable_external_access": False,
    "autoinstall_known_extensions": False, "autoload_known_extensions": False,
    "lock_configuration": True,
}


@functools.cache
def _duckdb_functions() -> frozenset[str]:
    with duckdb.connect(":memory:", config=_LOCKED_DOWN) as connection:
        rows = connection.execute("SELECT DISTINCT function_name FROM duckdb_functions()")
        return frozenset(str(name).lower() for (name,) in rows.fetchall())


@functools.cache
def _policy_functions() -> frozenset[str]:
    """The DuckDB functions the gate lets a policy call: the candidates of a suggestion."""
    typed: set[str] = set()
    for function in ALLOWED_FUNCTION_CLASSES:
        typed.update(name.lower() for name in function.sql_names())
    return frozenset((typed | ALLOWED_FUNCTION_NAMES) & _duckdb_functions())


def _unknown_columns(product: DataProduct, expression: exp.Expr) -> list[str]:
    """Columns the expression names that the product lacks, in the config author's words."""
    declared = [c.name for c in product.columns]
    lowered = {name.lower() for name in declared}
    messages = []
    for column in expression.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            continue
        head = column.parts[0].name.lower()
        if column.table and head in lowered:
            continue  # a field of a STRUCT column
        if column.name.lower() not in lowered:
            hint = did_you_mean(column.name, declared) or f" (columns: {', '.join(declared)})"
            messages.append(f"unknown column {column.name!r} of {product.qualified_name}{hint}")
        elif column.table:
            messages.append(f"write the column without a qualifier: {column.name!r}, not "
                            f"{column.sql(CANONICAL_DIALECT)!r}")  # fmt: skip
    return list(dict.fromkeys(messages))


def _type_error(product: DataProduct, error: duckdb.Error) -> str:
    """DuckDB's binder error as the config author needs it: what is wrong and what to do."""
    reason = _ERROR_KIND.sub("", str(error).splitlines()[0]).rstrip("!")
    no_match = _NO_MATCH.match(reason)
    against = f"does not type-check against {product.qualified_name}"
    if no_match:
        name, arguments = no_match.group(1), no_match.group(2).replace("_LITERAL", "")
        what = f"function {name}" if name.replace("_", "").isalnum() else f"operator {name}"
        return (f"{against}: {what} does not take ({arguments}); cast the values to the types "
                "it takes, e.g. CAST(x AS VARCHAR)")  # fmt: skip
    return (f"{against}: {reason[:1].lower()}{reason[1:]}; compare with the product's column "
            "types (`meshgate catalog --columns`)")  # fmt: skip


class _TypeChecker:
    """Checks expressions against an empty table shaped like the product, in DuckDB."""

    def __init__(self) -> None:
        self._connection = duckdb.connect(":memory:", config=_LOCKED_DOWN)

    def boolean(
        self, product: DataProduct, expression: exp.Expr, where: str, problems: list[str]
    ) -> None:
        kind = self._describe(product, describe_principal(expression), where, problems)
        if kind is not None and kind != "BOOLEAN":
            problems.append(f"{where}: a row filter must be a boolean condition, not {kind}")

    def mask(
        self,
        product: DataProduct,
        column: ProductColumn,
        mask: Mask,
        hash_key: bytes | None,
        where: str,
        problems: list[str],
    ) -> None:
        applied = mask.apply(exp.column(column.name, quoted=True), column, hash_key)
        self._describe(product, describe_principal(applied), where, problems)

    def _describe(
        self, product: DataProduct, expression: exp.Expr, where: str, problems: list[str]
    ) -> str | None:
        unknown = _unknown_columns(product, expression)
        if unknown:
            problems.extend(f"{where}: {message}" for message in unknown)
            return None
        columns = ", ".join(
            f'{exp.to_identifier(c.name, quoted=True).sql(CANONICAL_DIALECT)} '
            f"{c.sql_type.sql(CANONICAL_DIALECT)}"
            for c in product.columns
        )
        try:
            self._connection.execute(f"CREATE OR REPLACE TEMP TABLE product ({columns})")
            row = self._connection.execute(
                f"DESCRIBE SELECT {expression.sql(CANONICAL_DIALECT)} AS checked FROM product"
            ).fetchone()
        except duckdb.Error as exc:
            problems.append(f"{where}: {_type_error(product, exc)}")
            return None
        assert row is not None
        return str(row[1])
