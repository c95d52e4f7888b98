"""The one orchestration path: parse -> gate -> bind -> secure -> rewrite -> plan -> execute.

The Flight server, the CLI and the tests all go through `QueryService`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlglot import exp
from sqlglot.tokenizer_core import Token

from meshgate.audit import (
    AuditRecord,
    AuditTrail,
    SourceCall,
    audited_stream,
    failure_record,
    new_query_id,
    now,
)
from meshgate.catalog.catalog import (
    Catalog,
    CatalogView,
    DataProduct,
    MaskedColumns,
    QueryHistory,
)
from meshgate.catalog.deprecation import deprecated_products, deprecation_warning
from meshgate.catalog.lineage import mesh_lineage
from meshgate.catalog.loader import MeshDefinition, load_mesh
from meshgate.catalog.usage import recorded_uses
from meshgate.errors import (
    AuthenticationFailed,
    ConfigError,
    ParameterError,
    ResourceExhausted,
    SqlTooLarge,
    StatementOutdated,
)
from meshgate.execution.admission import ConcurrencyLimits, QuerySlots, holding
from meshgate.execution.engine import DuckDBEngine, ResidualEngine
from meshgate.execution.limits import ResultLimits, limited
from meshgate.execution.residual_choice import choose_residual, residual_mode
from meshgate.execution.run import ExecutionReport, execute_plan
from meshgate.execution.spark import SparkEngine
from meshgate.metrics import QueryMetrics
from meshgate.planner.cache import PlanCache, PlanKey
from meshgate.planner.explain import explain_table
from meshgate.planner.federate import Planner
from meshgate.planner.plan import FederatedPlan
from meshgate.planner.schema import LocalFileReader
from meshgate.policy.policies import PolicySet, policy_problems
from meshgate.policy.relation import secure
from meshgate.principal import INVALID_CREDENTIALS, LoginBackoff, Principal, ScramVerifier
from meshgate.quality.store import QualityStore, state_directory
from meshgate.query.literals import numbered_placeholders, type_name, value_type
from meshgate.query.model import BoundQuery, CatalogCommand, SecuredQuery, Statement
from meshgate.registry import create_connector, installed_kinds
from meshgate.rewrite.barrier import rewrite
from meshgate.rewrite.parameter_types import parameter_schema, planned_types
from meshgate.rewrite.subqueries import Decorrelation, decorrelation_for
from meshgate.run_events import RunEvents
from meshgate.spi import CancelToken, Connector, ConnectorContext, QueryContext, ScanSlice
from meshgate.spi.parameters import parameter_position, without_placeholders
from meshgate.sql.bind import bind
from meshgate.sql.catalog_commands import catalog_query
from meshgate.sql.input_limits import SqlLimits, check_text, check_tree
from meshgate.sql.output_names import output_names
from meshgate.sql.parse import forget_positions, parse_request, parse_statement
from meshgate.sql.shapes import (
    binds_as_literal,
    bound_values,
    shape_key,
    shaped,
    statement_tokens,
    unshaped_key,
)
from meshgate.sqlconnector.connector import SqlConnector

log = logging.getLogger("meshgate.service")


def load_definition(directory: Path) -> MeshDefinition:
    """A config directory validated in one pass: its files, their cross-references and the
    policies, every problem in one report."""
    return load_mesh(directory, known_source_kinds=installed_kinds(), checks=(policy_problems,))


def connect_source(definition: MeshDefinition, name: str) -> Connector:
    """The connector of the source `name` of `definition`."""
    source = definition.sources[name]
    return create_connector(source.kind,
                            ConnectorContext(name, source.options, definition.directory))


@dataclass(frozen=True)
class QueryOptions:
    """Per-session settings a front end passes with each statement."""

    default_domain: str | None = None  # unqualified product names resolve in this domain
    strict: bool | None = None  # strict pushdown; None: the deployment's `server` setting
    client: str | None = None  # the caller's network address, for the audit record
    limits: ResultLimits | None = None  # the session's own (lower) result limits and timeout
    # The residual engine (`auto`, `duckdb`, `spark`); None: `server.residual.default`.
    residual_engine: str | None = None


@dataclass(frozen=True)
class _Planned:
    """A plan with the products it reads and the policies it applies, and the statement it
    was made for (a shape's, its literals as parameters: `sql.shapes`)."""

    plan: FederatedPlan
    products: tuple[str, ...]
    policies: tuple[str, ...]
    statement: Statement
    # Each parameter's type as planned (None: a NULL), read by a shape's text values.
    parameter_types: tuple[exp.DataType | None, ...] = ()
    # Whether every parameter went down to a source: where one stays in the merge, its
    # literal might have gone down (a source that takes literals but not parameters).
    pushes_parameters: bool = True


@dataclass(frozen=True)
class PreparedQuery:
    """A planned query: its exact wire schema is known before anything runs at a source."""

    sql: str
    principal: Principal
    schema: pa.Schema
    parameter_count: int
    products: tuple[str, ...]
    plan: FederatedPlan | pa.Table  # a table for EXPLAIN
    statement: Statement
    default_domain: str | None
    strict: bool
    policies: tuple[str, ...] = ()  # names of the policies applied, for audit and EXPLAIN
    client: str | None = None  # the caller's network address, for the audit record
    # One field per parameter, typed by its use (rewrite/parameter_types.py).
    parameter_schema: pa.Schema = field(default_factory=lambda: pa.schema([]))
    deprecated: tuple[str, ...] = ()  # the deprecated products it reads
    warnings: tuple[str, ...] = ()  # what the caller is told (deprecated products)
    generation: int = 0  # the configuration it was planned under (`QueryService.reconfigure`)
    limits: ResultLimits | None = None  # the session's own (lower) result limits and timeout
    # The values of the text's literals that its shape plan binds, before the client's.
    literals: tuple[Any, ...] = ()
    residual_engine: str | None = None  # as asked (session option, header); None: the default


class QueryService:
    """Serves queries for every front end; thread-safe, one instance per deployment."""

    def __init__(
        self,
        definition: MeshDefinition,
        connectors: Mapping[str, Connector],
        engine: ResidualEngine | None = None,
    ) -> None:
        self._adopt(definition, connectors)
        self.generation = 0
        audit = definition.server.audit
        lineage = definition.server.openlineage
        self.run_events = None if lineage is None else RunEvents.from_config(
            lineage, definition.mesh.name, definition.directory)  # fmt: skip
        self.audit = AuditTrail(
            history=audit.history,
            file=definition.directory / audit.file if audit.file is not None else None,
            max_bytes=audit.max_bytes,
            backups=audit.backups,
        )
        if self.run_events is not None:
            self.audit.listeners.append(self.run_events.record)
        self.metrics = QueryMetrics()
        self.audit.listeners.append(self.metrics.observe)
        self.metrics.watch_pools(lambda: {n: c.pool_usage() for n, c in self.connectors.items()})
        # Runs every plan's residual (and says what it returns, for the planner).
        limits = definition.server.limits
        # The files sources' folders are the only ones it reads (their tables, inlined);
        # a reload's new folders are read through fragments until the next start.
        readable = [d for c in connectors.values() for d in c.local_directories()]
        self.engine: ResidualEngine = engine if engine is not None else DuckDBEngine(
            limits.merge_memory_limit, state_directory(definition), readable)
        # The distributed residual engine, when `server.residual.spark` is set (read at start).
        self.residual = definition.server.residual
        spark = self.residual.spark
        self.spark_engine: SparkEngine | None = None if spark is None else SparkEngine(
            spark.remote, definition.directory / spark.staging_directory, self.engine)
        self.slots = QuerySlots(ConcurrencyLimits(
            limits.max_concurrent_queries, limits.max_concurrent_queries_per_user,
            limits.queue_timeout_seconds))
        # Quality results (meshgate check --quality, scheduled checks), read by meshgate.products.
        self.quality_store = QualityStore.for_definition(definition)
        login = definition.server.login
        self._login_backoff = LoginBackoff(
            login.max_failures, login.window_seconds, login.lockout_seconds,
            max_failures_per_client=login.max_failures_per_client)

    def _adopt(self, definition: MeshDefinition, connectors: Mapping[str, Connector]) -> None:
        self.definition = definition
        self.catalog = Catalog(definition)
        self.policies = PolicySet(self.catalog)
        mesh_lineage(self.catalog)  # traced once per definition; meshgate.lineage reads it
        self._source_kinds = {name: s.kind for name, s in definition.sources.items()}
        self.connectors = dict(connectors)
        self._decorrelation = decorrelation_for(self.connectors)
        self.forget_plans()
        limits = definition.server.limits  # SQL and result limits follow a reload
        self._sql_limits = SqlLimits(limits.max_sql_length, limits.max_expression_depth,
                                     limits.max_in_list, limits.max_boolean_terms)
        self._result_limits = ResultLimits(limits.max_result_rows, limits.max_result_bytes,
                                           definition.server.query_timeout_seconds)

    def reconfigure(self, definition: MeshDefinition, connectors: Mapping[str, Connector]) -> None:
        """Serve `definition` (a reload, `meshgate.server.lifecycle`) from the next call on.

        Grants, policies and products change for every later prepare; plans made before are
        dropped, and a prepared statement or ticket of an older generation is planned again
        when executed. Streams already running finish under the definition they started
        with. Audit, login back-off and metrics carry over.
        """
        self._adopt(definition, connectors)
        self.generation += 1
        self.note_served_versions()

    def note_served_versions(self) -> None:
        """Keep each product's version in the state store (the catalog page's version
        history); `meshgate serve` calls it at start and after each reload. A store that
        cannot be written costs the history, never the serving."""
        versions = {p.qualified_name: p.version for p in self.catalog.products.values()}
        try:
            self.quality_store.record_versions(versions)
        except ConfigError as exc:
            log.warning("product versions not recorded: %s", exc.message)

    @classmethod
    def from_config(cls, directory: Path) -> QueryService:
        definition = load_definition(directory)
        connectors = {name: connect_source(definition, name) for name in definition.sources}
        return cls(definition, connectors)

    # --- who and what -------------------------------------------------------------------
    def authenticate(self, user: str, password: str, client: str | None = None) -> Principal:
        try:
            self._login_backoff.check(user, client)
            try:
                principal = self.catalog.directory.authenticate(user, password)
            except AuthenticationFailed:
                self._login_backoff.failed(user, client)
                raise
            self._login_backoff.succeeded(user, client)
            return principal
        except AuthenticationFailed as exc:
            self._audit_failure(now(), user, (), client, "", exc, outcome="login_failed")
            raise

    def scram_verifier(self, user: str, client: str | None = None) -> ScramVerifier:
        """The first half of a SCRAM-SHA-256 sign-in (PostgreSQL's wire): the verifier whose
        salt and iterations go to the client, a decoy for a user without one; raises, before
        any exchange, while the login back-off locks the user or address out."""
        try:
            self._login_backoff.check(user, client)
        except AuthenticationFailed as exc:
            self._audit_failure(now(), user, (), client, "", exc, outcome="login_failed")
            raise
        return self.catalog.directory.scram_verifier(user)[0]

    def scram_signed_in(self, user: str, proven: bool, client: str | None = None) -> Principal:
        """The second half: the principal when the client's proof held against the user's own
        verifier; otherwise the same refusal, back-off count and audit as a wrong password."""
        try:
            if not (proven and self.catalog.directory.scram_verifier(user)[1]):
                self._login_backoff.failed(user, client)
                raise AuthenticationFailed(INVALID_CREDENTIALS)
            self._login_backoff.succeeded(user, client)
            return self.catalog.directory.principal(user)
        except AuthenticationFailed as exc:
            self._audit_failure(now(), user, (), client, "", exc, outcome="login_failed")
            raise

    def authenticate_token(self, token: str, client: str | None = None) -> Principal:
        """The principal of an identity provider's bearer token (JWT), if one is configured."""
        try:
            provider = self.catalog.identity_provider
            if provider is None:
                raise AuthenticationFailed(
                    "this server accepts no identity-provider tokens; sign in with user and "
                    "password"
                )
            return provider.authenticate(token)
        except AuthenticationFailed as exc:
            self._audit_failure(now(), "(bearer token)", (), client, "", exc,
                                outcome="login_failed")  # fmt: skip
            raise

    def current_principal(self, principal: Principal) -> Principal:
        """A password user's principal as the serving configuration defines them: a reload
        may have changed their roles or attributes, or removed them (then the sign-in is
        no longer valid)."""
        try:
            return self.catalog.directory.principal(principal.name)
        except AuthenticationFailed:
            raise AuthenticationFailed(
                "the bearer token is unknown or expired; authenticate again with user and "
                "password"
            ) from None

    def principal(self, user: str) -> Principal:
        """A principal by name, for trusted in-process callers (CLI, tests)."""
        return self.catalog.directory.principal(user)

    def view(self, principal: Principal) -> CatalogView:
        return self.catalog.view(principal, self._masked_for(principal),
                                 self._history_for(principal), self.quality_store,
                                 lambda p: self.policies.for_caller(p, principal).restricts,
                                 lambda: recorded_uses(self.audit))  # fmt: skip

    def _history_for(self, principal: Principal) -> QueryHistory:
        own = None if self.catalog.is_admin(principal) else principal.name
        return lambda: self.audit.records(own)

    def _masked_for(self, principal: Principal) -> MaskedColumns:
        def masked(product: DataProduct) -> frozenset[str]:
            return frozenset(self.policies.for_caller(product, principal).masks)

        return masked

    # --- queries ------------------------------------------------------------------------
    def prepare(
        self,
        sql: str,
        principal: Principal,
        *,
        default_domain: str | None = None,
        strict: bool | None = None,
        client: str | None = None,
        limits: ResultLimits | None = None,
        residual_engine: str | None = None,
    ) -> PreparedQuery:
        """Parse, gate, bind, secure, rewrite and plan; nothing runs at a source yet.

        A refusal (bad SQL, a forbidden statement, an unknown or denied product) is audited.
        `limits` are the session's own result limits and timeout, which may only lower the
        configured ones. `residual_engine` (`auto`, `duckdb`, `spark`) overrides
        `server.residual.default` (`residual_choice`).
        """
        arrived = now()
        try:
            residual = residual_mode(self.residual, residual_engine)
            generation = self.generation
            prepared = self._prepare(sql, principal, default_domain, strict, residual)
            if generation != self.generation:  # reloaded meanwhile: plan on one definition
                generation = self.generation
                prepared = self._prepare(sql, principal, default_domain, strict, residual)
        except Exception as exc:
            self._audit_failure(arrived, principal.name, tuple(sorted(principal.roles)),
                                client, sql, exc)  # fmt: skip
            raise
        return self._with_deprecations(replace(prepared, client=client, generation=generation,
                                               limits=limits, residual_engine=residual_engine))

    def _with_deprecations(self, prepared: PreparedQuery) -> PreparedQuery:
        """`prepared` knowing the deprecated products it reads and what its caller is told."""
        deprecated = deprecated_products(self.catalog, prepared.products)
        if not deprecated:
            return prepared
        view = self.view(prepared.principal)
        return replace(prepared, deprecated=tuple(p.qualified_name for p in deprecated),
                       warnings=tuple(deprecation_warning(p, view) for p in deprecated))

    def _audit_failure(
        self,
        arrived: str,
        user: str,
        roles: tuple[str, ...],
        client: str | None,
        sql: str,
        error: Exception,
        outcome: str | None = None,
    ) -> None:
        self._count_limit(error)
        self.audit.write(failure_record(arrived, user, roles, client, sql, error, outcome))

    def _count_limit(self, error: BaseException) -> None:
        """`meshgate_limit_rejections_total`: which of `server.limits` refused a query."""
        if isinstance(error, ResourceExhausted):
            self.metrics.limit_rejected(error.limit)
        elif isinstance(error, SqlTooLarge):
            self.metrics.limit_rejected("sql_size")

    def _counting_limits(self, reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
        """`reader`, counting a result limit that ends it mid-stream."""
        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except ResourceExhausted as exc:
                self._count_limit(exc)
                raise
            finally:
                reader.close()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def _prepare(
        self,
        sql: str,
        principal: Principal,
        default_domain: str | None,
        strict: bool | None,
        residual: str,
    ) -> PreparedQuery:
        check_text(sql, self._sql_limits)
        strict_mode = self.definition.server.strict_pushdown if strict is None else strict
        tokens = statement_tokens(sql)
        if tokens is not None:
            known = self._known_shape(sql, tokens, principal, default_domain, strict_mode,
                                      residual)
            if known is not None:
                return known
        request = parse_request(sql, lambda tree: check_tree(tree, self._sql_limits))
        if isinstance(request, CatalogCommand):
            # DESCRIBE / SHOW: the query over information_schema that answers it.
            tree = catalog_query(request, self.view(principal), default_domain)
            request = Statement(tree=tree, explain=False, parameter_count=0, sql=sql)
            tokens = None  # planned for this caller's catalog as it is now, by its text
        statement = request
        if statement.explain or tokens is None:
            planned = self._planned(statement, principal, default_domain, strict_mode, None,
                                    residual=residual)
            if not statement.explain:
                return self._prepared(sql, principal, planned, default_domain, strict_mode)
            admin = self.catalog.is_admin(principal)
            table = explain_table(planned.plan, self.connectors, self._source_kinds,
                                  admin=admin)  # fmt: skip
            return PreparedQuery(sql, principal, table.schema, statement.parameter_count,
                                 planned.products, table, statement, default_domain,
                                 strict_mode, planned.policies)  # fmt: skip
        # The first text of a shape is planned with its literals, as fast as it gets; the
        # second (its values differ) plans the shape, which every later one reuses.
        unshaped = unshaped_key(tokens)
        seen = self._shapes.find(unshaped) is not None
        shape = shaped(statement, tokens) if seen else None
        if shape is not None:
            types = tuple(value_type(value) for value in shape.values)
            planned = self._planned(shape.statement, principal, default_domain, strict_mode,
                                    types, shape_key(tokens, shape.parameters),
                                    residual)  # fmt: skip
            if _binds(planned, shape.values):
                self._shapes.put(unshaped, shape.parameters)
                return self._prepared(sql, principal, planned, default_domain, strict_mode,
                                      shape.values)  # fmt: skip
        elif not seen:
            self._shapes.put(unshaped, frozenset())
        planned = self._planned(statement, principal, default_domain, strict_mode, None,
                                shape_key(tokens, frozenset()), residual)  # fmt: skip
        return self._prepared(sql, principal, planned, default_domain, strict_mode)

    def _known_shape(
        self,
        sql: str,
        tokens: Sequence[Token],
        principal: Principal,
        default_domain: str | None,
        strict: bool,
        residual: str,
    ) -> PreparedQuery | None:
        """The prepared query from the cached plan of the text's shape, if there is one: no
        parsing, no planning, only the text's values bound (`sql.shapes`)."""
        parameters = self._shapes.find(unshaped_key(tokens))
        values = None if parameters is None else bound_values(tokens, parameters)
        if parameters is None or values is None:
            return None
        types = tuple(value_type(value) for value in values) if parameters else None
        key = self._plan_key(shape_key(tokens, parameters), principal, default_domain, strict,
                             types, residual)  # fmt: skip
        planned = self._plans.find(key)
        if planned is None or not _binds(planned, values):
            return None
        self.metrics.plan_lookup(hit=True)
        return self._prepared(sql, principal, planned, default_domain, strict, values)

    def _prepared(
        self,
        sql: str,
        principal: Principal,
        planned: _Planned,
        default_domain: str | None,
        strict: bool,
        literals: tuple[Any, ...] = (),
    ) -> PreparedQuery:
        statement = planned.statement
        parameters = statement.parameter_count - len(literals)  # the client's to bind
        prepared = PreparedQuery(sql, principal, planned.plan.schema, parameters,
                                 planned.products, planned.plan, statement, default_domain,
                                 strict, planned.policies, literals=literals)  # fmt: skip
        if not parameters:
            return prepared
        return replace(prepared, parameter_schema=self._parameter_schema(
            statement, principal, default_domain))

    def _parameter_schema(self, statement: Statement, principal: Principal,
                          default_domain: str | None) -> pa.Schema:
        """The announced parameter types, cached like plans (inferring costs a bind)."""
        key = (statement.sql, principal.name, principal.roles,
               tuple(sorted(principal.attributes.items())), default_domain)
        cached = self._parameter_schemas.get(key)
        if cached is None:
            _, secured = self._secured(numbered_placeholders(statement.tree), principal,
                                       default_domain)
            cached = parameter_schema(secured, statement.parameter_count)
            self._parameter_schemas.put(key, cached)
        return cached

    def execute(
        self,
        prepared: PreparedQuery,
        parameters: Sequence[Any] = (),
        report: ExecutionReport | None = None,
        *,
        cancel: CancelToken | None = None,
        deadline: float | None = None,
        part: ScanSlice | None = None,
    ) -> pa.RecordBatchReader:
        """Run a prepared query; the reader streams, and closing it cancels the sources.

        `report`, when given, is filled with what each fragment sent and received. `cancel`
        is the front end's token for this run (a client's cancel sets it) and `deadline` a
        `time.monotonic()` instant after which the run fails with QueryTimeout; both go into
        the run's QueryContext, the one way anything stops a query early. `part` is the slice
        of the one fragment's scan this run reads (a result split into several endpoints).
        """
        prepared = self.up_to_date(prepared)
        arrived = now()
        plan = prepared.plan
        report = report if report is not None else ExecutionReport()
        if isinstance(plan, pa.Table):
            return self._audited(plan.to_reader(), prepared, report, arrived, new_query_id())
        limits = self._result_limits.lowered(prepared.limits)
        deadline = self._deadline(deadline, limits.timeout_seconds)
        context = QueryContext(new_query_id(), prepared.principal.name, deadline=deadline,
                               cancel=cancel if cancel is not None else CancelToken(),
                               parameters=prepared.literals + tuple(parameters),
                               slice=part)  # fmt: skip
        try:
            slot = self.slots.admit(prepared.principal.name)
            try:
                reader = self._counting_limits(
                    holding(limited(self._start(prepared, context, report), limits), slot))
            except BaseException:
                slot.release()
                raise
        except Exception as exc:
            self._audit_failure(arrived, prepared.principal.name,
                                tuple(sorted(prepared.principal.roles)), prepared.client,
                                prepared.sql, exc)  # fmt: skip
            raise
        return self._audited(reader, prepared, report, arrived, context.query_id)

    def up_to_date(self, prepared: PreparedQuery) -> PreparedQuery:
        """`prepared`, planned again if the configuration was reloaded since; refused if
        its result columns are no longer those its client was told."""
        if prepared.generation == self.generation:
            return prepared
        again = self.prepare(prepared.sql, prepared.principal,
                             default_domain=prepared.default_domain, strict=prepared.strict,
                             client=prepared.client, limits=prepared.limits,
                             residual_engine=prepared.residual_engine)  # fmt: skip
        if not again.schema.equals(prepared.schema):
            error = StatementOutdated(
                "the server's configuration was reloaded since this statement was prepared, "
                "and its result columns changed; prepare the statement again"
            )
            self._audit_failure(now(), prepared.principal.name,
                                tuple(sorted(prepared.principal.roles)), prepared.client,
                                prepared.sql, error)  # fmt: skip
            raise error
        return again

    def _deadline(self, given: float | None, timeout: float | None) -> float | None:
        """The earlier of the front end's deadline and the query timeout in force."""
        if timeout is None:
            return given
        limit = time.monotonic() + timeout
        return limit if given is None else min(given, limit)

    def _start(
        self, prepared: PreparedQuery, context: QueryContext, report: ExecutionReport
    ) -> pa.RecordBatchReader:
        """The plan (the cached one for its parameters' types) started at its sources."""
        plan = prepared.plan
        assert not isinstance(plan, pa.Table)
        if prepared.parameter_count:
            plan = self._planned(
                prepared.statement,
                prepared.principal,
                prepared.default_domain,
                prepared.strict,
                parameter_types(prepared.statement, context.parameters),
                residual=residual_mode(self.residual, prepared.residual_engine),
            ).plan
            if not plan.schema.equals(prepared.schema):
                raise ParameterError(
                    "the parameter values give the result other column types than the "
                    "prepared statement announced (a parameter used as a value has no type "
                    "of its own); cast each such parameter to the type you mean, e.g. "
                    "CAST(? AS VARCHAR)"
                )
        engine = self.engine
        if plan.engine == "spark" and self.spark_engine is not None:
            engine = self.spark_engine
        return execute_plan(plan, self.connectors, engine, context, report)

    def _audited(
        self,
        reader: pa.RecordBatchReader,
        prepared: PreparedQuery,
        report: ExecutionReport,
        arrived: str,
        query_id: str,
    ) -> pa.RecordBatchReader:
        """`reader` (already of the planned schema: execution casts), audited when it ends."""
        opened = AuditRecord(
            arrived, query_id, prepared.principal.name, tuple(sorted(prepared.principal.roles)),
            prepared.client, prepared.sql, "ok", products=prepared.products,
            policies=prepared.policies, deprecated=prepared.deprecated,
        )  # fmt: skip
        for warning in prepared.warnings:
            log.warning("query %s by %s: %s", query_id, prepared.principal.name, warning)

        def sources() -> tuple[SourceCall, ...]:
            runs = report.fragments.values()
            called = tuple(SourceCall(f.source, f.sql, f.rows, f.bytes) for f in runs)
            return called + _merge_reads(prepared.plan)

        return self.metrics.running(audited_stream(reader, self.audit, opened, sources))

    def query(
        self, sql: str, principal: Principal, parameters: Sequence[Any] = (), **options: Any
    ) -> pa.Table:
        """Prepare, execute and collect (CLI and tests)."""
        prepared = self.prepare(sql, principal, **options)
        return self.execute(prepared, parameters).read_all()

    def explain(self, sql: str, principal: Principal, **options: Any) -> pa.Table:
        sql_text = sql.strip()
        if not sql_text.lower().startswith("explain"):
            sql_text = f"EXPLAIN {sql_text}"
        prepared = self.prepare(sql_text, principal, **options)
        assert isinstance(prepared.plan, pa.Table)
        return prepared.plan

    def forget_plans(self) -> None:
        """Drop every cached plan, shape and parameter schema: a new configuration's plans
        start afresh (benchmarks call it to measure cold planning)."""
        self._plans: PlanCache[_Planned] = PlanCache()
        # A text's tokens, literals left out -> which literals its shape takes as parameters.
        self._shapes: PlanCache[frozenset[int]] = PlanCache(capacity=4096)
        self._parameter_schemas: PlanCache[pa.Schema] = PlanCache()
        # What the merge engine remembers of a text: a cold plan must not find it either.
        engine = getattr(self, "engine", None)  # unset yet when __init__ calls this
        if isinstance(engine, DuckDBEngine):
            engine.forget_descriptions()
        for connector in self.connectors.values():
            if isinstance(connector, SqlConnector):
                connector.forget_estimates()

    def close(self) -> None:
        for connector in self.connectors.values():
            connector.close()
        self.engine.close()
        if self.run_events is not None:
            self.run_events.close()

    def _planned(
        self,
        statement: Statement,
        principal: Principal,
        default_domain: str | None,
        strict: bool,
        types: tuple[exp.DataType | None, ...] | None,
        text: Hashable = None,
        residual: str = "duckdb",
    ) -> _Planned:
        """The cached plan for everything a plan depends on, or a new one.

        `types` are the bound parameters' types (None: describe only, parameters as NULL):
        a prepared statement executed with new values of the same types reuses its plan.
        `text` names the statement in the key: its shape's tokens (`sql.shapes.shape_key`),
        or else its SQL text.
        """
        key = self._plan_key(statement.sql if text is None else text, principal,
                             default_domain, strict, types, residual)  # fmt: skip
        plans = self._plans  # a reload meanwhile must not file this plan in the new cache
        cached = plans.get(key)
        self.metrics.plan_lookup(hit=cached is not None)
        if cached is None:
            cached = self._plan(statement, principal, default_domain, strict, types, residual)
            if not _reads_live_tables(cached.plan):
                plans.put(key, cached)
        return cached

    @staticmethod
    def _plan_key(
        text: Hashable,
        principal: Principal,
        default_domain: str | None,
        strict: bool,
        types: tuple[exp.DataType | None, ...] | None,
        residual: str,
    ) -> PlanKey:
        """Everything a plan depends on besides the configuration (fixed per cache)."""
        return (
            text, principal.name, principal.roles,
            tuple(sorted(principal.attributes.items())), default_domain, strict, residual,
            None if types is None else tuple("NULL" if t is None else type_name(t) for t in types),
        )  # fmt: skip

    def _plan(
        self,
        statement: Statement,
        principal: Principal,
        default_domain: str | None,
        strict: bool,
        types: tuple[exp.DataType | None, ...] | None,
        residual: str,
    ) -> _Planned:
        if types is None:  # describe only: a parameter is a NULL of no type
            tree = without_placeholders(statement.tree)
            assert isinstance(tree, exp.Query)
        else:
            tree = numbered_placeholders(statement.tree)
        forget_positions(tree)  # our copy: later copies need not copy them
        bound, secured = self._secured(tree, principal, default_domain)
        rewritten = rewrite(secured, types or (), self._decorrelation_for(strict))

        def plan_on(engine: ResidualEngine) -> FederatedPlan:
            planner = Planner(self.connectors, secured.tables, secured.local_tables,
                              engine=engine, strict=strict, barriers=rewritten.barriers)
            return planner.plan(rewritten.tree)  # the planner works on its own copy

        plan = named(choose_residual(plan_on, residual, self.engine, self.spark_engine,
                                     self.residual, self.connectors), statement)
        count = len(types or ())
        return _Planned(plan, tuple(p.qualified_name for p in bound.products),
                        secured.policies, statement, planned_types(rewritten, count),
                        _pushed_parameters(plan) >= set(range(count)))  # fmt: skip

    def _decorrelation_for(self, strict: bool) -> Decorrelation:
        """Which subqueries become joins (rewrite/subqueries.py), knowing which sources the
        merge reads itself: none under strict pushdown (it never inlines a merge scan) or
        with Spark configured (whose merge reads only fragments)."""
        if strict or self.spark_engine is not None or not isinstance(self.engine, LocalFileReader):
            return self._decorrelation
        engine = self.engine
        merge_reads = frozenset(
            name for name, c in self.connectors.items()
            if c.local_directories() and engine.can_read(c.local_directories())
        )  # fmt: skip
        return decorrelation_for(self.connectors, merge_reads)

    def _secured(self, tree: exp.Query, principal: Principal,
                 default_domain: str | None) -> tuple[BoundQuery, SecuredQuery]:
        """`tree` bound to the caller's products, and with their policies applied."""
        bound = bind(tree, self.view(principal), principal, default_domain)
        # Product definitions run with their owner's rights (like a Trino view): they may
        # read products the caller cannot name directly; `current_user` is still the caller.
        all_products = CatalogView(self.catalog, principal, self.catalog.products)

        def bind_definition(sql: str) -> BoundQuery:
            tree = forget_positions(parse_statement(sql).tree)
            assert isinstance(tree, exp.Query)
            return bind(tree, all_products, principal)

        return bound, secure(bound, bind_definition, principal, self.policies)


def named(plan: FederatedPlan, statement: Statement) -> FederatedPlan:
    """`plan` returning its columns under the names DuckDB gives the statement as written."""
    names = output_names(statement.sql, plan.schema.names)
    if list(names) == plan.schema.names:
        return plan
    schema = pa.schema([f.with_name(n) for f, n in zip(plan.schema, names, strict=True)],
                       metadata=plan.schema.metadata)  # fmt: skip
    return replace(plan, schema=schema)


def parameter_types(
    statement: Statement, values: Sequence[Any]
) -> tuple[exp.DataType | None, ...]:
    """The type of each bound value, after checking there is one value per parameter."""
    if len(values) != statement.parameter_count:
        raise ParameterError(
            f"the statement has {statement.parameter_count} parameter(s) but {len(values)} "
            "value(s) were bound"
        )
    return tuple(value_type(value) for value in values)


def _binds(planned: _Planned, literals: Sequence[Any]) -> bool:
    """Whether a shape's plan gives each of a text's literal values the literal's meaning,
    and sends each to a source as the literal would have gone."""
    if not literals:
        return True
    types = planned.parameter_types
    return planned.pushes_parameters and all(
        binds_as_literal(v, t) for v, t in zip(literals, types, strict=False))


def _pushed_parameters(plan: FederatedPlan) -> set[int]:
    """The client positions of the parameters some fragment of `plan` sends to its source."""
    found = {parameter_position(node) for f in plan.fragments
             for node in f.handle.select.find_all(exp.Placeholder) if node.name.isdigit()}
    for stage in plan.stages:
        found |= _pushed_parameters(stage.plan)
    return found


def _reads_live_tables(plan: FederatedPlan) -> bool:
    """A plan over the query history, quality results or usage holds a snapshot: never reuse
    one."""
    tables = set(plan.local_tables)
    for stage in plan.stages:
        tables |= set(stage.plan.local_tables)
    live = ("query_history", "system_products", "quality_results", "system_usage")
    return any(name.endswith(live) for name in tables)


def _merge_reads(plan: FederatedPlan | pa.Table) -> tuple[SourceCall, ...]:
    """The files the merge read itself, its policy stages' included: a source the audit must
    name although no fragment ran there."""
    if not isinstance(plan, FederatedPlan):
        return ()
    reads = tuple(SourceCall(s.source, s.sql, None, None, read_by="merge")
                  for s in plan.merge_scans)  # fmt: skip
    return reads + tuple(r for stage in plan.stages for r in _merge_reads(stage.plan))
