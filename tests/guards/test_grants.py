"""Grants admit exactly the granted products, over names that share prefixes and domains.

Each example is a generated deployment: domains and products whose names extend one another
(``customers`` / ``customers2`` / ``customers_archive`` / ``customer``), the same product name
in every domain, and roles holding a random mix of ``*``, ``domain.*`` and ``domain.product``
grants. The expected visibility is computed here from the grants as (domain, product) pairs,
never by meshgate's string matching, and checked where a caller meets it: binding a query
(``QueryService.prepare``), the ``meshgate.products`` system table, and the roles whose
policies apply (``Catalog.granting_roles``). A grant that matched by prefix, or ignored the
domain, admits a product the model does not, and fails here.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from meshgate.errors import ProductNotFound
from meshgate.principal import Principal, hash_password
from meshgate.service import QueryService

PASSWORD_HASH = hash_password("u")
# Any lower-case word: names are quoted in the config and in queries, so keywords are fine.
WORD = st.from_regex(r"[a-z]{2,5}", fullmatch=True)


def family(word: str) -> list[str]:
    """Names extending one another: a grant on one must not admit the others."""
    return sorted({word, f"{word}2", f"{word}_archive", f"{word}s", word[:-1]})


@dataclass(frozen=True)
class Mesh:
    """A generated deployment: every domain holds every product name."""

    domains: tuple[str, ...]
    names: tuple[str, ...]
    roles: dict[str, tuple[str, ...]]  # role -> grants
    user_roles: tuple[str, ...]

    @property
    def products(self) -> list[tuple[str, str]]:
        return [(d, p) for d in self.domains for p in self.names]

    def grants(self, role: str) -> set[tuple[str, str]]:
        """The role's grants as (domain, product) pairs, ``*`` standing for any."""
        pairs = set()
        for grant in self.roles[role]:
            domain, _, product = grant.partition(".")
            pairs.add((domain, product or "*"))
        return pairs

    def admits(self, role: str, domain: str, product: str) -> bool:
        return bool({("*", "*"), (domain, "*"), (domain, product)} & self.grants(role))

    def visible(self) -> set[tuple[str, str]]:
        return {
            (d, p) for d, p in self.products if any(self.admits(r, d, p) for r in self.user_roles)
        }


@st.composite
def meshes(draw: st.DrawFn) -> Mesh:
    domain_word = draw(WORD, label="domain word")
    product_word = draw(st.one_of(st.just(domain_word), WORD), label="product word")
    domains = draw(st.lists(st.sampled_from(family(domain_word)), min_size=2, max_size=3,
                            unique=True))  # fmt: skip
    names = draw(st.lists(st.sampled_from(family(product_word)), min_size=2, max_size=3,
                          unique=True))  # fmt: skip
    products = [f"{d}.{p}" for d in domains for p in names]
    choices = st.sampled_from(products + [f"{d}.*" for d in domains] + ["*"])
    grants = st.lists(choices, max_size=3, unique=True)
    roles = {f"r{i}": tuple(draw(grants, label=f"grants of r{i}")) for i in range(3)}
    user_roles = tuple(draw(st.lists(st.sampled_from(sorted(roles)), min_size=1, max_size=2,
                                     unique=True)))  # fmt: skip
    return Mesh(tuple(domains), tuple(names), roles, user_roles)


def _write(mesh: Mesh, config: Path, data: Path) -> None:
    products = "\n".join(
        f"  - {{domain: '{d}', name: '{p}', table: {{source: db, table: t}}, "
        "columns: [{name: x, type: BIGINT}]}"
        for d, p in mesh.products
    )
    domains = "\n".join(f"  - {{name: '{d}', owner: o@example.com}}" for d in mesh.domains)
    roles = "\n".join(f"  - {{name: {r}, grants: {list(g)}}}" for r, g in mesh.roles.items())
    user = f"{{name: u, password_hash: '{PASSWORD_HASH}', roles: {list(mesh.user_roles)}}}"
    (config / "mesh.yaml").write_text(
        "mesh: {name: m}\n"
        f"sources:\n  - {{name: db, kind: duckdb, options: {{path: {data}}}}}\n"
        f"domains:\n{domains}\nproducts:\n{products}\nroles:\n{roles}\nusers:\n  - {user}\n",
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("grants") / "data.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE TABLE t AS SELECT 7::BIGINT AS x")
    return path


def _service(mesh: Mesh, data: Path) -> Iterator[QueryService]:
    with tempfile.TemporaryDirectory() as directory:
        _write(mesh, Path(directory), data)
        service = QueryService.from_config(Path(directory))
        try:
            yield service
        finally:
            service.close()


_HINT = re.compile(r"did you mean (.*?)\? ")


def _unhinted(message: str) -> str:
    return _HINT.sub("", message)


def _hinted(message: str) -> list[str]:
    found = _HINT.search(message)
    return found.group(1).split(" or ") if found else []


def _is_refused(service: QueryService, sql: str) -> str | None:
    """None if `sql` prepares, else the refusal's message."""
    try:
        service.prepare(sql, service.principal("u"))
    except ProductNotFound as error:
        return error.message
    return None


PREFIX_AND_DOMAIN = Mesh(
    domains=("customers", "customers2"),
    names=("accounts", "accounts_archive"),
    roles={"r0": ("customers.accounts",), "r1": (), "r2": ()},
    user_roles=("r0",),
)


@settings(max_examples=40, deadline=None)
@given(mesh=meshes())
@example(mesh=PREFIX_AND_DOMAIN)
@example(mesh=Mesh(("ab", "abc"), ("x", "xy"), {"r0": ("ab.*",), "r1": ("abc.xy",), "r2": ()},
                   ("r0", "r1")))  # fmt: skip
def test_a_grant_admits_exactly_the_granted_products(data_file: Path, mesh: Mesh) -> None:
    visible = mesh.visible()
    for service in _service(mesh, data_file):
        principal = service.principal("u")
        listed = service.query("SELECT domain, product FROM meshgate.products", principal)
        assert set(zip(*listed.to_pydict().values(), strict=True)) == visible
        for domain, product in mesh.products:
            refusal = _is_refused(service, f'SELECT x FROM "{domain}"."{product}"')
            if (domain, product) in visible:
                assert refusal is None, f"{domain}.{product} is granted"
                roles = service.catalog.granting_roles(
                    principal, service.catalog.products[(domain, product)]
                )
                assert roles == {r for r in mesh.user_roles if mesh.admits(r, domain, product)}
            else:
                # Answered like a product that does not exist (ARCHITECTURE.md §4.4).
                assert refusal is not None, f"{domain}.{product} is not granted"
                missing = _is_refused(service, f'SELECT x FROM "{domain}"."{product}_missing"')
                assert missing is not None
                # A hint names only products the caller reads, chosen by the written name.
                assert _unhinted(refusal) == _unhinted(missing).replace(f"{product}_missing",
                                                                        product)
                for near in _hinted(refusal) + _hinted(missing):
                    assert tuple(near.split(".")) in visible, near


def test_the_prefix_and_domain_example_is_exact(data_file: Path) -> None:
    """The review's case, spelled out: only customers.accounts, nothing it is a prefix of."""
    for service in _service(PREFIX_AND_DOMAIN, data_file):
        principal = service.principal("u")
        names = [p.qualified_name for p in service.view(principal).products()]
        assert names == ["customers.accounts"]
        assert service.query("SELECT x FROM customers.accounts", principal).to_pylist() == [
            {"x": 7}
        ]
        for other in ("customers.accounts_archive", "customers2.accounts"):
            with pytest.raises(ProductNotFound, match=rf"^data product '{other}' does not exist"):
                service.prepare(f"SELECT x FROM {other}", principal)


def test_a_role_the_deployment_does_not_declare_grants_nothing(data_file: Path) -> None:
    """Roles can come from a token's claims: one the config does not know adds no product
    (and does not break the view), while the declared role beside it still grants."""
    for service in _service(PREFIX_AND_DOMAIN, data_file):
        caller = Principal("t", frozenset({"r0", "from_a_token"}), {})
        view = service.catalog.view(caller)
        assert [p.qualified_name for p in view.products()] == ["customers.accounts"]
        product = service.catalog.products[("customers", "accounts")]
        assert service.catalog.granting_roles(caller, product) == {"r0"}


@pytest.fixture(scope="module")
def demo(demo_dir: Path) -> Iterator[QueryService]:
    service = QueryService.from_config(demo_dir)
    yield service
    service.close()


def test_the_view_is_the_callers_own_masks_and_history(demo: QueryService) -> None:
    """The catalog view carries the caller: the columns its policies mask (meshgate.columns)
    and the audit records it may read (meshgate.query_history), not another's or none."""
    analyst, admin = demo.principal("analyst"), demo.principal("admin")
    columns = "SELECT column_name FROM meshgate.columns WHERE product = 'employees' AND masked"
    masked = {r["column_name"] for r in demo.query(columns, analyst).to_pylist()}
    assert {"ssn", "email", "salary"} <= masked
    assert demo.query(columns, admin).num_rows == 0  # admin reads hr raw
    demo.query("SELECT 'the analyst asked' AS x", analyst)
    demo.query("SELECT 'the admin asked' AS x", admin)
    history = "SELECT user, sql, source_sql FROM meshgate.query_history"
    mine = demo.query(history, analyst).to_pylist()
    assert {r["user"] for r in mine} == {"analyst"}
    assert "SELECT 'the analyst asked' AS x" in {r["sql"] for r in mine}
    everyone = demo.query(history, admin).to_pylist()
    assert {"analyst", "admin"} <= {r["user"] for r in everyone}
