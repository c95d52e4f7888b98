"""Domains and data products, and the slice of them each principal may see (default deny)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from difflib import get_close_matches
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from meshgate.audit import AuditRecord
from meshgate.catalog.config import DeprecationConfig, ProductConfig, RoleConfig
from meshgate.catalog.identity import IdentityProvider
from meshgate.catalog.loader import MeshDefinition
from meshgate.catalog.usage import ProductUse
from meshgate.errors import ConfigError, ProductNotFound
from meshgate.principal import Directory, Principal
from meshgate.spi import SourceTable
from meshgate.types import arrow_type, parse_sql_type

if TYPE_CHECKING:
    from meshgate.catalog.quality import QualityLog


@dataclass(frozen=True)
class ProductColumn:
    name: str
    sql_type: exp.DataType
    arrow_type: pa.DataType
    description: str
    classification: str | None
    nullable: bool


@dataclass(frozen=True)
class TableDefinition:
    """A product read from one source table; `source_columns[i]` feeds product column i."""

    source: str
    table: SourceTable
    source_columns: tuple[str, ...]


@dataclass(frozen=True)
class QueryDefinition:
    """A product defined by SQL over other products (expanded inline when referenced)."""

    sql: str


@dataclass(frozen=True)
class Domain:
    name: str
    owner: str
    description: str


@dataclass(frozen=True)
class DataProduct:
    domain: str
    name: str
    description: str
    owner: str
    version: str
    tags: tuple[str, ...]
    columns: tuple[ProductColumn, ...]
    definition: TableDefinition | QueryDefinition
    primary_key: tuple[str, ...] = ()
    deprecated: DeprecationConfig | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.domain}.{self.name}"

    @property
    def primary_key_name(self) -> str:
        """PostgreSQL's default constraint name, the one reflection tools expect to see."""
        return f"{self.name}_pkey"

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type, c.nullable) for c in self.columns])

    def __deepcopy__(self, memo: dict[int, object]) -> DataProduct:
        """Itself: a product is immutable, and every copy of a bound tree (its tables' meta
        holds their product) would otherwise copy the whole definition (6% of planning)."""
        return self


MaskedColumns = Callable[["DataProduct"], frozenset[str]]
QueryHistory = Callable[[], Sequence[AuditRecord]]
# Whether the caller's policies filter or mask a product: its health then omits numbers.
Restricted = Callable[["DataProduct"], bool]
ProductUses = Callable[[], Sequence[ProductUse]]


class Catalog:
    """The whole mesh as declared; `view(principal)` is what a caller may see."""

    def __init__(self, definition: MeshDefinition) -> None:
        self.definition = definition
        self.name = definition.mesh.name
        self.domains = {
            name: Domain(name, d.owner, d.description) for name, d in definition.domains.items()
        }
        self.products = {
            key: _product(config, definition.domains[config.domain].owner)
            for key, config in definition.products.items()
        }
        self.directory = Directory(
            {
                name: (
                    user.password_hash,
                    Principal(name, frozenset(user.roles), dict(user.attributes)),
                )
                for name, user in definition.users.items()
            }
        )
        jwt = definition.server.jwt
        self.identity_provider = (
            None if jwt is None else IdentityProvider.from_config(jwt, definition.directory)
        )

    def is_admin(self, principal: Principal) -> bool:
        """Admins see what the policy layer hides from everyone else (physical plans, history)."""
        return bool(principal.roles & set(self.definition.server.admin_roles))

    def granting_roles(self, principal: Principal, product: DataProduct) -> frozenset[str]:
        """The caller's roles that grant `product`: the roles whose policies apply to it."""
        return frozenset(
            role
            for role in principal.roles
            if _granted(_role(self.definition.roles, role).grants, product.domain, product.name)
        )

    def view(
        self,
        principal: Principal,
        masked: MaskedColumns | None = None,
        history: QueryHistory | None = None,
        quality: QualityLog | None = None,
        restricted: Restricted | None = None,
        uses: ProductUses | None = None,
    ) -> CatalogView:
        """`masked` tells, per product, which columns the caller's policies mask; `history`
        gives the audit records the caller may read; `quality` the results store, read only
        for the products of the view; `uses`, every recorded product use (the usage table
        shows the caller only what it may see of them)."""
        grants = [g for role in principal.roles for g in _role(self.definition.roles, role).grants]
        visible = {key: product for key, product in self.products.items() if _granted(grants, *key)}
        return CatalogView(self, principal, visible, masked, history, suggests=True,
                           quality=quality, restricted=restricted, uses=uses)


def _close_spellings(target: str, readable: Sequence[str]) -> list[str]:
    """The products of `readable` spelt most like `target` (`domain.name`, or a bare name)."""
    qualified = "." in target
    by_key: dict[str, str] = {}
    for product in readable:
        by_key.setdefault((product if qualified else product.split(".", 1)[1]).lower(), product)
    if target in by_key:  # the same name but for case or catalog
        return [by_key[target]]
    return [by_key[key] for key in get_close_matches(target, list(by_key), n=2, cutoff=0.75)]


def _role(roles: Mapping[str, RoleConfig], name: str) -> RoleConfig:
    return roles.get(name) or RoleConfig(name=name)


def _granted(grants: Iterable[str], domain: str, product: str) -> bool:
    return any(g in ("*", f"{domain}.*", f"{domain}.{product}") for g in grants)


def _product(config: ProductConfig, domain_owner: str) -> DataProduct:
    label = f"product {config.domain}.{config.name}"
    columns = []
    for column in config.columns:
        try:
            sql_type = parse_sql_type(column.type)
            wire = arrow_type(sql_type)
        except ConfigError as exc:
            raise ConfigError(f"{label}, column {column.name}: {exc.message}") from None
        columns.append(
            ProductColumn(
                column.name,
                sql_type,
                wire,
                column.description,
                column.classification,
                column.nullable,
            )
        )
    definition: TableDefinition | QueryDefinition
    if config.table is not None:
        mapping = config.table
        definition = TableDefinition(
            mapping.source,
            SourceTable(mapping.schema_, mapping.table),
            tuple(mapping.columns.get(c.name, c.name) for c in config.columns),
        )
    else:
        assert config.query is not None
        definition = QueryDefinition(config.query)
    return DataProduct(
        config.domain,
        config.name,
        config.description,
        config.owner or domain_owner,
        config.version,
        config.tags,
        tuple(columns),
        definition,
        config.primary_key,
        config.deprecated,
    )


class CatalogView:
    """The products one principal is granted; anything else answers like a missing product."""

    def __init__(
        self,
        catalog: Catalog,
        principal: Principal,
        products: Mapping[tuple[str, str], DataProduct],
        masked: MaskedColumns | None = None,
        history: QueryHistory | None = None,
        *,
        suggests: bool = False,
        quality: QualityLog | None = None,
        restricted: Restricted | None = None,
        uses: ProductUses | None = None,
    ) -> None:
        self.catalog = catalog
        self.principal = principal
        self._products = dict(products)
        self._masked = masked
        self._history = history
        self.quality = quality
        self._restricted = restricted
        self._uses = uses
        # Only a caller's own view names near products in its errors: a product definition's
        # view holds products the caller may not be granted (they must stay invisible).
        self._suggests = suggests

    def history(self) -> Sequence[AuditRecord]:
        """The audit records this caller may read: its own, or everyone's for an admin."""
        return self._history() if self._history is not None else ()

    def restricted(self, product: DataProduct) -> bool:
        """Whether the caller's policies filter or mask `product` (unknown: restricted)."""
        return self._restricted(product) if self._restricted is not None else True


    def uses(self) -> Sequence[ProductUse]:
        """Every recorded use of any product; filter before showing (system.usage does)."""
        return self._uses() if self._uses is not None else ()

    def masked_columns(self, product: DataProduct) -> frozenset[str]:
        """The columns of `product` the caller sees masked (empty when nothing is known)."""
        return self._masked(product) if self._masked is not None else frozenset()

    @property
    def name(self) -> str:
        return self.catalog.name

    def products(self) -> list[DataProduct]:
        return sorted(self._products.values(), key=lambda p: (p.domain, p.name))

    def readable(self, qualified_name: str) -> bool:
        """Whether this caller may read the product `<domain>.<product>`."""
        domain, _, name = qualified_name.partition(".")
        return (domain, name) in self._products

    def domains(self) -> list[Domain]:
        names = sorted({p.domain for p in self._products.values()})
        return [self.catalog.domains[n] for n in names]

    def product(self, domain: str, name: str) -> DataProduct:
        product = self._products.get((domain, name))
        if product is None:
            raise self.not_found(f"{domain}.{name}", name)
        return product

    def not_found(self, written: str, name: str) -> ProductNotFound:
        """The error for the product reference `written` (its last part `name`), naming the
        caller's own products it most likely meant: the same name in another domain, else a
        close spelling.

        `orders` -> "... did you mean sales.orders?"; never a product outside this view.
        """
        if not self._suggests:
            return ProductNotFound(written)
        readable = sorted(f"{domain}.{product}" for domain, product in self._products)
        target = ".".join(written.lower().split(".")[-2:])
        same_name = [
            q for q in readable
            if q.split(".", 1)[1].lower() == name.lower() and q.lower() != target
        ]  # fmt: skip
        return ProductNotFound(written, same_name[:3] or _close_spellings(target, readable))
