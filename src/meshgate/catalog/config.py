"""Typed models of the configuration files; validation errors name the file and the path."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

NAME_PATTERN = r"^[a-z_][a-z0-9_]*$"


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently drop a policy or a grant."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class MeshConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="catalog name clients see")
    description: str = ""
    # The secret of the keyed `hash` mask (HMAC-SHA256); from ${ENV}, never written inline.
    hash_key: str | None = None


class SourceConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    kind: str
    options: dict[str, Any] = Field(default_factory=dict)
    description: str = ""


class DomainConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    owner: str
    description: str = ""


class ColumnConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    type: str
    description: str = ""
    classification: str | None = None
    nullable: bool = True


class TableMapping(Strict):
    """A product read straight from one source table; `columns` maps product -> source names."""

    source: str
    table: str
    schema_: str | None = Field(default=None, alias="schema")
    columns: dict[str, str] = Field(default_factory=dict)


class ProductConfig(Strict):
    domain: str
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    owner: str | None = None
    version: str = "1.0.0"
    tags: tuple[str, ...] = ()
    columns: tuple[ColumnConfig, ...]
    # Declared keys let the planner push joins that cannot multiply rows (FK -> PK joins).
    primary_key: tuple[str, ...] = ()
    table: TableMapping | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_definition(self) -> ProductConfig:
        if (self.table is None) == (self.query is None):
            raise ValueError("a product needs exactly one definition: `table:` or `query:`")
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate column names in {names}")
        unknown = [k for k in self.primary_key if k not in names]
        if unknown:
            raise ValueError(f"primary_key names undeclared columns {unknown}")
        return self


class UserConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    password_hash: str
    roles: tuple[str, ...] = ()
    attributes: dict[str, str] = Field(default_factory=dict)

    @field_validator("password_hash")
    @classmethod
    def _hashed(cls, value: str) -> str:
        if not value.startswith("scrypt$"):
            raise ValueError(
                "must be a scrypt hash, never a plain password; "
                "make one with `meshgate hash-password`"
            )
        return value


GRANT_PATTERN = re.compile(r"^(\*|[a-z_][a-z0-9_]*\.(\*|[a-z_][a-z0-9_]*))$")


def _grant_form(grant: str) -> str:
    """Checked one grant at a time, so a bad grant is reported at its own index."""
    if not GRANT_PATTERN.match(grant):
        hint = f"; did you mean '{grant}.*'?" if re.fullmatch(NAME_PATTERN, grant) else ""
        raise ValueError(f"grant {grant!r} must be '*', 'domain.*' or 'domain.product'{hint}")
    return grant


Grant = Annotated[str, AfterValidator(_grant_form)]


class RoleConfig(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    grants: tuple[Grant, ...] = ()


PRODUCT_PATTERN = r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$"


class ExpressionMask(Strict):
    """A mask written as SQL over the product's columns; cast back to the column's type."""

    expression: str


# A built-in mask name (null, redact, last4, hash, email_domain, truncate_date(day|month|year))
# or an expression.
MaskConfig = str | ExpressionMask


class PolicyConfig(Strict):
    """What one role sees of one product: the rows its filter admits, its columns masked."""

    product: str = Field(pattern=PRODUCT_PATTERN)
    role: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    row_filter: str | None = None
    masks: dict[str, MaskConfig] = Field(default_factory=dict)
    # Where two of a caller's roles mask one column differently, the higher priority wins.
    priority: int = 0

    @property
    def name(self) -> str:
        return f"{self.product}/{self.role}"


class MeshPolicyConfig(Strict):
    """A mesh-wide rule on classified columns; domains cannot weaken it (applied last)."""

    name: str = Field(pattern=r"^[a-z_][a-z0-9_-]*$")
    description: str = ""
    classification: str
    mask: MaskConfig
    exempt_roles: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # only products carrying one of these tags; empty: every product


HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = frozenset({"ES256", "ES384", "ES512"})
JWT_ALGORITHMS = HMAC_ALGORITHMS | RSA_ALGORITHMS | EC_ALGORITHMS


class JwtConfig(Strict):
    """Bearer tokens from an identity provider: who signs them, for whom, and which claims count.

    One key source and one algorithm family: a deployment that accepts HS256 and RS256 at once
    is how an RSA public key ends up verifying an HMAC signature (algorithm confusion).
    """

    issuer: str = Field(min_length=1)
    audience: str = Field(min_length=1)
    algorithms: tuple[str, ...] = ("RS256",)
    key: str | None = None  # an HMAC secret or a PEM public key, always from ${ENV}
    key_file: str | None = None  # a PEM public key or certificate
    jwks_file: str | None = None  # a JSON Web Key Set as the identity provider publishes it
    user_claim: str = Field(default="sub", min_length=1)
    roles_claim: str | None = "roles"
    attribute_claims: dict[str, str] = Field(default_factory=dict)  # attribute -> claim
    leeway_seconds: int = Field(default=0, ge=0, le=300)

    @field_validator("algorithms")
    @classmethod
    def _known_algorithms(cls, algorithms: tuple[str, ...]) -> tuple[str, ...]:
        if not algorithms:
            raise ValueError("list at least one signing algorithm, e.g. [RS256]")
        for name in algorithms:
            if name.lower() == "none":
                raise ValueError("'none' is never accepted: every token must be signed")
            if name not in JWT_ALGORITHMS:
                raise ValueError(
                    f"unsupported algorithm {name!r}; "
                    f"use one of {', '.join(sorted(JWT_ALGORITHMS))}"
                )
        families = [f for f in (HMAC_ALGORITHMS, RSA_ALGORITHMS, EC_ALGORITHMS)
                    if f & set(algorithms)]
        if len(families) > 1:
            raise ValueError(
                "list algorithms of one family only (HS*, RS*/PS* or ES*): mixing them lets "
                "one kind of key verify another kind of signature"
            )
        return algorithms

    @model_validator(mode="after")
    def _one_key_source(self) -> JwtConfig:
        given = [k for k in ("key", "key_file", "jwks_file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of `key`, `key_file` or `jwks_file` "
                f"(given: {', '.join(given) or 'none'})"
            )
        if set(self.algorithms) <= HMAC_ALGORITHMS and self.key is None:
            raise ValueError(
                "an HS* secret is read only from the environment: set `key: \"${VARIABLE}\"`"
            )
        return self


class AuditConfig(Strict):
    """Where audit records go besides the `meshgate.audit` logger, and how many stay queryable."""

    file: str | None = None  # JSON lines; relative to the config directory
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)  # rotate at this size
    backups: int = Field(default=5, ge=0, le=100)  # rotated files kept
    history: int = Field(default=1000, ge=0, le=1_000_000)  # records in meshgate.query_history


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = 8815
    # How long a bearer token from a password sign-in stays valid.
    token_ttl_seconds: int = Field(default=3600, gt=0)
    strict_pushdown: bool = False
    # Callers holding one of these roles see physical plans, every query's history and audit.
    admin_roles: tuple[str, ...] = ("admin",)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    jwt: JwtConfig | None = None


class ConfigFile(Strict):
    """One YAML file; a deployment is the union of every file in its config directory."""

    mesh: MeshConfig | None = None
    server: ServerConfig | None = None
    sources: tuple[SourceConfig, ...] = ()
    domains: tuple[DomainConfig, ...] = ()
    products: tuple[ProductConfig, ...] = ()
    users: tuple[UserConfig, ...] = ()
    roles: tuple[RoleConfig, ...] = ()
    policies: tuple[PolicyConfig, ...] = ()
    mesh_policies: tuple[MeshPolicyConfig, ...] = ()
