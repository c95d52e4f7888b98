"""The one orchestration path: parse -> gate -> bind -> secure -> rewrite -> plan -> execute.

The Flight server, the CLI and the tests all go through `QueryService`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from meshgate.catalog.catalog import Catalog, CatalogView
from meshgate.catalog.loader import MeshDefinition, load_mesh
from meshgate.errors import MeshgateError, ParameterError
from meshgate.execution.run import ExecutionReport, execute_plan
from meshgate.execution.stream import cast_batches
from meshgate.planner.cache import PlanCache
from meshgate.planner.explain import explain_table
from meshgate.planner.federate import Planner
from meshgate.planner.plan import FederatedPlan
from meshgate.policy.policies import PolicySet
from meshgate.policy.relation import secure
from meshgate.principal import Principal
from meshgate.query.model import BoundQuery, Statement
from meshgate.registry import create_connector, installed_kinds
from meshgate.rewrite.barrier import rewrite
from meshgate.spi import Connector, ConnectorContext
from meshgate.sql.bind import bind
from meshgate.sql.parameters import bind_parameters
from meshgate.sql.parse import parse_statement

audit_log = logging.getLogger("meshgate.audit")

@dataclass(frozen=True)
class QueryOptions:
    """Per-session settings a front end passes with each statement."""

    default_domain: str | None = None  # unqualified product names resolve in this domain
    strict: bool | None = None  # strict pushdown; None: the deployment's `server` setting


# A plan with the products it reads and the policies it applies.
_Planned = tuple[FederatedPlan, tuple[str, ...], tuple[str, ...]]


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


class QueryService:
    """Serves queries for every front end; thread-safe, one instance per deployment."""

    def __init__(self, definition: MeshDefinition, connectors: Mapping[str, Connector]) -> None:
        self.definition = definition
        self.catalog = Catalog(definition)
        self.policies = PolicySet(self.catalog)
        self._source_kinds = {name: s.kind for name, s in definition.sources.items()}
        self.connectors = dict(connectors)
        self._plans: PlanCache[_Planned] = PlanCache()

    @classmethod
    def from_config(cls, directory: Path) -> QueryService:
        definition = load_mesh(directory, known_source_kinds=installed_kinds())
        connectors = {
            name: create_connector(
                source.kind, ConnectorContext(name, source.options, definition.directory)
            )
            for name, source in definition.sources.items()
        }
        return cls(definition, connectors)

    # --- who and what -------------------------------------------------------------------
    def authenticate(self, user: str, password: str) -> Principal:
        return self.catalog.directory.authenticate(user, password)

    def principal(self, user: str) -> Principal:
        """A principal by name, for trusted in-process callers (CLI, tests)."""
        return self.catalog.directory.principal(user)

    def view(self, principal: Principal) -> CatalogView:
        return self.catalog.view(principal)

    # --- queries ------------------------------------------------------------------------
    def prepare(
        self,
        sql: str,
        principal: Principal,
        *,
        default_domain: str | None = None,
        strict: bool | None = None,
    ) -> PreparedQuery:
        """Parse, gate, bind, secure, rewrite and plan; nothing runs at a source yet."""
        statement = parse_statement(sql)
        strict_mode = self.definition.server.strict_pushdown if strict is None else strict
        key = (
            statement.sql, principal.name, principal.roles,
            tuple(sorted(principal.attributes.items())), default_domain, strict_mode,
        )  # fmt: skip
        cached = self._plans.get(key)
        if cached is None:
            cached = self._plan(statement, principal, default_domain, strict_mode, None)
            self._plans.put(key, cached)
        plan, products, policies = cached
        if statement.explain:
            admin = self.catalog.is_admin(principal)
            table = explain_table(plan, self.connectors, self._source_kinds, admin=admin)
            return PreparedQuery(
                sql,
                principal,
                table.schema,
                statement.parameter_count,
                products,
                table,
                statement,
                default_domain,
                strict_mode,
                policies,
            )
        return PreparedQuery(
            sql,
            principal,
            plan.schema,
            statement.parameter_count,
            products,
            plan,
            statement,
            default_domain,
            strict_mode,
            policies,
        )

    def execute(
        self,
        prepared: PreparedQuery,
        parameters: Sequence[Any] = (),
        report: ExecutionReport | None = None,
    ) -> pa.RecordBatchReader:
        """Run a prepared query; the reader streams, and closing it cancels the sources.

        `report`, when given, is filled with what each fragment sent and received.
        """
        plan = prepared.plan
        if isinstance(plan, pa.Table):
            return plan.to_reader()
        if prepared.parameter_count:
            plan, _, _ = self._plan(
                prepared.statement,
                prepared.principal,
                prepared.default_domain,
                prepared.strict,
                parameters,
            )
            if not plan.schema.equals(prepared.schema):
                raise ParameterError(
                    "the parameter values give the result other column types than the prepared "
                    "statement announced (a parameter used as a value has no type of its own); "
                    "cast each such parameter to the type you mean, e.g. CAST(? AS VARCHAR)"
                )
        report = report if report is not None else ExecutionReport()
        reader = execute_plan(plan, self.connectors, report)
        return _audited(reader, prepared, report, prepared.schema)

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

    def close(self) -> None:
        for connector in self.connectors.values():
            connector.close()

    def _plan(
        self,
        statement: Statement,
        principal: Principal,
        default_domain: str | None,
        strict: bool,
        parameters: Sequence[Any] | None,
    ) -> _Planned:
        view = self.catalog.view(principal)
        tree = bind_parameters(statement.tree, parameters if statement.parameter_count else ())
        bound = bind(tree, view, principal, default_domain)
        # Product definitions run with their owner's rights (like a Trino view): they may
        # read products the caller cannot name directly; `current_user` is still the caller.
        all_products = CatalogView(self.catalog, principal, self.catalog.products)

        def bind_definition(sql: str) -> BoundQuery:
            return bind(parse_statement(sql).tree, all_products, principal)

        secured = secure(bound, bind_definition, principal, self.policies)
        rewritten = rewrite(secured)
        planner = Planner(
            self.connectors,
            secured.tables,
            secured.local_tables,
            strict=strict,
            barriers=rewritten.barriers,
        )
        plan = planner.plan(rewritten.tree)
        return plan, tuple(p.qualified_name for p in bound.products), secured.policies


def _audited(
    reader: pa.RecordBatchReader,
    prepared: PreparedQuery,
    report: ExecutionReport,
    schema: pa.Schema,
) -> pa.RecordBatchReader:
    def batches() -> Iterator[pa.RecordBatch]:
        started = time.monotonic()
        rows = 0
        nbytes = 0
        outcome = "ok"
        try:
            for batch in cast_batches(iter(reader), schema):
                rows += batch.num_rows
                nbytes += batch.nbytes
                yield batch
        except MeshgateError as exc:
            outcome = f"error: {exc.status.value}"
            raise
        except GeneratorExit:
            outcome = "cancelled"
            raise
        finally:
            reader.close()
            audit_log.info(
                json.dumps(
                    {
                        "user": prepared.principal.name,
                        "sql": prepared.sql,
                        "products": list(prepared.products),
                        "fragments": [
                            {"source": f.source, "sql": f.sql, "rows": f.rows}
                            for f in report.fragments.values()
                        ],
                        "rows": rows,
                        "bytes": nbytes,
                        "outcome": outcome,
                        "seconds": round(time.monotonic() - started, 6),
                    }
                )
            )

    return pa.RecordBatchReader.from_batches(schema, batches())
