"""The catalog web page: find data products and read what one holds, as the signed-in user.

A small Flask app with server-rendered (auto-escaped) Jinja templates and no build step. Every
page is built from the caller's own `CatalogView` and the caller-filtered `meshgate.*` system
tables, the same slices Flight SQL answers from, so a product the user may not read answers
404 exactly like one that does not exist, in search results, product pages, lineage and
guessed URLs alike. Sign-in takes the same passwords (with the same back-off) or an identity
provider's JWT as a bearer header; a signed-in session is a random server-side key in an
HttpOnly, SameSite=Strict cookie.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlglot
from flask import Flask, Response, abort, make_response, redirect, render_template, request
from sqlglot import exp

from meshgate.catalog import system
from meshgate.catalog.catalog import CatalogView, DataProduct, QueryDefinition, TableDefinition
from meshgate.errors import AuthenticationFailed, ConfigError
from meshgate.principal import Principal
from meshgate.server.catalog_web.lineage_svg import LineageNode, lineage_svg
from meshgate.service import QueryService
from meshgate.types import sql_type_name

COOKIE = "meshgate_catalog"
PREFIX = "/catalog"


@dataclass(frozen=True)
class Connection:
    """How clients reach the Flight SQL port, for the copy-ready connection strings."""

    host: str
    port: int
    tls: bool = False

    @property
    def adbc_uri(self) -> str:
        return f"{'grpc+tls' if self.tls else 'grpc'}://{self.host}:{self.port}"

    @property
    def jdbc_url(self) -> str:
        encryption = "true" if self.tls else "false"
        return f"jdbc:arrow-flight-sql://{self.host}:{self.port}/?useEncryption={encryption}"


class _Sessions:
    """Signed-in browsers: random keys to principals, each valid for `ttl` seconds."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._items: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def open(self, principal: Principal) -> str:
        key = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._items = {k: v for k, v in self._items.items() if v[1] > now}
            self._items[key] = (principal, now + self._ttl)
        return key

    def principal(self, key: str | None) -> Principal | None:
        if not key:
            return None
        with self._lock:
            found = self._items.get(key)
            if found is None or found[1] <= time.monotonic():
                self._items.pop(key, None)
                return None
            return found[0]

    def close(self, key: str | None) -> None:
        with self._lock:
            self._items.pop(key or "", None)


def catalog_app(service_of: Callable[[], QueryService], connection: Connection,
                session_ttl_seconds: float = 3600.0) -> Flask:
    """The WSGI app, mounted at /catalog. `service_of` is asked on every request, so a config
    reload that swaps the service is followed at once (a revoked grant hides its product)."""
    app = Flask(__name__, static_folder=None)
    sessions = _Sessions(session_ttl_seconds)

    def signed_in() -> tuple[QueryService, Principal] | None:
        service = service_of()
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            try:
                return service, service.authenticate_token(header[7:].strip(), request.remote_addr)
            except AuthenticationFailed:
                abort(401)
        principal = sessions.principal(request.cookies.get(COOKIE))
        return None if principal is None else (service, principal)

    def viewer() -> tuple[QueryService, Principal, CatalogView]:
        found = signed_in()
        if found is None:
            here = f"{request.script_root}{request.path}"
            abort(make_response(redirect(f"{PREFIX}/signin?next={here}"), 303))
        service, principal = found
        return service, principal, service.view(principal)

    @app.after_request
    def no_caching(response: Response) -> Response:
        # Pages differ per user: never let a shared cache hand one user's page to another.
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
            "frame-ancestors 'none'"
        )
        return response

    @app.errorhandler(404)
    def not_found(_: Exception) -> tuple[str, int]:
        found = signed_in() if request.path != f"{PREFIX}/signin" else None
        user = found[1].name if found else None
        return render_template("not_found.html", user=user, prefix=PREFIX), 404

    @app.get("/signin")
    def signin_form() -> str:
        return render_template("signin.html", prefix=PREFIX, error=None,
                               next=_safe_next(request.args.get("next")))

    @app.post("/signin")
    def signin() -> Any:
        service = service_of()
        target = _safe_next(request.form.get("next"))
        try:
            principal = service.authenticate(request.form.get("user", ""),
                                             request.form.get("password", ""),
                                             request.remote_addr)
        except AuthenticationFailed as exc:
            page = render_template("signin.html", prefix=PREFIX, error=str(exc), next=target)
            return page, 401
        response = redirect(target, 303)
        response.set_cookie(COOKIE, sessions.open(principal), httponly=True, samesite="Strict",
                            path=PREFIX, secure=request.is_secure)
        return response

    @app.post("/signout")
    def signout() -> Any:
        sessions.close(request.cookies.get(COOKIE))
        response = redirect(f"{PREFIX}/signin", 303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    @app.get("/")
    def search() -> str:
        _, principal, view = viewer()
        text = request.args.get("q", "").strip()
        hits = [(p, _matches(view, p, text)) for p in view.products()]
        results = [(p, why) for p, why in hits if why or not text]
        return render_template("search.html", prefix=PREFIX, user=principal.name, q=text,
                               results=results, domains=view.domains())

    @app.get("/products/<domain>/<name>")
    def product_page(domain: str, name: str) -> str:
        service, principal, view = viewer()
        product = _visible(view, domain, name)
        masked = view.masked_columns(product)
        record = _rows(view, "products", product)
        columns = [
            {"name": c.name, "type": sql_type_name(c.arrow_type), "nullable": c.nullable,
             "description": c.description, "classification": c.classification,
             "masked": c.name in masked, "key": c.name in product.primary_key}
            for c in product.columns
        ]
        select = ", ".join(_quoted(c.name) for c in product.columns)
        return render_template(
            "product.html", prefix=PREFIX, user=principal.name, product=product,
            record=record[0] if record else {}, columns=columns,
            kind="SQL over other products" if isinstance(product.definition, QueryDefinition)
            else "a source table",
            quality=_rows(view, "quality_results", product),
            versions=_versions(service, product),
            usage=_rows(view, "usage", product),
            upstream=_upstream(view, product),
            query=f"SELECT {select}\nFROM {product.qualified_name}\nLIMIT 100",
            connection=connection, catalog=view.name,
        )

    @app.get("/products/<domain>/<name>/lineage.svg")
    def lineage_picture(domain: str, name: str) -> Response:
        _, _, view = viewer()
        product = _visible(view, domain, name)
        picture = lineage_svg(product.qualified_name, _upstream(view, product))
        return Response(picture, mimetype="image/svg+xml")

    return app


def _versions(service: QueryService, product: DataProduct) -> list[tuple[str, str]]:
    """The versions this deployment has served of `product` (the current one at least)."""
    try:
        served = service.quality_store.version_history(product.qualified_name)
    except ConfigError:
        served = []
    if not any(version == product.version for version, _ in served):
        served.append((product.version, "now"))
    return served


def _safe_next(target: str | None) -> str:
    """Only a path inside the catalog: never an open redirect to another site."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//"):
        return target
    return f"{PREFIX}/"


def _visible(view: CatalogView, domain: str, name: str) -> DataProduct:
    for product in view.products():
        if product.domain == domain and product.name == name:
            return product
    abort(404)


def _matches(view: CatalogView, product: DataProduct, text: str) -> list[str]:
    """Why a product matches a search (name, description, tag, owner, column), or []."""
    if not text:
        return []
    needle = text.lower()
    why = []
    if needle in product.qualified_name.lower():
        why.append("name")
    if needle in product.description.lower():
        why.append("description")
    if any(needle in tag.lower() for tag in product.tags):
        why.append("tag")
    if needle in product.owner.lower():
        why.append("owner")
    columns = [c.name for c in product.columns
               if needle in c.name.lower() or needle in c.description.lower()]
    if columns:
        why.append("column " + ", ".join(columns))
    return why


def _rows(view: CatalogView, table: str, product: DataProduct) -> list[dict[str, Any]]:
    """The caller's rows of a `meshgate.*` table about one product (none if no such table)."""
    if table not in system.SYSTEM_TABLES:
        return []
    rows = system.system_table(table, view).to_pylist()
    return [r for r in rows
            if (r.get("domain") == product.domain and r.get("product") == product.name)
            or r.get("product") == product.qualified_name]


def _upstream(view: CatalogView, product: DataProduct) -> list[LineageNode]:
    """What feeds a product, as far as the caller may know: the products its SQL reads that
    the caller may read (others are left out, not named), or its source for a table product
    (by config name to admins only)."""
    definition = product.definition
    if isinstance(definition, TableDefinition):
        admin = view.catalog.is_admin(view.principal)
        label = (f"source {definition.source}: {definition.table.qualified()}" if admin
                 else f"a source table of domain {product.domain}")
        return [LineageNode(label, None, ())]
    readable = {p.qualified_name: p for p in view.products()}
    nodes = []
    for name in _products_read(definition.sql):
        upstream = readable.get(name)
        if upstream is not None and upstream != product:
            nodes.append(LineageNode(name, f"{PREFIX}/products/{upstream.domain}/{upstream.name}",
                                     tuple(_upstream(view, upstream))))
    return nodes


def _products_read(sql: str) -> list[str]:
    tree = sqlglot.parse_one(sql, dialect="duckdb")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    names = []
    for table in tree.find_all(exp.Table):
        if table.db and table.name.lower() not in ctes:
            qualified = f"{table.db}.{table.name}".lower()
            if qualified not in names:
                names.append(qualified)
    return names


def _quoted(name: str) -> str:
    return name if name.isidentifier() and name.islower() else exp.to_identifier(
        name, quoted=True).sql("duckdb")
