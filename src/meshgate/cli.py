"""The `meshgate` command: serve, query, explain, check, catalog, contract, config, hash-password.

Every subcommand runs the same code paths as the server (config loader, catalog, QueryService),
so what the CLI accepts and rejects is what a Flight SQL client would see. Errors meshgate
expects print `error: <message>` and exit 2, without a traceback; the message carries the
error's operator-only detail, as the server log does, since the CLI runs where the config is.
Anything else is a meshgate bug: one `error: internal error (...)` line and exit 70.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import io
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from meshgate.catalog.catalog import (
    Catalog,
    CatalogView,
    DataProduct,
    QueryDefinition,
    TableDefinition,
)
from meshgate.catalog.config import RoleConfig, TlsConfig
from meshgate.catalog.contracts import contract_changes, version_problems
from meshgate.catalog.deprecation import visible_successor
from meshgate.catalog.loader import MeshDefinition
from meshgate.catalog.odcs import contract_yaml
from meshgate.catalog.problems import did_you_mean
from meshgate.catalog.reference import config_reference, schema_text
from meshgate.catalog.tls import TlsMaterial, tls_material
from meshgate.demo.generate import demo_config_dir, ensure_demo_data
from meshgate.errors import ConfigError, MeshgateError
from meshgate.principal import SCRAM_ITERATIONS, Principal, hash_password, scram_hash
from meshgate.registry import create_connector
from meshgate.service import QueryService, load_definition
from meshgate.spi import Connector, ConnectorContext, SourceColumn
from meshgate.types import sql_type_name, wire_type

DEFAULT_PORT = 8815
EXIT_PROBLEMS = 1
EXIT_ERROR = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE: meshgate failed, not the input


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `meshgate` console script; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except MeshgateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("meshgate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `meshgate query ... | head`: the reader left, which is not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        # A bug in meshgate, not the user's input: one line to quote in a bug report; the
        # traceback only on request.
        if os.environ.get("MESHGATE_TRACEBACK"):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"error: internal error ({type(exc).__name__}: {first}); this is a meshgate bug: "
              "please report it with the command you ran (MESHGATE_TRACEBACK=1 shows the "
              "traceback)", file=sys.stderr)  # fmt: skip
        return EXIT_INTERNAL


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshgate",
        description="A federated Arrow Flight SQL query engine over a data mesh.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def config_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--config", type=Path, metavar="DIR",
            help="directory of *.yaml config files (default: the bundled demo mesh)",
        )

    serve = commands.add_parser("serve", help="run the Flight SQL server")
    config_option(serve)
    serve.add_argument("--host", help="address to listen on (default: config, else 127.0.0.1)")
    serve.add_argument("--port", type=int, help=f"port (default: config, else {DEFAULT_PORT})")
    serve.add_argument("--tls-cert", metavar="PEM",
                       help="serve over TLS with this certificate chain (overrides server.tls)")
    serve.add_argument("--tls-key", metavar="PEM", help="the private key of --tls-cert")
    serve.add_argument("--tls-client-ca", metavar="PEM",
                       help="require client certificates signed by this CA (mutual TLS)")
    serve.set_defaults(command=run_serve)

    query = commands.add_parser("query", help="run one SQL query in-process and print a table")
    query.add_argument("sql", help="the SQL text, e.g. \"SELECT * FROM sales.orders LIMIT 5\"")
    query.add_argument("--user", required=True, help="run as this configured user")
    query.add_argument("--max-rows", type=int, default=50, metavar="N",
                       help="print at most N rows (the row count is always exact; default 50)")
    config_option(query)
    query.set_defaults(command=run_query)

    explain = commands.add_parser("explain", help="show how a query would be planned")
    explain.add_argument("sql", help="the SQL text")
    explain.add_argument("--user", required=True, help="plan as this configured user")
    config_option(explain)
    explain.set_defaults(command=run_explain)

    check = commands.add_parser(
        "check", help="validate the config, connect to every source and report drift"
    )
    config_option(check)
    check.add_argument(
        "--against", metavar="OLD",
        help="instead, compare each product's contract with OLD (a config directory, or a git "
             "revision of this one) and fail on a change its version does not bump for",
    )  # fmt: skip
    check.add_argument("--quality", action="store_true",
                       help="instead, run the products' quality expectations, record the "
                            "results and fail when one fails")
    check.add_argument("--product", metavar="DOMAIN.PRODUCT",
                       help="with --quality: check only this product")
    check.set_defaults(command=run_check)

    catalog = commands.add_parser("catalog", help="list domains and data products")
    config_option(catalog)
    catalog.add_argument("--user", help="list only what this user may read")
    catalog.add_argument("--columns", action="store_true", help="also list each product's columns")
    catalog.set_defaults(command=run_catalog)

    contract = commands.add_parser("contract", help="export a product's contract")
    contract_formats = contract.add_subparsers(required=True, metavar="HOW")
    export = contract_formats.add_parser(
        "export", help="print the product's contract as an Open Data Contract Standard (ODCS "
                       "v3) YAML document",
    )  # fmt: skip
    export.add_argument("product", help="the product, as <domain>.<product>")
    config_option(export)
    export.set_defaults(command=run_contract_export)

    config = commands.add_parser("config", help="print the config format: schema or reference")
    formats = config.add_subparsers(required=True, metavar="WHAT")
    formats.add_parser(
        "schema", help="the JSON Schema of a config file (for editors' YAML language server)"
    ).set_defaults(command=run_config_schema)
    formats.add_parser(
        "reference", help="the config reference page in Markdown (docs/config.md)"
    ).set_defaults(command=run_config_reference)

    hashing = commands.add_parser(
        "hash-password", help="read a password (prompt or stdin) and print its scrypt hash"
    )
    hashing.add_argument(
        "--scram", action="store_true",
        help="print a SCRAM-SHA-256 verifier instead, which PostgreSQL clients (psql, psycopg, "
             "BI tools) need to sign in on server.postgres_port; Flight SQL accepts both")
    hashing.add_argument(
        "--iterations", type=int, default=SCRAM_ITERATIONS, metavar="N",
        help=f"PBKDF2 rounds of a --scram verifier (default {SCRAM_ITERATIONS}, at least 4096)")
    hashing.set_defaults(command=run_hash_password)
    return parser


def config_directory(option: Path | None) -> Path:
    """The directory given with --config, else the demo mesh with its data generated."""
    if option is not None:
        return option
    return ensure_demo_data(demo_config_dir())


def load_config(option: Path | None) -> MeshDefinition:
    """Load and validate a config directory (files, references and policies) in one pass."""
    return load_definition(config_directory(option))


# --- serve ----------------------------------------------------------------------------------
def run_serve(args: argparse.Namespace) -> int:
    """Load and validate everything first, so a broken config never starts a server."""
    service = QueryService.from_config(config_directory(args.config))
    # The server pulls in gRPC machinery that no other subcommand needs.
    from meshgate.server import serve
    from meshgate.server.logs import configure_logging

    settings = service.definition.server
    # Operators read the server log: error details behind client-facing error ids (the
    # query's id), and one JSON audit line per query (logger `meshgate.audit`).
    configure_logging(settings.log_format)
    say = _announcer(settings.log_format)
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    tls = _tls(args, service.definition)
    scheme = "grpc+tls" if tls is not None else "grpc"
    say(f"meshgate: serving mesh {service.definition.mesh.name!r} on {scheme}://{host}:{port} "
        "(Ctrl-C or SIGTERM stops, SIGHUP reloads the configuration)")
    from meshgate.quality.schedule import QualitySchedule

    schedule = QualitySchedule(service)  # scheduled quality checks; off unless configured
    schedule.start()
    try:
        serve(service, host, port, tls)
    except pa.ArrowException as exc:
        raise MeshgateError(
            f"the Flight SQL server on {host}:{port} failed: {exc}; if the port is taken, "
            "stop the other server or choose another with --port"
        ) from None
    finally:
        schedule.stop()
        service.close()
    say("meshgate: stopped")
    return 0


def _tls(args: argparse.Namespace, definition: MeshDefinition) -> TlsMaterial | None:
    """`--tls-cert/--tls-key` (relative to the working directory) win over `server.tls`
    (relative to the config directory); either is checked before the server starts."""
    if args.tls_cert is None and args.tls_key is None:
        if args.tls_client_ca is not None:
            raise MeshgateError("--tls-client-ca needs --tls-cert and --tls-key as well")
        config = definition.server.tls
        return None if config is None else tls_material(config, definition.directory)
    if args.tls_cert is None or args.tls_key is None:
        raise MeshgateError("give both --tls-cert and --tls-key (the server's certificate "
                            "chain and its private key, PEM)")
    config = TlsConfig(cert_file=str(Path(args.tls_cert).resolve()),
                       key_file=str(Path(args.tls_key).resolve()),
                       client_ca_file=(str(Path(args.tls_client_ca).resolve())
                                       if args.tls_client_ca else None))
    return tls_material(config, Path.cwd())


def _announcer(log_format: str) -> Callable[[str], None]:
    """How `serve` tells that it started and stopped: a plain stderr line, or with JSON
    logs a log record, so that every line of stderr stays one JSON object."""
    if log_format == "json":
        return logging.getLogger("meshgate.serve").info
    return lambda message: print(message, file=sys.stderr, flush=True)


# --- query / explain ------------------------------------------------------------------------
def run_query(args: argparse.Namespace) -> int:
    service = QueryService.from_config(config_directory(args.config))
    try:
        principal = service.principal(args.user)
        prepared = service.prepare(args.sql, principal)
        reader = service.execute(prepared)
        shown, total = _head(reader, args.max_rows)
    finally:
        service.close()
    print(format_table(shown))
    more = f", first {shown.num_rows} shown" if total > shown.num_rows else ""
    print(f"({total} row{'' if total == 1 else 's'}{more})")
    return 0


def _head(reader: pa.RecordBatchReader, limit: int) -> tuple[pa.Table, int]:
    """The first `limit` rows and the exact total, without holding the whole result."""
    kept: list[pa.RecordBatch] = []
    total = 0
    for batch in reader:
        room = limit - sum(b.num_rows for b in kept)
        if room > 0:
            kept.append(batch.slice(0, room))
        total += batch.num_rows
    return pa.Table.from_batches(kept, schema=reader.schema), total


def run_explain(args: argparse.Namespace) -> int:
    service = QueryService.from_config(config_directory(args.config))
    try:
        plan = service.explain(args.sql, service.principal(args.user))
    finally:
        service.close()
    print(format_records(plan))
    return 0


# --- check ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """One line of the check report; `problem` lines make the exit code non-zero."""

    subject: str
    message: str
    problem: bool


def run_check(args: argparse.Namespace) -> int:
    if args.quality:
        if args.against is not None:
            raise MeshgateError("give --quality or --against, not both")
        return run_quality_check(config_directory(args.config), args.product)
    if args.product is not None:
        raise MeshgateError("--product goes with --quality")
    definition = load_config(args.config)
    if args.against is not None:
        return run_contract_check(definition, args.against)
    catalog = Catalog(definition)
    print(
        f"config {definition.directory}: mesh {definition.mesh.name!r}, "
        f"{len(definition.sources)} sources, {len(definition.domains)} domains, "
        f"{len(definition.products)} products, {len(definition.users)} users, "
        f"{len(definition.roles)} roles: valid"
    )
    findings = check_mesh(definition, catalog)
    for finding in findings:
        print(f"{finding.subject}: {finding.message}")
    problems = sum(f.problem for f in findings)
    print("ok" if not problems else f"{problems} problem{'s' if problems > 1 else ''} found")
    return EXIT_PROBLEMS if problems else 0


def run_quality_check(directory: Path, product: str | None) -> int:
    """`check --quality`: every expectation run as its product's owner, a table of results."""
    from meshgate.quality.report import quality_table
    from meshgate.quality.runner import checked_products, run_checks

    service = QueryService.from_config(directory)
    try:
        runs = run_checks(service, checked_products(service, product))
    finally:
        service.close()
    if not runs:
        print("no product declares quality expectations (`quality:` in its config)")
        return 0
    print(format_table(quality_table(runs)))
    failed = sum(r.result.outcome != "pass" for r in runs)
    print(f"{len(runs)} expectation{'' if len(runs) == 1 else 's'} checked, "
          + (f"{failed} failed" if failed else "all passed")
          + f"; results kept in {service.quality_store.path}")
    return EXIT_PROBLEMS if failed else 0


def run_contract_check(new: MeshDefinition, against: str) -> int:
    """`check --against`: the contract changes per product and the version bumps they need."""
    with _old_config(new.directory, against) as directory:
        old = load_definition(directory)
    changes = contract_changes(old, new)
    for change in changes:
        print(f"{change.product}: {change.impact.name.lower()}: {change.what}")
    problems = version_problems(old, new, changes)
    for problem in problems:
        print(f"{problem.product}: problem: {problem.message}")
    print(f"{len(changes)} contract change{'' if len(changes) == 1 else 's'} against {against}; "
          + ("versions ok" if not problems else
             f"{len(problems)} problem{'s' if len(problems) > 1 else ''} found"))  # fmt: skip
    return EXIT_PROBLEMS if problems else 0


@contextlib.contextmanager
def _old_config(directory: Path, against: str) -> Iterator[Path]:
    """OLD as a directory: itself, or this config directory as git revision OLD had it."""
    if Path(against).is_dir():
        yield Path(against)
        return

    def git(*argv: str) -> bytes:
        done = subprocess.run(
            ["git", "-C", str(directory), *argv], check=False, capture_output=True
        )
        if done.returncode != 0:
            raise ConfigError(
                f"--against {against!r} is neither a config directory nor a git revision of "
                f"{directory}: {done.stderr.decode(errors='replace').strip()}"
            )
        return done.stdout
    inside = git("rev-parse", "--show-prefix").decode().strip()  # "" at the repository's top
    with tempfile.TemporaryDirectory(prefix="meshgate-against-") as scratch:
        archive = git("archive", "--format=tar", f"{against}:{inside}" if inside else against)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            configs = [m for m in tar.getmembers()
                       if m.isfile() and m.name.endswith((".yaml", ".yml"))]  # fmt: skip
            tar.extractall(scratch, members=configs, filter="data")
        yield Path(scratch)


def check_mesh(definition: MeshDefinition, catalog: Catalog) -> list[Finding]:
    """Connect to every source, compare each mapped product with its source table, and plan
    each product defined by SQL."""
    findings: list[Finding] = []
    connectors: dict[str, Connector] = {}
    try:
        for name, source in sorted(definition.sources.items()):
            subject = f"source {name} ({source.kind})"
            try:
                connector = create_connector(
                    source.kind, ConnectorContext(name, source.options, definition.directory)
                )
                connector.check()
            except Exception as exc:  # a diagnostic reports every failure
                findings.append(Finding(subject, f"unreachable: {_reason(exc)}", True))
                continue
            connectors[name] = connector
            findings.append(Finding(subject, "reachable", False))
        planner = _definition_planner(definition, connectors)
        for key in sorted(catalog.products):
            product = catalog.products[key]
            if isinstance(product.definition, TableDefinition):
                findings.append(_check_product(product, connectors))
            else:
                findings.append(_check_query_product(product, planner))
    finally:
        for connector in connectors.values():
            connector.close()
    return findings


def _reason(exc: Exception) -> str:
    """A MeshgateError's text with its operator detail; anything else is a connector bug,
    named as such."""
    if isinstance(exc, MeshgateError):
        return str(exc)
    return f"connector failed with {type(exc).__name__}: {exc}"


CHECK_ROLE = "_meshgate_check"


def _definition_planner(
    definition: MeshDefinition, connectors: dict[str, Connector]
) -> QueryService | None:
    """A service in which a check-only role reads every product; None if a source is down."""
    if set(connectors) != set(definition.sources):
        return None
    roles = {**definition.roles, CHECK_ROLE: RoleConfig(name=CHECK_ROLE, grants=("*",))}
    return QueryService(replace(definition, roles=roles), connectors)


def _check_query_product(product: DataProduct, planner: QueryService | None) -> Finding:
    """Plan `SELECT *` over the product: its SQL parses, binds and reaches every source."""
    subject = f"product {product.qualified_name}"
    if planner is None:
        return Finding(subject, "not checked: it needs every source, and one is unreachable",
                       True)
    principal = Principal(CHECK_ROLE, frozenset({CHECK_ROLE}))
    assert isinstance(product.definition, QueryDefinition)
    try:
        planner.prepare(f'SELECT * FROM "{product.domain}"."{product.name}"', principal)
        # The definition as written: the products it names, deprecated ones among them.
        read = planner.prepare(product.definition.sql, principal)
    except MeshgateError as exc:
        return Finding(subject, f"its SQL definition does not plan: {exc}", True)
    warnings = "".join(f"; it reads a deprecated product: {w}" for w in read.warnings)
    return Finding(subject, f"SQL definition plans over the declared products{warnings}", False)


def _check_product(product: DataProduct, connectors: dict[str, Connector]) -> Finding:
    subject = f"product {product.qualified_name}"
    definition = product.definition
    assert isinstance(definition, TableDefinition)
    connector = connectors.get(definition.source)
    if connector is None:
        return Finding(subject, f"not checked: source {definition.source} is unreachable", True)
    where = f"{definition.source}.{definition.table.qualified()}"
    try:
        actual = connector.table_columns(definition.table)
    except Exception as exc:  # a diagnostic reports every failure
        return Finding(subject, f"table {where} cannot be read: {_reason(exc)}", True)
    drift = list(column_drift(product, definition, actual))
    if not drift:
        return Finding(subject, f"matches {where}", False)
    return Finding(subject, f"drift against {where}:\n  " + "\n  ".join(drift), True)


def column_drift(
    product: DataProduct, definition: TableDefinition, actual: Sequence[SourceColumn]
) -> Iterable[str]:
    """Declared columns missing at the source, or whose source type differs on the wire."""
    by_name = {c.name: c for c in actual}
    by_folded = {c.name.casefold(): c for c in actual}
    for column, source_name in zip(product.columns, definition.source_columns, strict=True):
        found = by_name.get(source_name) or by_folded.get(source_name.casefold())
        label = column.name if column.name == source_name else f"{column.name} (<- {source_name})"
        if found is None:
            yield f"column {label}: missing at the source (source has: " \
                  f"{', '.join(c.name for c in actual)})"
            continue
        source_type = wire_type(found.type)
        if source_type != column.arrow_type:
            yield (f"column {label}: declared {sql_type_name(column.arrow_type)}, "
                   f"source has {_type_name(source_type)}")


def _type_name(arrow: pa.DataType) -> str:
    try:
        return sql_type_name(arrow)
    except ValueError:
        return str(arrow)


# --- catalog --------------------------------------------------------------------------------
def run_catalog(args: argparse.Namespace) -> int:
    definition = load_config(args.config)
    catalog = Catalog(definition)
    view = None if args.user is None else catalog.view(catalog.directory.principal(args.user))
    if view is None:
        products = sorted(catalog.products.values(), key=lambda p: (p.domain, p.name))
    else:
        products = view.products()
    print(f"catalog {catalog.name}: {definition.mesh.description}".rstrip(": "))
    for domain in sorted({p.domain for p in products}):
        info = catalog.domains[domain]
        print(f"\n{domain} (owner {info.owner}): {info.description}")
        for product in (p for p in products if p.domain == domain):
            kind = "query" if not isinstance(product.definition, TableDefinition) else "table"
            state = _deprecation_note(product, view)
            print(f"  {product.qualified_name} [{kind}, v{product.version}{state}]: "
                  f"{product.description}")
            if args.columns:
                # Types as the config spells them, so the listing reads like the YAML.
                declared = definition.products[product.domain, product.name].columns
                for column in declared:
                    tag = f" [{column.classification}]" if column.classification else ""
                    print(f"      {column.name} {column.type}{tag}: "
                          f"{column.description}")
    return 0


def _deprecation_note(product: DataProduct, view: CatalogView | None) -> str:
    """`, deprecated until 2027-01-31 -> sales.orders_v2` (the successor only if `view`, the
    listing's user, may read it; every successor without --user)."""
    if product.deprecated is None:
        return ""
    successor = (product.deprecated.successor if view is None
                 else visible_successor(product, view))  # fmt: skip
    return (f", deprecated until {product.deprecated.sunset.isoformat()}"
            + (f" -> {successor}" if successor else ""))


# --- contract -------------------------------------------------------------------------------
def run_contract_export(args: argparse.Namespace) -> int:
    catalog = Catalog(load_config(args.config))
    domain, _, name = args.product.partition(".")
    product = catalog.products.get((domain, name))
    if product is None:
        declared = sorted(p.qualified_name for p in catalog.products.values())
        raise MeshgateError(
            f"no product {args.product!r} is declared; name one as <domain>.<product>"
            + (did_you_mean(args.product, declared) or f" (declared: {', '.join(declared)})")
        )
    sys.stdout.write(contract_yaml(catalog, product))
    return 0


# --- config ---------------------------------------------------------------------------------
def run_config_schema(args: argparse.Namespace) -> int:
    sys.stdout.write(schema_text())
    return 0


def run_config_reference(args: argparse.Namespace) -> int:
    sys.stdout.write(config_reference())
    return 0


# --- hash-password --------------------------------------------------------------------------
def run_hash_password(args: argparse.Namespace) -> int:
    """Prompt twice on a terminal; read one line from a pipe (for scripts)."""
    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("repeat password: ") != password:
            raise MeshgateError("the two passwords differ; nothing was hashed")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise MeshgateError("empty password; type one, or pipe it on stdin")
    if args.iterations < 4096:
        raise MeshgateError("--iterations must be at least 4096 (RFC 7677)")
    print(scram_hash(password, args.iterations) if args.scram else hash_password(password))
    return 0


# --- table output ---------------------------------------------------------------------------
def format_table(table: pa.Table) -> str:
    """A plain-text grid: NULL for nulls, numbers right-aligned, times in ISO format."""
    names = table.column_names
    columns = [[_cell(v).replace("\n", "\\n") for v in column.to_pylist()]
               for column in table.columns]
    numeric = [_is_numeric(f.type) for f in table.schema]
    widths = [max([len(n), *(len(c) for c in cells)]) for n, cells in zip(names, columns,
                                                                             strict=True)]

    def line(cells: Sequence[str], header: bool = False) -> str:
        parts = [c.rjust(w) if num and not header else c.ljust(w)
                 for c, w, num in zip(cells, widths, numeric, strict=True)]
        return " | ".join(parts).rstrip()

    rows = [line(names, header=True), "-+-".join("-" * w for w in widths)]
    rows.extend(line(cells) for cells in zip(*columns, strict=True))
    return "\n".join(rows)


def format_records(table: pa.Table) -> str:
    """One block per row (first column as its heading): for long values such as pushed SQL."""
    names = table.column_names
    width = max((len(n) for n in names[1:]), default=0)
    blocks = []
    for row in table.to_pylist():
        lines = [_cell(row[names[0]])]
        for name in names[1:]:
            value = _cell(row[name]).replace("\n", "\n" + " " * (width + 4))
            lines.append(f"  {name.ljust(width)}: {value}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _is_numeric(arrow: pa.DataType) -> bool:
    return bool(pa.types.is_integer(arrow) or pa.types.is_floating(arrow)
                or pa.types.is_decimal(arrow))


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, Decimal | dt.date | dt.time):
        return str(value)
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
