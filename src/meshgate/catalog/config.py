"""Typed models of the configuration files; validation errors name the file and the path."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

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
PRODUCT_PATTERN = r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$"


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


# A duration: a whole number and a unit, s(econds), m(inutes), h(ours) or d(ays).
DURATION = re.compile(r"([1-9][0-9]*)(s|m|h|d)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """`30m` -> 1800; the caller has validated `text` with `_duration_form`."""
    match = DURATION.fullmatch(text)
    assert match is not None, text
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _duration_form(text: str) -> str:
    if not DURATION.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a duration: write a whole number and a unit, s, m, h or d, "
            "e.g. 30m, 1h or 2d"
        )
    return text


Duration = Annotated[
    str,
    AfterValidator(_duration_form),
    WithJsonSchema({"type": "string", "pattern": DURATION.pattern}),
]


class AcceptedValuesConfig(Strict):
    """The values a column may hold (NULL is left to `not_null`)."""

    column: str
    """The column checked."""
    values: tuple[str | int | float | bool, ...] = Field(min_length=1)
    """The allowed values, e.g. `[open, closed]`."""


class RangeConfig(Strict):
    """Bounds, inclusive, a column's values stay within (NULL is left to `not_null`)."""

    column: str
    """The column checked."""
    min: int | float | str | None = None
    """Lowest allowed value; a number, or text such as a date for date columns."""
    max: int | float | str | None = None
    """Highest allowed value."""

    @model_validator(mode="after")
    def _bounded(self) -> RangeConfig:
        if self.min is None and self.max is None:
            raise ValueError("give `min`, `max` or both")
        return self


class RowCountConfig(Strict):
    """Bounds, inclusive, of the product's row count."""

    min: int | None = Field(default=None, ge=0)
    """Fewest rows allowed."""
    max: int | None = Field(default=None, ge=0)
    """Most rows allowed."""

    @model_validator(mode="after")
    def _ordered(self) -> RowCountConfig:
        if self.min is None and self.max is None:
            raise ValueError("give `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}")
        return self


class SqlCheckConfig(Strict):
    """A custom check: a query over products returning one number, the count of bad rows."""

    name: str = Field(pattern=NAME_PATTERN)
    """Names the check in results."""
    query: str
    """e.g. `SELECT count(*) FROM sales.orders WHERE amount < 0`; 0 passes."""


class FreshnessConfig(Strict):
    """A freshness SLO: the newest value of a timestamp column is at most `max_age` old."""

    column: str
    """A TIMESTAMP, TIMESTAMPTZ or DATE column; timestamps without a zone are read as UTC."""
    max_age: Duration
    """e.g. 30m, 1h, 2d."""


class ExpectationConfig(Strict):
    """One quality expectation of a product: exactly one of its keys."""

    not_null: str | None = None
    """A column that must hold no NULL."""
    unique: str | tuple[str, ...] | None = None
    """A column, or a list of columns, whose (non-NULL) values appear once."""
    accepted_values: AcceptedValuesConfig | None = None
    """`{column: status, values: [open, closed]}`."""
    range: RangeConfig | None = None
    """`{column: amount, min: 0, max: 10000}`."""
    row_count: RowCountConfig | None = None
    """`{min: 1, max: 1000000}`."""
    sql: SqlCheckConfig | None = None
    """`{name: no_negative, query: "SELECT count(*) FROM sales.orders WHERE amount < 0"}`."""
    freshness: FreshnessConfig | None = None
    """`{column: updated_at, max_age: 1h}`: the newest row is at most an hour old."""

    @model_validator(mode="after")
    def _one_kind(self) -> ExpectationConfig:
        given = [k for k in type(self).model_fields if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "an expectation is exactly one of not_null, unique, accepted_values, range, "
                f"row_count, sql or freshness (given: {', '.join(given) or 'none'})"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in type(self).model_fields if getattr(self, k) is not None)

    @property
    def name(self) -> str:
        """How results name it: `not_null(email)`, `unique(a, b)`, `row_count`, `sql(<name>)`."""
        if self.sql is not None:
            return f"sql({self.sql.name})"
        columns = self.columns()
        return f"{self.kind}({', '.join(columns)})" if columns else self.kind

    def columns(self) -> tuple[str, ...]:
        """The product columns the expectation names."""
        if self.not_null is not None:
            return (self.not_null,)
        if self.unique is not None:
            return (self.unique,) if isinstance(self.unique, str) else self.unique
        for spec in (self.accepted_values, self.range, self.freshness):
            if spec is not None:
                return (spec.column,)
        return ()
class DeprecationConfig(Strict):
    """A product on its way out: its queries still run, and their callers are told.

    Each query on it warns its caller (an `x-meshgate-warning` Flight SQL header and the server
    log) and its audit record lists it; meshgate.products shows the successor and the sunset.
    """

    sunset: dt.date
    """The day after which the product may be removed, ISO 8601 (`2027-01-31`)."""
    successor: str | None = Field(default=None, pattern=PRODUCT_PATTERN)
    """The product to move to, `<domain>.<product>`; it must be declared."""
    reason: str = ""
    """Why, in a sentence consumers read."""

    @field_validator("sunset", mode="before")
    @classmethod
    def _iso_date(cls, value: Any) -> Any:
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date | str):
            raise ValueError(f"{value!r} is not a date: write it as YYYY-MM-DD, e.g. 2027-01-31")
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a date: write it as YYYY-MM-DD, e.g. 2027-01-31"
                ) from None
        return value


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
    quality: tuple[ExpectationConfig, ...] = ()
    """Expectations `meshgate check --quality` runs, e.g. `[{not_null: id}, {freshness:
    {column: updated_at, max_age: 1h}}]`."""
    quality_schedule: Duration | None = None
    """Run this product's checks every so often in `meshgate serve` (overrides
    `server.quality_schedule`)."""
    deprecated: DeprecationConfig | None = None
    """Mark the product deprecated, e.g. `{successor: sales.orders_v2, sunset: 2027-01-31}`."""

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
        expectations = [e.name for e in self.quality]
        twice = sorted({n for n in expectations if expectations.count(n) > 1})
        if twice:
            raise ValueError(f"quality lists {twice} more than once; merge them into one")
        for index, expectation in enumerate(self.quality):
            unknown = [c for c in expectation.columns() if c not in names]
            if unknown:
                raise ValueError(f"quality[{index}] ({expectation.kind}) names undeclared "
                                 f"columns {unknown}; the product's columns are {names}")
            fresh = expectation.freshness
            kind = {c.name: c.type.strip().upper() for c in self.columns}
            if fresh is not None and not kind[fresh.column].startswith(("TIMESTAMP", "DATE")):
                raise ValueError(f"quality[{index}] (freshness): column {fresh.column} is "
                                 f"{kind[fresh.column]}; freshness needs a TIMESTAMP, "
                                 "TIMESTAMPTZ or DATE column")
        return self


class UserConfig(Strict):
    """A user who signs in with user name and password."""

    name: str = Field(pattern=NAME_PATTERN)
    """The user name to sign in with."""
    password_hash: str
    """A hash made by `meshgate hash-password`, never a plain password: scrypt (`scrypt$...`),
    or with `--scram` a SCRAM-SHA-256 verifier (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:
    <ServerKey>`, PostgreSQL's form), which PostgreSQL clients need to sign in on
    `server.postgres_port` with `postgres_auth: scram-sha-256`; both serve Flight SQL."""
    roles: tuple[str, ...] = ()
    """Roles declared under `roles:`."""
    attributes: dict[str, str] = Field(default_factory=dict)
    """Attributes row filters read with `user_attribute('<name>')`."""

    @field_validator("password_hash")
    @classmethod
    def _hashed(cls, value: str) -> str:
        if value.startswith("SCRAM-SHA-256$"):
            if not _SCRAM_VERIFIER.fullmatch(value):
                raise ValueError("a SCRAM-SHA-256 verifier reads SCRAM-SHA-256$<iterations>:"
                                 "<salt>$<StoredKey>:<ServerKey> (base64); make one with "
                                 "`meshgate hash-password --scram`")
            return value
        if not value.startswith("scrypt$"):
            raise ValueError(
                "must be a scrypt hash or a SCRAM-SHA-256 verifier, never a plain password; "
                "make one with `meshgate hash-password` (add --scram for PostgreSQL clients)"
            )
        return value


_B64 = r"[A-Za-z0-9+/]+={0,2}"
_SCRAM_VERIFIER = re.compile(rf"SCRAM-SHA-256\$\d+:{_B64}\${_B64}:{_B64}")


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


class OpenLineageConfig(Strict):
    """Where each query's OpenLineage run event goes: a JSON lines file or an HTTP endpoint
    (Marquez, or any OpenLineage consumer). Sent from a background thread after the query
    ends; a transport that fails or lags is logged, never felt by the query."""

    transport: Literal["file", "http"]
    """`file` appends one JSON event per line to `path`; `http` POSTs each event to `url`."""
    path: str | None = None
    """With `transport: file`: the file, relative to the config directory."""
    url: str | None = None
    """With `transport: http`: the consumer's base URL, e.g. `http://marquez:5000`."""
    endpoint: str = "api/v1/lineage"
    """With `transport: http`: the path events are POSTed to, below `url`."""
    timeout_seconds: float = Field(default=5.0, gt=0)
    """With `transport: http`: how long one POST may take (seconds, more than 0)."""
    namespace: str | None = None
    """Namespace of the jobs and of the datasets (products) read; the mesh name when unset."""
    queue_size: int = Field(default=1000, ge=1, le=1_000_000)
    """Events waiting to be sent; past it new events are dropped (and logged)."""

    @model_validator(mode="after")
    def _transport_target(self) -> OpenLineageConfig:
        needed = "path" if self.transport == "file" else "url"
        if getattr(self, needed) is None:
            raise ValueError(f"`transport: {self.transport}` needs `{needed}`")
        return self


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


class TlsConfig(Strict):
    """TLS for the Flight SQL port: the server's certificate, and optionally the CA whose client
    certificates it requires (mutual TLS)."""

    cert_file: str = Field(min_length=1)
    """The server's certificate chain (PEM), leaf first; relative to the config directory."""
    key_file: str = Field(min_length=1)
    """The private key of that certificate (PEM, unencrypted); relative to the config
    directory. Keep it readable by the server's user only."""
    client_ca_file: str | None = None
    """When set, clients must present a certificate signed by this CA (PEM): mutual TLS.
    Password or token sign-in is still required on top."""


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


class ReplicasConfig(Strict):
    """Several `meshgate serve` processes over one configuration, behind a load balancer.

    Each replica signs its bearer tokens, prepared-statement handles and tickets with the
    shared key, so any replica accepts what another issued, within its time-to-live. Session
    options and the cancelling of a running query stay with the replica that holds them.
    """

    signing_key: str = Field(min_length=32)
    """A random secret of at least 32 characters, the same on every replica, always from
    `${ENV}` (e.g. `openssl rand -base64 48`). Changing it signs everyone out."""
    locations: tuple[str, ...] = ()
    """The URIs clients reach each replica at (e.g. `grpc+tls://meshgate-1:8815`); a result
    split into several endpoints names them in turn, so clients fetch the parts from several
    replicas at once. Unset: every endpoint is fetched from the replica that answered."""


class ResultEndpointsConfig(Strict):
    """Into how many Flight endpoints a query's result may be split, for clients that fetch
    endpoints in parallel (ADBC, JDBC); a client asks with the session option or call header
    `result_endpoints`. Only plain SELECTs with an integer column are split; see README."""

    default: int = Field(default=1, ge=1)
    """Endpoints when the client does not ask; keep 1 unless every client reads every
    endpoint (flightsql-dbapi and many pyarrow scripts read only the first)."""
    max: int = Field(default=8, ge=1, le=64)
    """The most endpoints a client may ask for."""

    @model_validator(mode="after")
    def _default_within_max(self) -> ResultEndpointsConfig:
        if self.default > self.max:
            raise ValueError(f"`default` ({self.default}) is above `max` ({self.max})")
        return self


class SparkResidualConfig(Strict):
    """The Spark Connect server a query's residual may run on (the distributed residual
    engine): meshgate stages the fragments' post-policy rows as Parquet under
    `staging_directory`, Spark runs the residual over them and writes its result there."""

    remote: str = Field(pattern=r"^sc://[^/\s]+:[0-9]+/?$")
    """The Spark Connect address, `sc://host:port` (e.g. `sc://127.0.0.1:15002`)."""
    staging_directory: str
    """A directory meshgate and every Spark worker see at the same path (a shared file
    system, or a local folder for a one-machine cluster); each query uses its own folder in
    it, removed when the query ends. Relative to the config directory."""
    min_input_rows: int = Field(default=1_000_000, ge=0)
    """With `default: auto`, a query's residual runs on Spark when the planner estimates at
    least this many rows entering it (the sources' own estimates: PostgreSQL EXPLAIN, Parquet
    row counts); below, or when no estimate is known, on DuckDB."""


class ResidualConfig(Strict):
    """Which engine runs a query's residual (the merge of its fragments): the in-process
    DuckDB, or Spark over Spark Connect. A session option or call header `residual_engine`
    (`auto`, `duckdb`, `spark`) overrides `default` for a session or one call."""

    default: Literal["auto", "duckdb", "spark"] | None = None
    """`duckdb`, `spark`, or `auto` (Spark from `spark.min_input_rows` estimated input rows
    on); unset: `auto` when `spark` is set, else `duckdb`."""
    spark: SparkResidualConfig | None = None
    """The Spark Connect server; no distributed residual when unset. Read at start."""

    @model_validator(mode="after")
    def _spark_when_chosen(self) -> ResidualConfig:
        if self.default in ("auto", "spark") and self.spark is None:
            raise ValueError(f"`default: {self.default}` needs a `spark` section (remote, "
                             "staging_directory)")
        return self

    @property
    def mode(self) -> Literal["auto", "duckdb", "spark"]:
        """`default`, or what an unset `default` means."""
        if self.default is not None:
            return self.default
        return "auto" if self.spark is not None else "duckdb"


class ServerConfig(Strict):
    """The Flight SQL server: where it listens, tokens, audit and identity provider."""

    host: str = "127.0.0.1"
    """Address to listen on."""
    port: int = 8815
    """Port to listen on."""
    postgres_port: int | None = Field(default=None, ge=0, le=65535)
    """Also serve PostgreSQL's wire protocol (psql, psycopg, BI tools) on this port of `host`;
    off when unset. With `tls` set it offers TLS on it too (`sslmode=require` or
    `verify-full`), with the same certificate; plaintext only from the same machine (loopback)."""
    postgres_auth: Literal["scram-sha-256", "password"] = "scram-sha-256"
    """How PostgreSQL clients sign in on `postgres_port`: `scram-sha-256` (the default; the
    password never crosses the wire, and only users whose `password_hash` is a SCRAM verifier
    from `meshgate hash-password --scram` can sign in), or `password` (the password in clear
    text, inside TLS or from loopback; any hash). MD5 is not offered: it is deprecated by
    PostgreSQL and would need a hash of the user name and password kept unsalted."""
    http_port: int | None = Field(default=None, ge=0, le=65535)
    """Serve `/healthz`, `/readyz` and `/metrics` (Prometheus) over plain HTTP on this port of
    `host`, for operators and orchestrators; 0 picks a free port (the log says which); off
    when unset."""
    log_format: Literal["text", "json"] = "text"
    """How `meshgate serve` writes its log on stderr: `text` lines, or `json`, one object per
    line with `time`, `level`, `logger`, `message` and, for a query's lines, `query_id`."""
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    """On SIGTERM, how long running queries may take to finish before they are cancelled
    (seconds); new calls are refused from the start."""
    reload_poll_seconds: float | None = Field(default=2.0, gt=0)
    """How often the config directory is checked for changed files, which reload the
    configuration as SIGHUP does (seconds; unset: only SIGHUP reloads)."""
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
    openlineage: OpenLineageConfig | None = None
    """Emit one OpenLineage run event per query; off when unset."""
    login: LoginConfig = Field(default_factory=LoginConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    jwt: JwtConfig | None = None
    """Accept bearer tokens from an identity provider."""
    result_endpoints: ResultEndpointsConfig = Field(default_factory=ResultEndpointsConfig)
    residual: ResidualConfig = Field(default_factory=ResidualConfig)
    replicas: ReplicasConfig | None = None
    """Run as one of several replicas that accept each other's tokens, prepared statements and
    tickets; one process keeps them in memory when unset. Read at start (a reload keeps it)."""
    tls: TlsConfig | None = None
    """Serve Flight SQL over TLS (`grpc+tls://`); plaintext when unset. `meshgate serve
    --tls-cert/--tls-key` set it from the command line."""
    state_directory: str | None = None
    """Where meshgate keeps its state: quality results (`quality.sqlite`) and the merge's
    spill files (a folder per process, removed at shutdown and, for dead processes, at the
    next start); relative to the config directory; unset: `<config dir>/.meshgate-state`
    (a reload watches only the YAML files). Set it where the config directory is read-only."""
    quality_schedule: Duration | None = None
    """`meshgate serve` runs every product's quality checks this often (e.g. 1h); off when
    unset, unless a product sets its own `quality_schedule`."""


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
