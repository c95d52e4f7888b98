"""A broken config names the file, the place in it and the problem; the demo config loads."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

from meshgate.catalog.catalog import Catalog, TableDefinition
from meshgate.catalog.loader import load_mesh
from meshgate.demo.generate import demo_config_dir
from meshgate.errors import ConfigError
from meshgate.principal import Principal, verify_password
from meshgate.service import load_definition

Edit = Callable[[dict[str, Any]], None]


def copy_demo_config(target: Path) -> Path:
    """The demo's YAML without data: loading a config never touches the sources."""
    target.mkdir(parents=True, exist_ok=True)
    for path in demo_config_dir().glob("*.yaml"):
        shutil.copyfile(path, target / path.name)
    return target


def edit_yaml(path: Path, change: Edit) -> None:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(document)
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def load_error(directory: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_mesh(directory, known_source_kinds=frozenset({"duckdb", "sqlite", "files"}))
    return caught.value.message


def _set(path: tuple[Any, ...], value: Any) -> Edit:
    def change(document: dict[str, Any]) -> None:
        node: Any = document
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return change


BROKEN: dict[str, tuple[str, Edit, tuple[str, ...]]] = {
    "unknown key": (
        "mesh.yaml", _set(("sources", 0, "colour"), "blue"),
        ("sources[0].colour: unknown key 'colour' (allowed here: name, kind, options, "
         "description)",),
    ),
    "reserved domain": (
        "mesh.yaml",
        lambda d: d["domains"].append({"name": "information_schema", "owner": "x@example.com"}),
        ("domains[3].name: the name 'information_schema' is reserved for a system schema; "
         "choose another domain name",),
    ),
    "wrong type": (
        "sales.yaml", _set(("products", 0, "columns", 0, "nullable"), "sometimes"),
        ("products[0].columns[0].nullable: expected true or false, got sometimes",),
    ),
    "missing source": (
        "sales.yaml", _set(("products", 0, "table", "source"), "warehouse"),
        ("products[0].table.source: source 'warehouse' is not declared under `sources:` "
         "(declared: finance_lake, hr_db, sales_db)",),
    ),
    "undefined env var": (
        "mesh.yaml", _set(("sources", 0, "options", "path"), "${MESHGATE_TEST_UNSET_PATH}"),
        ("sources[0].options.path: environment variable ${MESHGATE_TEST_UNSET_PATH} is not set",),
    ),
    "bad grant": (
        "access.yaml", _set(("roles", 1, "grants"), ["sales"]),
        ("roles[1].grants[0]: grant 'sales' must be '*', 'domain.*' or 'domain.product'; "
         "did you mean 'sales.*'?",),
    ),
    "grant on unknown domain": (
        "access.yaml", _set(("roles", 1, "grants"), ["marketing.*"]),
        ("roles[1].grants[0]: domain 'marketing' is not declared under `domains:` "
         "(declared: finance, hr, sales)",),
    ),
    "grant on a misspelt product": (
        "access.yaml", _set(("roles", 1, "grants"), ["sales.ordres"]),
        ("roles[1].grants[0]: product 'sales.ordres' is not declared under `products:`; "
         "did you mean 'sales.orders'?",),
    ),
    "plain password": (
        "access.yaml", _set(("users", 0, "password_hash"), "admin"),
        ("users[0].password_hash: must be a scrypt hash or a SCRAM-SHA-256 verifier, never a "
         "plain password",),
    ),
    "password instead of its hash": (
        "access.yaml", _set(("users", 0, "password"), "admin"),
        ("users[0].password: unknown key 'password'; store a hash under `password_hash` "
         "instead: run `meshgate hash-password` and paste its output",),
    ),
    "unknown source kind": (
        "mesh.yaml", _set(("sources", 0, "kind"), "sqlit"),
        ("sources[0].kind: unknown source kind 'sqlit'; did you mean 'sqlite'? (installed "
         "kinds: duckdb, files, sqlite)",),
    ),
    "product without definition": (
        "hr.yaml", _set(("products", 1, "table"), None),
        ("products[1]: a product needs exactly one definition: `table:` or `query:`",),
    ),
    "tags as a string": (
        "sales.yaml", _set(("products", 0, "tags"), "orders"),
        ("products[0].tags: expected a list; write `tags: [orders]`",),
    ),
    "version as a number": (
        "sales.yaml", _set(("products", 0, "version"), 1.0),
        ('products[0].version: expected text, and YAML read 1.0 as a number or boolean; quote '
         'it: `version: "1.0"`',),
    ),
    "unknown column type": (
        "sales.yaml", _set(("products", 0, "columns", 3, "type"), "MONEY"),
        ("products[0].columns[3].type: unknown column type 'MONEY'; supported types: BOOLEAN, "
         "TINYINT, SMALLINT, INTEGER, BIGINT,",),
    ),
    "misspelt column type": (
        "sales.yaml", _set(("products", 0, "columns", 3, "type"), "INTEGR"),
        ("products[0].columns[3].type: unknown column type 'INTEGR'; did you mean 'INTEGER'?",),
    ),
    "misspelt domain": (
        "sales.yaml", _set(("products", 0, "domain"), "saless"),
        ("products[0].domain: domain 'saless' is not declared under `domains:`; did you mean "
         "'sales'?",),
    ),
    "misspelt key": (
        "sales.yaml", _set(("products", 0, "descripton"), "x"),
        ("products[0].descripton: unknown key 'descripton'; did you mean 'description'?",),
    ),
    "misspelt section": (
        "sales.yaml", _set(("prodcts",), []),
        ("prodcts: unknown section 'prodcts'; did you mean 'products'?",),
    ),
    "zero token lifetime": (
        "mesh.yaml", _set(("server",), {"token_ttl_seconds": 0}),
        ("server.token_ttl_seconds: must be greater than 0, got 0",),
    ),
    "negative token lifetime": (
        "mesh.yaml", _set(("server",), {"token_ttl_seconds": -5}),
        ("server.token_ttl_seconds: must be greater than 0, got -5",),
    ),
}  # fmt: skip

PROBLEM_LINE = re.compile(r"^  (?P<file>[\w./-]+):(?P<line>\d+):(?P<column>\d+): "
                          r"(?P<path>[^:]+): ", re.MULTILINE)


def assert_points_at_the_key(directory: Path, message: str) -> None:
    """Each problem's line and column is where its key (or list item) is written."""
    problems = list(PROBLEM_LINE.finditer(message))
    assert problems, message
    for found in problems:
        lines = (directory / found["file"]).read_text(encoding="utf-8").splitlines()
        text = lines[int(found["line"]) - 1][int(found["column"]) - 1 :]
        last = re.split(r"[.\[\]]", found["path"].rstrip("]"))[-1]
        assert text.startswith(last) or last.isdigit(), (found[0], text)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_config_names_file_line_and_problem(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MESHGATE_TEST_UNSET_PATH", raising=False)
    file_name, change, expected = BROKEN[case]
    directory = copy_demo_config(tmp_path / "mesh")
    edit_yaml(directory / file_name, change)
    message = load_error(directory)
    assert message.startswith(f"invalid configuration in {directory} (1 problem):\n  ")
    for fragment in expected:
        assert re.search(rf"\n  {re.escape(file_name)}:\d+:\d+: {re.escape(fragment)}",
                         message), message
    assert_points_at_the_key(directory, message)


# Problems of every kind in three small files: each names file:line:column and a key path in
# one style, and none hides another (validation, references, column types, limits).
ONE_PASS_FILES = {
    "mesh.yaml": """\
mesh: {name: shop}
server:
  token_ttl_seconds: -5
sources:
  - name: shop_db
    kind: duckdb
    colour: blue
    options: {path: shop.duckdb}
""",
    "sales.yaml": """\
domains:
  - {name: sales, owner: sales@example.com}
products:
  - domain: sales
    name: orders
    version: 1.0
    tags: orders
    table: {source: shop_dbb, table: orders}
    columns:
      - {name: order_id, type: BIGINT}
      - {name: amount, type: MONEY}
  - domain: salez
    name: refunds
    table: {source: shop_db, table: refunds}
    columns:
      - {name: refund_id, type: BIGINT}
""",
    "access.yaml": """\
roles:
  - name: analyst
    grants: [sales, "sales.ordrs", "finance.*"]
users:
  - name: ann
    password: secret
    roles: [analist]
""",
}
ONE_PASS_PROBLEMS = [
    "access.yaml:3:14: roles[0].grants[0]: grant 'sales' must be '*', 'domain.*' or "
    "'domain.product'; did you mean 'sales.*'?",
    "access.yaml:3:21: roles[0].grants[1]: product 'sales.ordrs' is not declared under "
    "`products:`; did you mean 'sales.orders'?",
    "access.yaml:3:36: roles[0].grants[2]: domain 'finance' is not declared under `domains:` "
    "(declared: sales)",
    "access.yaml:5:5: users[0].password_hash: required key is missing",
    "access.yaml:6:5: users[0].password: unknown key 'password'; store a hash under "
    "`password_hash` instead: run `meshgate hash-password` and paste its output (a plain "
    "password never goes into a config file)",
    "access.yaml:7:13: users[0].roles[0]: role 'analist' is not declared under `roles:`; did "
    "you mean 'analyst'?",
    "mesh.yaml:3:3: server.token_ttl_seconds: must be greater than 0, got -5",
    "mesh.yaml:7:5: sources[0].colour: unknown key 'colour' (allowed here: name, kind, "
    "options, description)",
    'sales.yaml:6:5: products[0].version: expected text, and YAML read 1.0 as a number or '
    'boolean; quote it: `version: "1.0"`',
    "sales.yaml:7:5: products[0].tags: expected a list; write `tags: [orders]`",
    "sales.yaml:8:13: products[0].table.source: source 'shop_dbb' is not declared under "
    "`sources:`; did you mean 'shop_db'?",
    "sales.yaml:11:24: products[0].columns[1].type: unknown column type 'MONEY'; supported "
    "types: BOOLEAN, TINYINT, SMALLINT, INTEGER, BIGINT, UTINYINT, USMALLINT, UINTEGER, "
    "UBIGINT, FLOAT, DOUBLE, DECIMAL(p,s), VARCHAR, BLOB, DATE, TIME, TIMESTAMP, TIMESTAMPTZ, "
    "INTERVAL, UUID, JSON, <type>[], STRUCT(name type, ...)",
    "sales.yaml:12:5: products[1].domain: domain 'salez' is not declared under `domains:`; "
    "did you mean 'sales'?",
]


def test_every_problem_is_reported_in_one_pass_sorted_by_file_and_line(tmp_path: Path) -> None:
    for name, text in ONE_PASS_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    message = load_error(tmp_path)
    assert message.splitlines() == [
        f"invalid configuration in {tmp_path} ({len(ONE_PASS_PROBLEMS)} problems):",
        *(f"  {problem}" for problem in ONE_PASS_PROBLEMS),
    ]


# A policy problem joins the loader's problems in the same report; the policy of a product
# that has a problem of its own (hr.payroll's MONEY column) waits until that is fixed.
POLICY_PASS_FILES = {
    "mesh.yaml": """\
mesh: {name: shop}
sources:
  - {name: shop_db, kind: duckdb, colour: blue, options: {path: shop.duckdb}}
""",
    "hr.yaml": """\
domains:
  - {name: hr, owner: hr@example.com}
products:
  - domain: hr
    name: payroll
    table: {source: shop_db, table: payroll}
    columns:
      - {name: id, type: BIGINT}
      - {name: amount, type: MONEY}
  - domain: hr
    name: employees
    table: {source: shop_db, table: employees}
    columns:
      - {name: id, type: BIGINT}
      - {name: region, type: VARCHAR}
""",
    "access.yaml": """\
roles:
  - {name: analyst, grants: ["hr.*"]}
policies:
  - product: hr.employees
    role: analyst
    row_filter: regionx = user_attribute('region')
  - product: hr.payroll
    role: analyst
    row_filter: amountt > 0
""",
}


def test_policy_problems_are_reported_with_the_loaders_in_one_pass(tmp_path: Path) -> None:
    for name, text in POLICY_PASS_FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_definition(tmp_path)
    assert caught.value.message.splitlines() == [
        f"invalid configuration in {tmp_path} (3 problems):",
        "  access.yaml:6:5: policies[0].row_filter: unknown column 'regionx' of hr.employees; "
        "did you mean 'region'?",
        "  hr.yaml:9:24: products[0].columns[1].type: unknown column type 'MONEY'; supported "
        "types: BOOLEAN, TINYINT, SMALLINT, INTEGER, BIGINT, UTINYINT, USMALLINT, UINTEGER, "
        "UBIGINT, FLOAT, DOUBLE, DECIMAL(p,s), VARCHAR, BLOB, DATE, TIME, TIMESTAMP, TIMESTAMPTZ, "
        "INTERVAL, UUID, JSON, <type>[], STRUCT(name type, ...)",
        "  mesh.yaml:3:35: sources[0].colour: unknown key 'colour' (allowed here: name, kind, "
        "options, description)",
    ]


def test_a_policy_is_checked_once_its_product_is_fixed(tmp_path: Path) -> None:
    for name, text in POLICY_PASS_FILES.items():
        (tmp_path / name).write_text(text.replace("MONEY", "DOUBLE"), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_definition(tmp_path)
    assert "  access.yaml:9:5: policies[1].row_filter: unknown column 'amountt' of hr.payroll; " \
        "did you mean 'amount'?" in caught.value.message.splitlines()


def test_a_broken_server_section_does_not_hide_policy_problems(tmp_path: Path) -> None:
    for name, text in POLICY_PASS_FILES.items():
        (tmp_path / name).write_text(text.replace("MONEY", "DOUBLE"), encoding="utf-8")
    with (tmp_path / "mesh.yaml").open("a", encoding="utf-8") as mesh_file:
        mesh_file.write("server:\n  jwt: {issuer: x, audience: y, key_file: missing.pem}\n")
    with pytest.raises(ConfigError) as caught:
        load_definition(tmp_path)
    lines = caught.value.message.splitlines()
    assert any(line.startswith("  mesh.yaml:5:") and "key_file" in line for line in lines), lines
    assert "  access.yaml:6:5: policies[0].row_filter: unknown column 'regionx' of " \
        "hr.employees; did you mean 'region'?" in lines


def test_problems_of_several_files_are_reported_together(tmp_path: Path) -> None:
    directory = copy_demo_config(tmp_path / "mesh")
    edit_yaml(directory / "mesh.yaml", _set(("sources", 0, "colour"), "blue"))
    edit_yaml(directory / "access.yaml", _set(("users", 0, "password_hash"), "admin"))
    message = load_error(directory)
    assert "\n  access.yaml:" in message
    assert "\n  mesh.yaml:" in message
    assert message.index("access.yaml:") < message.index("mesh.yaml:")


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    directory = copy_demo_config(tmp_path / "mesh")
    (directory / "extra.yaml").write_text("domains:\n  - name: x\n   owner: y\n",
                                          encoding="utf-8")
    message = load_error(directory)
    assert message.endswith(
        "\n  extra.yaml:3:4: not valid YAML (expected <block end>, but found '<block mapping "
        "start>'); check the indentation and quoting on this line"
    )


def test_env_var_is_substituted_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHGATE_TEST_SALES_PATH", "elsewhere/sales.duckdb")
    directory = copy_demo_config(tmp_path / "mesh")
    edit_yaml(directory / "mesh.yaml",
              _set(("sources", 0, "options", "path"), "${MESHGATE_TEST_SALES_PATH}"))
    definition = load_mesh(directory)
    assert definition.sources["sales_db"].options["path"] == "elsewhere/sales.duckdb"


def test_demo_config_loads() -> None:
    definition = load_mesh(demo_config_dir())
    catalog = Catalog(definition)
    assert catalog.name == "demo"
    assert set(catalog.domains) == {"sales", "hr", "finance"}
    assert {s.kind for s in definition.sources.values()} == {"duckdb", "sqlite", "files"}
    employees = catalog.products["hr", "employees"]
    assert [c.name for c in employees.columns][:7] == [
        "id", "name", "email", "ssn", "salary", "region", "manager_id"
    ]
    assert {c.name for c in employees.columns if c.classification == "pii"} == {
        "name", "email", "ssn"
    }
    orders = catalog.products["sales", "orders"]
    assert [(c.name, c.sql_type.sql("duckdb")) for c in orders.columns if c.name in {
        "amount", "ts"}] == [("amount", "DECIMAL(12, 2)"), ("ts", "TIMESTAMPTZ")]


def test_demo_products_are_documented_and_use_every_definition_form() -> None:
    catalog = Catalog(load_mesh(demo_config_dir()))
    for product in catalog.products.values():
        assert product.description, product.qualified_name
        for column in product.columns:
            assert column.description, f"{product.qualified_name}.{column.name}"
    tables = {p.qualified_name: p.definition for p in catalog.products.values()
              if isinstance(p.definition, TableDefinition)}
    sources_of_sales = {d.source for name, d in tables.items() if name.startswith("sales.")}
    assert len(sources_of_sales) == 1
    renamed = tables["sales.customers"]
    assert "cust_no" in renamed.source_columns
    assert len(tables) < len(catalog.products)


def test_demo_users_and_grants() -> None:
    catalog = Catalog(load_mesh(demo_config_dir()))
    for name in ("admin", "analyst"):
        stored = catalog.definition.users[name].password_hash
        assert verify_password(name, stored)
        assert not verify_password("wrong", stored)
    admin = catalog.view(catalog.directory.principal("admin"))
    analyst = catalog.view(catalog.directory.principal("analyst"))
    assert {d.name for d in admin.domains()} == {"sales", "hr", "finance"}
    assert {d.name for d in analyst.domains()} == {"sales", "hr"}
    nobody = catalog.view(Principal("nobody", frozenset()))
    assert nobody.products() == []


EXAMPLE = demo_config_dir().parent / "examples" / "crm-postgres"
EXAMPLE_VARIABLES = ("CRM_PG_USER", "CRM_PG_PASSWORD", "CRM_PG_HOST", "CRM_PG_DATABASE")


def test_postgres_example_takes_secrets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in EXAMPLE_VARIABLES:
        monkeypatch.setenv(name, name.lower())
    definition = load_mesh(EXAMPLE)
    assert definition.sources["crm"].options["dsn"] == (
        "postgresql://crm_pg_user:crm_pg_password@crm_pg_host/crm_pg_database"
    )
    catalog = Catalog(definition)
    marketing = catalog.view(catalog.directory.principal("mo"))
    assert [p.qualified_name for p in marketing.products()] == [
        "customers.accounts", "customers.accounts_per_country"
    ]


def test_postgres_example_names_each_missing_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in EXAMPLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    message = load_error(EXAMPLE)
    for name in EXAMPLE_VARIABLES:
        assert re.search(rf"\n  mesh.yaml:\d+:\d+: sources\[0\].options.dsn: environment "
                         rf"variable \$\{{{name}\}} is not set; export it", message), message


def test_readme_config_example_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (demo_config_dir().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Configuration"):]
    example = section[section.index("```yaml\n") + len("```yaml\n"):]
    example = example[:example.index("```")]
    (tmp_path / "mesh.yaml").write_text(example, encoding="utf-8")
    for name in ("CRM_PG_USER", "CRM_PG_PASSWORD", "CRM_PG_HOST", "CRM_PG_DATABASE"):
        monkeypatch.setenv(name, "x")
    catalog = Catalog(load_mesh(tmp_path, known_source_kinds=frozenset({"postgres", "files"})))
    assert sorted(catalog.products) == [
        ("customers", "accounts"), ("customers", "accounts_per_country")
    ]


# ---- server.jwt: an identity provider's keys, checked before the server starts ----------------

JWT_SECRET_VARIABLE = "MESHGATE_TEST_JWT_KEY"
JWT_BASE = {"issuer": "https://idp.example.com/", "audience": "meshgate"}


def _public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _mesh_with_jwt(tmp_path: Path, section: dict[str, Any], files: dict[str, str]) -> Path:
    """The demo config plus `identity.yaml` holding `server.jwt` (a None value drops a key)."""
    directory = copy_demo_config(tmp_path / "mesh")
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    (directory / "identity.yaml").write_text(
        yaml.safe_dump({"server": {"jwt": {
            k: v for k, v in {**JWT_BASE, **section}.items() if v is not None
        }}}),
        encoding="utf-8",
    )
    return directory


# case -> (server.jwt keys, files beside the YAML, value of the secret variable, expected)
BROKEN_JWT: dict[str, tuple[dict[str, Any], dict[str, str], str | None, tuple[str, ...]]] = {
    "unknown key": (
        {"key_file": "idp.pem", "colour": "blue"}, {"idp.pem": "RSA"}, None,
        ("server.jwt.colour", "unknown key"),
    ),
    "wrong type": (
        {"key_file": "idp.pem", "leeway_seconds": "soon"}, {"idp.pem": "RSA"}, None,
        ("server.jwt.leeway_seconds: expected a whole number, got soon",),
    ),
    "missing issuer": (
        {"issuer": None, "key_file": "idp.pem"}, {"idp.pem": "RSA"}, None,
        ("server.jwt.issuer",),
    ),
    "alg none": (
        {"algorithms": ["none"], "key_file": "idp.pem"}, {"idp.pem": "RSA"}, None,
        ("server.jwt.algorithms", "'none' is never accepted"),
    ),
    "unknown algorithm": (
        {"algorithms": ["RS999"], "key_file": "idp.pem"}, {"idp.pem": "RSA"}, None,
        ("server.jwt.algorithms", "unsupported algorithm 'RS999'"),
    ),
    "mixed families": (
        {"algorithms": ["RS256", "HS256"], "key_file": "idp.pem"}, {"idp.pem": "RSA"}, None,
        ("server.jwt.algorithms", "one family only"),
    ),
    "two key sources": (
        {"key_file": "idp.pem", "jwks_file": "jwks.json"}, {"idp.pem": "RSA"}, None,
        ("server.jwt", "exactly one of `key`, `key_file` or `jwks_file`"),
    ),
    "HS secret from a file": (
        {"algorithms": ["HS256"], "key_file": "secret.txt"}, {"secret.txt": "x" * 40}, None,
        ("server.jwt", "read only from the environment"),
    ),
    "HS secret inline": (
        {"algorithms": ["HS256"], "key": "s3cret-s3cret-s3cret-s3cret-s3cret"}, {}, None,
        ("server.jwt.key: must be an environment reference",),
    ),
    "undefined secret variable": (
        {"algorithms": ["HS256"], "key": "${MESHGATE_TEST_UNSET_JWT_KEY}"}, {}, None,
        ("server.jwt.key", "${MESHGATE_TEST_UNSET_JWT_KEY} is not set"),
    ),
    "short HS secret": (
        {"algorithms": ["HS256"], "key": f"${{{JWT_SECRET_VARIABLE}}}"}, {}, "short",
        ("server.jwt.key", "5 bytes long", "minimum recommended length of 32 bytes"),
    ),
    "PEM as HS secret": (
        {"algorithms": ["HS256"], "key": f"${{{JWT_SECRET_VARIABLE}}}"}, {}, "RSA",
        ("server.jwt.key", "not a PEM or SSH key"),
    ),
    "missing key file": (
        {"key_file": "nowhere.pem"}, {}, None,
        ("server.jwt.key_file: cannot read 'nowhere.pem'", "relative to the config directory"),
    ),
    "private key in key file": (
        {"key_file": "idp.pem"}, {"idp.pem": "RSA PRIVATE"}, None,
        ("server.jwt.key_file: not a PEM public key or certificate",),
    ),
    "EC key for RS256": (
        {"key_file": "idp.pem"}, {"idp.pem": "EC"}, None,
        ("server.jwt.key_file: the key is an EC key on curve secp256r1 but `algorithms` "
         "lists RS256",),
    ),
    "symmetric key in a JWKS": (
        {"algorithms": ["HS256"], "jwks_file": "jwks.json"},
        {"jwks.json": json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})}, None,
        ("server.jwt", "read only from the environment"),
    ),
    "oct key in an RS256 JWKS": (
        {"jwks_file": "jwks.json"},
        {"jwks.json": json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})}, None,
        ("server.jwt.jwks_file: keys[0]: a symmetric (oct) key",),
    ),
    "JWKS without a fitting key": (
        {"algorithms": ["ES256"], "jwks_file": "jwks.json"}, {"jwks.json": "RSA JWKS"}, None,
        ("server.jwt.jwks_file: no signing key in the set fits `algorithms` (ES256)",),
    ),
    "JWKS that is not JSON": (
        {"jwks_file": "jwks.json"}, {"jwks.json": "{keys"}, None,
        ("server.jwt.jwks_file: not valid JSON",),
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_JWT))
def test_broken_jwt_section_names_file_and_problem(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rsa_key: rsa.RSAPrivateKey
) -> None:
    section, files, secret, expected = BROKEN_JWT[case]
    materials = {
        "RSA": _public_pem(rsa_key),
        "RSA PRIVATE": _private_pem(rsa_key),
        "EC": _public_pem(ec.generate_private_key(ec.SECP256R1())),
        "RSA JWKS": json.dumps({"keys": [json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))]}),
    }
    files = {name: materials.get(text, text) for name, text in files.items()}
    monkeypatch.delenv("MESHGATE_TEST_UNSET_JWT_KEY", raising=False)
    if secret is not None:
        monkeypatch.setenv(JWT_SECRET_VARIABLE, materials.get(secret, secret))
    directory = _mesh_with_jwt(tmp_path, section, files)
    message = load_error(directory)
    assert "identity.yaml" in message
    for fragment in expected:
        assert fragment in message
    assert "s3cret" not in message


def test_a_valid_jwt_section_loads_with_its_claim_mapping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(JWT_SECRET_VARIABLE, "k" * 64)
    directory = _mesh_with_jwt(tmp_path, {
        "algorithms": ["HS256", "HS512"], "key": f"${{{JWT_SECRET_VARIABLE}}}",
        "user_claim": "email", "roles_claim": "groups",
        "attribute_claims": {"region": "office"}, "leeway_seconds": 30,
    }, {})
    jwt_config = load_mesh(directory).server.jwt
    assert jwt_config is not None
    assert jwt_config.algorithms == ("HS256", "HS512")
    assert jwt_config.key == "k" * 64
    assert (jwt_config.user_claim, jwt_config.roles_claim) == ("email", "groups")
    assert jwt_config.attribute_claims == {"region": "office"}
    assert jwt_config.leeway_seconds == 30


def test_readme_jwt_example_is_valid(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> None:
    readme = (demo_config_dir().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Identity-provider tokens (JWT)"):]
    example = section[section.index("```yaml\n") + len("```yaml\n"):]
    example = example[:example.index("```")]
    directory = copy_demo_config(tmp_path / "mesh")
    (directory / "identity.yaml").write_text(example, encoding="utf-8")
    jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    (directory / "idp-jwks.json").write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
    jwt_config = load_mesh(directory).server.jwt
    assert jwt_config is not None
    assert jwt_config.jwks_file == "idp-jwks.json"
