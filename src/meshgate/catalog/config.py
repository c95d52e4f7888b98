"""Typed models of the configuration files; validation errors name the file and the path."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

NAME_PATTERN = r"^[a-z_][a-z0-9_]*$"


class Strict(BaseModel):
    """Unknown keys are errors: a typo must not silently drop a policy or a grant."""

    # Field docstrings become descriptions in the JSON Schema and the config reference.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class MeshConfig(Strict):
    """The mesh itself: its catalog name, declared in exactly one file."""

    name: str = Field(pattern=NAME_PATTERN)
    """The catalog name clients see."""
    description: str = ""
    """What this mesh holds, shown by `meshgate catalog`."""
    hash_key: str | None = None
    """Secret of the keyed `hash` mask (HMAC-SHA256); from `${ENV}`, never inline."""


class SourceConfig(Strict):
    """A database or file location products read from, through one connector."""

    name: str = Field(pattern=NAME_PATTERN)
    """How products refer to this source (`table: {source: <name>}`)."""
    kind: str
    """Connector kind: duckdb, sqlite, files, postgres or an installed plugin."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Connector options (path, dsn, format, ...); `${ENV}` references are substituted."""
    description: str = ""


class DomainConfig(Strict):
    """A team's namespace of data products, with the team that owns it."""

    name: str = Field(pattern=NAME_PATTERN)
    """Schema name of the domain's products (`<domain>.<product>`)."""
    owner: str
    """Who answers for the domain's data, e.g. a team's mail address."""
    description: str = ""


class ColumnConfig(Strict):
    """One column of a data product, as clients see it."""

    name: str = Field(pattern=NAME_PATTERN)
    """Column name as clients see it."""
    type: str
    """SQL type in DuckDB spelling, e.g. BIGINT, VARCHAR, DECIMAL(12,2), TIMESTAMPTZ."""
    description: str = ""
    classification: str | None = None
    """A label such as `pii` that mesh policies match."""
    nullable: bool = True
    """Whether the column may hold NULL."""


class TableMapping(Strict):
    """A product read straight from one source table; `columns` maps product -> source names."""

    source: str
    """A source declared under `sources:`."""
    table: str
    """The table's name at the source."""
    schema_: str | None = Field(default=None, alias="schema")
    """The table's schema at the source, where it has schemas."""
    columns: dict[str, str] = Field(default_factory=dict)
    """Product column -> source column, for columns whose names differ."""


# MAJOR.MINOR.PATCH with an optional pre-release and build, as semver.org defines them.
SEMANTIC_VERSION = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
)


class ProductConfig(Strict):
    """A data product: columns clients query, read from one table or defined by SQL."""

    @field_validator("version")
    @classmethod
    def _semantic(cls, value: str) -> str:
        if not SEMANTIC_VERSION.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a semantic version: write MAJOR.MINOR.PATCH, e.g. "
                '`version: "1.0.0"`'
            )
        return value

    domain: str
    """A domain declared under `domains:`."""
    name: str = Field(pattern=NAME_PATTERN)
    """Product name; clients query `<domain>.<name>`."""
    description: str = ""
    owner: str | None = None
    """Defaults to the domain's owner."""
    version: str = "1.0.0"
    """The contract's semantic version, MAJOR.MINOR.PATCH: `meshgate check --against` asks a
    major bump for a breaking change, a minor one for a compatible schema change."""
    tags: tuple[str, ...] = ()
    """A list, e.g. `[orders, revenue]`; mesh policies may select products by tag."""
    columns: tuple[ColumnConfig, ...]
    """The product's columns, in order."""
    primary_key: tuple[str, ...] = ()
    """Declared key columns let the planner push joins that cannot multiply rows."""
    table: TableMapping | None = None
    """Read straight from one source table (exclusive with `query`)."""
    query: str | None = None
    """SQL over other products (exclusive with `table`)."""

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
    """A user who signs in with user name and password."""

    name: str = Field(pattern=NAME_PATTERN)
    """The user name to sign in with."""
    password_hash: str
    """An scrypt hash made by `meshgate hash-password`; never a plain password."""
    roles: tuple[str, ...] = ()
    """Roles declared under `roles:`."""
    attributes: dict[str, str] = Field(default_factory=dict)
    """Attributes row filters read with `user_attribute('<name>')`."""

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


Grant = Annotated[
    str,
    AfterValidator(_grant_form),
    WithJsonSchema({"type": "string", "pattern": GRANT_PATTERN.pattern}),
]


class RoleConfig(Strict):
    """A role: the products its members may read."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = ""
    grants: tuple[Grant, ...] = ()
    """What the role may read: `'*'`, `'<domain>.*'` or `'<domain>.<product>'`."""


PRODUCT_PATTERN = r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$"


class ExpressionMask(Strict):
    """A mask written as SQL over the product's columns; cast back to the column's type."""

    expression: str
    """SQL over the product's columns."""


BUILTIN_MASKS = ("null", "redact", "last4", "hash", "email_domain",
                 "truncate_date(day|month|year)")  # fmt: skip
# A built-in mask name (BUILTIN_MASKS) or an expression.
MaskConfig = str | ExpressionMask


class PolicyConfig(Strict):
    """What one role sees of one product: the rows its filter admits, its columns masked."""

    product: str = Field(pattern=PRODUCT_PATTERN)
    """`<domain>.<product>` the policy applies to."""
    role: str = Field(pattern=NAME_PATTERN)
    """The role whose members the policy applies to."""
    description: str = ""
    row_filter: str | None = None
    """A boolean SQL condition; the role sees only rows it admits."""
    masks: dict[str, MaskConfig] = Field(default_factory=dict)
    """Column -> a built-in mask name or `{expression: <SQL>}`."""
    priority: int = 0
    """Where two of a caller's roles mask one column differently, the higher priority wins."""

    @property
    def name(self) -> str:
        return f"{self.product}/{self.role}"


class MeshPolicyConfig(Strict):
    """A mesh-wide rule on classified columns; domains cannot weaken it (applied last)."""

    name: str = Field(pattern=r"^[a-z_][a-z0-9_-]*$")
    description: str = ""
    classification: str
    """Columns carrying this classification are masked."""
    mask: MaskConfig
    """A built-in mask name."""
    exempt_roles: tuple[str, ...] = ()
    """Roles that see the columns unmasked."""
    tags: tuple[str, ...] = ()
    """Only products carrying one of these tags; empty: every product."""


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
    """The `iss` claim tokens must carry."""
    audience: str = Field(min_length=1)
    """The `aud` claim tokens must carry."""
    algorithms: tuple[str, ...] = ("RS256",)
    """Accepted signing algorithms, of one family (HS*, RS*/PS* or ES*)."""
    key: str | None = None
    """An HMAC secret or a PEM public key, always from `${ENV}`."""
    key_file: str | None = None
    """A PEM public key or certificate (relative to the config directory)."""
    jwks_file: str | None = None
    """A JSON Web Key Set as the identity provider publishes it."""
    user_claim: str = Field(default="sub", min_length=1)
    """The claim naming the user."""
    roles_claim: str | None = "roles"
    """The claim listing the user's roles."""
    attribute_claims: dict[str, str] = Field(default_factory=dict)
    """Attribute -> claim it is read from."""
    leeway_seconds: int = Field(default=0, ge=0, le=300)
    """Clock skew tolerated on `exp` and `nbf`."""

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

    file: str | None = None
    """JSON lines file; relative to the config directory."""
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    """Rotate the file at this size."""
    backups: int = Field(default=5, ge=0, le=100)
    """Rotated files kept."""
    history: int = Field(default=1000, ge=0, le=1_000_000)
    """Records kept queryable in meshgate.query_history."""


class LoginConfig(Strict):
    """Back-off after failed password sign-ins, per user name and per client address."""

    max_failures: int = Field(default=10, gt=0)
    """Failed sign-ins within `window_seconds` after which the user name is locked out."""
    max_failures_per_client: int = Field(default=50, gt=0)
    """Failed sign-ins within `window_seconds`, whatever the user names, after which the
    client address is locked out (where the front end knows it: the PostgreSQL door)."""
    window_seconds: int = Field(default=60, gt=0)
    """How far back failed sign-ins are counted (seconds, more than 0)."""
    lockout_seconds: int = Field(default=30, gt=0)
    """How long sign-ins are refused, unchecked, once locked out (seconds, more than 0)."""


class LimitsConfig(Strict):
    """What one query and one caller may use; past a limit the query fails with
    RESOURCE_EXHAUSTED (or INVALID_ARGUMENT for SQL text) naming the limit, never a short
    result. A session may lower the result limits for itself, never raise them."""

    max_result_rows: int | None = Field(default=None, gt=0)
    """Most rows one query may return (unset: no limit); past it the stream ends with an
    error telling to add a LIMIT."""
    max_result_bytes: int | None = Field(default=None, gt=0)
    """Most bytes (Arrow size) one query may return (unset: no limit)."""
    max_concurrent_queries: int | None = Field(default=64, gt=0)
    """Queries running at once on this server, counted from their start until their stream is
    read or closed (unset: no limit)."""
    max_concurrent_queries_per_user: int | None = Field(default=16, gt=0)
    """Queries one principal may run at once (unset: no limit)."""
    queue_timeout_seconds: float = Field(default=5.0, ge=0)
    """How long a query past a concurrency limit waits for a slot before it is refused."""
    merge_memory_limit: str | None = "2GB"
    """Memory the DuckDB merge may use across its queries (DuckDB's `memory_limit`, e.g.
    "2GB", "500MB"); beyond it DuckDB spills to `server.state_directory`, and a query that
    still does not fit fails with RESOURCE_EXHAUSTED. Unset: DuckDB's default (80% of RAM)."""
    max_sql_length: int = Field(default=1_000_000, gt=0)
    """Longest SQL text accepted, in characters."""
    max_expression_depth: int = Field(default=150, gt=0, le=400)
    """Deepest nesting of the parsed query (parentheses, subqueries, operator chains); at
    most 400, beyond which the parser itself would run out of stack."""
    max_in_list: int = Field(default=1_000, gt=0)
    """Most values in one IN (...) list (planning copies the list many times: 2,000 values
    took 5 s to plan on a loaded test machine)."""
    max_boolean_terms: int = Field(default=64, gt=0)
    """Most conditions joined by one chain of AND or OR (the optimiser's work grows with the
    cube of it); a long chain of `x = 1 OR x = 2 ...` is written `x IN (1, 2, ...)`."""

    @field_validator("merge_memory_limit")
    @classmethod
    def _memory_size(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)",
                                                  value.strip(), flags=re.IGNORECASE):
            raise ValueError(f"{value!r} is not a memory size; write e.g. \"2GB\" or \"500MB\"")
        return value


class ServerConfig(Strict):
    """The Flight SQL server: where it listens, tokens, audit and identity provider."""

    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 8815
    """Port to listen on."""
    postgres_port: int | None = Field(default=None, ge=0, le=65535)
    """Also serve PostgreSQL's wire protocol (psql, psycopg, BI tools) on this port of `host`;
    off when unset. No TLS yet: it accepts only clients on the same machine (loopback)."""
    token_ttl_seconds: int = Field(default=3600, gt=0)
    """How long a bearer token from a password sign-in stays valid (seconds, more than 0)."""
    ticket_ttl_seconds: int = Field(default=300, gt=0)
    """How long a ticket from GetFlightInfo waits for its DoGet (seconds, more than 0)."""
    prepared_statement_ttl_seconds: int = Field(default=3600, gt=0)
    """How long a prepared statement stays open after its last use (seconds, more than 0)."""
    max_open_handles: int = Field(default=100, gt=0)
    """Tickets waiting for DoGet, and prepared statements, per principal (each); past it the
    least recently used one is dropped."""
    strict_pushdown: bool = False
    """Refuse queries the sources cannot run whole."""
    query_timeout_seconds: float | None = Field(default=None, gt=0)
    """Longest a query may run, from its start to its last row (seconds, more than 0; unset:
    no limit). Past it the query ends with DEADLINE_EXCEEDED and stops at every source; a
    client's shorter gRPC deadline still wins."""
    admin_roles: tuple[str, ...] = ("admin",)
    """Callers holding one of these roles see physical plans, every query's history and audit."""
    audit: AuditConfig = Field(default_factory=AuditConfig)
    login: LoginConfig = Field(default_factory=LoginConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    state_directory: str | None = None
    """Where the server keeps scratch files (the merge's spill files, one folder per process,
    removed at shutdown and, for dead processes, at the next start); relative to the config
    directory. Unset: `meshgate` in the system temp directory (never the config directory,
    whose changes a reload watches)."""
    jwt: JwtConfig | None = None
    """Accept bearer tokens from an identity provider."""


class ConfigFile(Strict):
    """One YAML file; a deployment is the union of every file in its config directory."""

    mesh: MeshConfig | None = None
    """Exactly one file declares it."""
    server: ServerConfig | None = None
    sources: tuple[SourceConfig, ...] = ()
    domains: tuple[DomainConfig, ...] = ()
    products: tuple[ProductConfig, ...] = ()
    users: tuple[UserConfig, ...] = ()
    roles: tuple[RoleConfig, ...] = ()
    policies: tuple[PolicyConfig, ...] = ()
    mesh_policies: tuple[MeshPolicyConfig, ...] = ()
