"""Parquet products read by the merge DuckDB itself: results, policies, sandbox, EXPLAIN.

A files source offers its tables to the merge as local scans (`read_parquet`) wherever a
merge runs anyway; the policy barrier is then applied in a stage of its own over that scan,
the merge may read the source's directory and nothing else, and EXPLAIN shows the scan with
its path to admins only.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from meshgate.errors import ForbiddenStatement, MeshgateError
from meshgate.principal import Principal, hash_password
from meshgate.service import QueryService

STAFF = [  # id, name, email, region, salary, dept_id
    (1, "Ann", "ann@eu.example", "EU", 100.5, 10),
    (2, "Bo", "bo@us.example", "US", 200.0, 20),
    (3, "Cy", "cy@eu.example", "EU", 300.0, 20),
    (4, "Di", "di@eu.example", "EU", 400.0, 10),
]
DEPTS = [(10, "Sales"), (20, "Ops")]
SECRET = "top secret value"


def _mesh(root: Path, *, merge_scan: bool = True, extra_products: str = "") -> Path:
    data = root / "data"
    (data / "lake").mkdir(parents=True)
    (data / "lake2").mkdir()  # a sibling whose name starts like the source's
    (data / "elsewhere").mkdir()
    with duckdb.connect(str(data / "org.duckdb")) as connection:
        connection.execute("CREATE TABLE depts (id BIGINT, name VARCHAR)")
        connection.executemany("INSERT INTO depts VALUES (?, ?)", DEPTS)
        connection.execute("CREATE TABLE staff (id BIGINT, name VARCHAR, email VARCHAR, "
                           "region VARCHAR, salary DOUBLE, dept_id BIGINT)")  # fmt: skip
        connection.executemany("INSERT INTO staff VALUES (?, ?, ?, ?, ?, ?)", STAFF)
        # INTEGER in the file, BIGINT declared: the merge's scan casts as a fragment would.
        connection.execute(
            f"COPY (SELECT CAST(id AS INTEGER) AS id, name, email, region, "
            f"salary, dept_id FROM staff) TO '{data / 'lake' / 'staff.parquet'}'"
        )
        for folder in ("lake2", "elsewhere"):
            connection.execute(f"COPY (SELECT '{SECRET}' AS s) TO '{data / folder / 's.parquet'}'")
    config = root / "config"
    config.mkdir()
    option = "" if merge_scan else ", merge_scan: false"
    (config / "mesh.yaml").write_text(textwrap.dedent(f"""
        mesh: {{name: lakehouse, hash_key: test-key}}
        sources:
          - {{name: org_db, kind: duckdb, options: {{path: {data / 'org.duckdb'}}}}}
          - {{name: lake, kind: files, options: {{path: {data / 'lake'}{option}}}}}
        domains:
          - {{name: hr, owner: hr@example.com}}
        products:
          - domain: hr
            name: depts
            primary_key: [id]
            table: {{source: org_db, table: depts}}
            columns:
              - {{name: id, type: BIGINT}}
              - {{name: name, type: VARCHAR}}
          - domain: hr
            name: staff
            primary_key: [id]
            table: {{source: lake, table: staff}}
            columns:
              - {{name: id, type: BIGINT}}
              - {{name: name, type: VARCHAR}}
              - {{name: email, type: VARCHAR}}
              - {{name: region, type: VARCHAR}}
              - {{name: salary, type: DOUBLE}}
              - {{name: dept_id, type: BIGINT}}
        """) + extra_products, encoding="utf-8")  # fmt: skip
    users = "\n".join(
        f"  - {{name: {n}, password_hash: '{hash_password(n)}', roles: [{r}], "
        f"attributes: {{region: EU}}}}"
        for n, r in (("admin", "admin"), ("analyst", "analyst"))
    )
    (config / "access.yaml").write_text(textwrap.dedent("""
        roles:
          - {name: admin, grants: ["*"]}
          - {name: analyst, grants: ["hr.*"]}
        users:
        """) + users + textwrap.dedent("""
        policies:
          - product: hr.staff
            role: analyst
            row_filter: region = user_attribute('region')
            masks:
              email: {expression: "'hidden'"}
              salary: "null"
        """), encoding="utf-8")  # fmt: skip
    return config


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("merge_scan")


@pytest.fixture(scope="module")
def service(root: Path) -> Iterator[QueryService]:
    svc = QueryService.from_config(_mesh(root))
    yield svc
    svc.close()


def _user(service: QueryService, name: str) -> Principal:
    return service.authenticate(name, name)


JOIN = ("SELECT s.name, s.email, s.salary, d.name AS dept FROM hr.staff AS s "
        "JOIN hr.depts AS d ON s.dept_id = d.id WHERE s.id > 1 ORDER BY s.name")  # fmt: skip


def test_a_cross_source_join_reads_the_parquet_in_the_merge(service: QueryService) -> None:
    admin = _user(service, "admin")
    rows = service.query(JOIN, admin).to_pylist()
    assert rows == [
        {"name": "Bo", "email": "bo@us.example", "salary": 200.0, "dept": "Ops"},
        {"name": "Cy", "email": "cy@eu.example", "salary": 300.0, "dept": "Ops"},
        {"name": "Di", "email": "di@eu.example", "salary": 400.0, "dept": "Sales"},
    ]
    plan = service.explain(JOIN, admin).to_pylist()
    scans = [r for r in plan if r["step"].startswith("merge scan")]
    assert [(r["source"], r["detail"]) for r in scans] == [("lake", "read by the merge itself")]
    assert "read_parquet" in scans[0]["sql"].lower()
    assert "staff.parquet" in scans[0]["sql"]
    assert all(r["source"] != "lake" for r in plan if r["step"].startswith("fragment"))
    # Declared BIGINT over the file's INTEGER: the client sees the product's type.
    typed = service.query("SELECT s.id FROM hr.staff AS s JOIN hr.depts AS d ON s.dept_id = d.id",
                          admin)  # fmt: skip
    assert str(typed.schema.field("id").type) == "int64"


def test_row_filter_and_masks_apply_over_the_merge_scan(service: QueryService) -> None:
    analyst = _user(service, "analyst")
    rows = service.query(JOIN, analyst).to_pylist()
    assert rows == [
        {"name": "Cy", "email": "hidden", "salary": None, "dept": "Ops"},
        {"name": "Di", "email": "hidden", "salary": None, "dept": "Sales"},
    ]
    # A predicate on a masked column compares the masked value; US rows never appear.
    masked = ("SELECT s.name FROM hr.staff AS s JOIN hr.depts AS d ON s.dept_id = d.id "
              "WHERE s.email = 'bo@us.example' OR s.salary > 0 OR s.region = 'US'")  # fmt: skip
    assert service.query(masked, analyst).num_rows == 0
    admin_plan = service.explain(JOIN, analyst).to_pylist()
    stage = [r for r in admin_plan if r["step"].startswith("policy stage")]
    assert len(stage) == 1
    assert "hr.staff" in stage[0]["detail"]
    assert any(r["step"].strip().startswith("merge scan") for r in admin_plan)


SELF_JOIN = ("SELECT s.name, m.email, d.name AS dept FROM hr.staff AS s "
             "JOIN hr.staff AS m ON m.id = s.id JOIN hr.depts AS d ON s.dept_id = d.id "
             "ORDER BY s.name")  # fmt: skip


def test_a_files_key_join_is_read_by_the_merge_and_fenced_for_a_restricted_user(
    service: QueryService,
) -> None:
    """A key join of files tables goes to the merge as its own scans, but never past a
    policy: the restricted user's both sides stay fenced, filtered and masked."""
    admin, analyst = _user(service, "admin"), _user(service, "analyst")
    plan = service.explain(SELF_JOIN, admin).to_pylist()
    assert [r["source"] for r in plan if r["step"].startswith("merge scan")] == ["lake", "lake"]
    assert all(r["source"] != "lake" for r in plan if r["step"].startswith("fragment"))
    assert [r["name"] for r in service.query(SELF_JOIN, admin).to_pylist()] == [
        "Ann", "Bo", "Cy", "Di"]  # fmt: skip
    rows = service.query(SELF_JOIN, analyst).to_pylist()
    assert rows == [
        {"name": "Ann", "email": "hidden", "dept": "Sales"},
        {"name": "Cy", "email": "hidden", "dept": "Ops"},
        {"name": "Di", "email": "hidden", "dept": "Sales"},
    ]
    fenced = service.explain(SELF_JOIN, analyst).to_pylist()
    assert any(r["step"].startswith("policy stage") for r in fenced)


def test_explain_shows_the_merge_scan_without_paths_to_others(service: QueryService,
                                                              root: Path) -> None:  # fmt: skip
    plan = service.explain(JOIN, _user(service, "analyst")).to_pylist()
    text = repr(plan).lower()
    for secret in (str(root).lower(), "parquet", "lake", "read_"):
        assert secret not in text
    scans = [r for r in plan if r["step"].strip().startswith("merge scan")]
    assert scans
    assert all(r["source"] == "files" for r in scans)
    assert all(r["sql"] == "(shown to admins only)" for r in scans)


def test_the_merge_reads_the_source_directory_and_nothing_else(service: QueryService,
                                                                root: Path) -> None:  # fmt: skip
    cursor = service.engine._cursor()  # type: ignore[attr-defined]
    data = root / "data"
    try:
        mine = f"SELECT count(*) FROM read_parquet('{data / 'lake' / 'staff.parquet'}')"
        assert cursor.execute(mine).fetchone() == (4,)
        for attempt in (
            "SELECT * FROM read_csv('/etc/passwd')",
            "SELECT * FROM read_text('/etc/passwd')",
            "SELECT * FROM glob('/etc/*')",
            "SELECT * FROM sniff_csv('/etc/passwd')",
            f"SELECT * FROM glob('{data / '*'}')",
            f"SELECT * FROM read_parquet('{data / 'lake2' / 's.parquet'}')",
            f"SELECT * FROM read_parquet('{data / 'lake' / '..' / 'elsewhere' / 's.parquet'}')",
            f"SELECT * FROM read_parquet('{data / 'elsewhere' / '*.parquet'}')",
            "SELECT * FROM read_csv('http://127.0.0.1:1/x.csv')",
        ):
            with pytest.raises(duckdb.Error):
                cursor.execute(attempt).fetchall()
        for change in ("SET allowed_directories = ['/']", "SET enable_external_access = true",
                       "RESET allowed_directories"):  # fmt: skip
            with pytest.raises(duckdb.Error, match="locked"):
                cursor.execute(change)
    finally:
        cursor.close()


@pytest.mark.parametrize("statement", [
    "SELECT * FROM read_parquet('{lake}/staff.parquet')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM '{lake}/staff.parquet'",
    "SELECT * FROM glob('/etc/*')",
    "SELECT s.id FROM hr.staff AS s, read_parquet('{lake}/../lake2/s.parquet') AS x",
    # The merge may write below a files directory (DuckDB's allowed_directories): the gate is
    # what refuses every statement but a query.
    "COPY (SELECT 1) TO '{lake}/written.csv'",
    "ATTACH '{lake}/x.duckdb'",
])  # fmt: skip
def test_callers_cannot_reach_the_files_themselves(service: QueryService, root: Path,
                                                  statement: str) -> None:  # fmt: skip
    lake = root / "data" / "lake"
    with pytest.raises(MeshgateError):
        service.query(statement.format(lake=lake), _user(service, "admin"))
    assert sorted(p.name for p in lake.iterdir()) == ["staff.parquet"]


@pytest.mark.parametrize("reader", ["read_csv('/etc/passwd')", "read_parquet('{lake}/*')"])
def test_a_product_definition_cannot_read_files(tmp_path: Path, reader: str) -> None:
    lake = tmp_path / "data" / "lake"
    product = textwrap.indent(textwrap.dedent(f"""
          - domain: hr
            name: leak
            query: SELECT * FROM {reader.format(lake=lake)}
            columns:
              - {{name: column0, type: VARCHAR}}
        """), "  ")  # fmt: skip
    svc = QueryService.from_config(_mesh(tmp_path, extra_products=product))
    try:
        for sql in ("SELECT * FROM hr.leak",
                    "SELECT * FROM hr.leak AS l JOIN hr.depts AS d ON true"):  # fmt: skip
            with pytest.raises(ForbiddenStatement, match=r"function read_\w+ is not allowed"):
                svc.query(sql, _user(svc, "admin"))
    finally:
        svc.close()


def test_merge_scan_off_reads_the_files_as_fragments(tmp_path: Path) -> None:
    svc = QueryService.from_config(_mesh(tmp_path, merge_scan=False))
    try:
        admin = _user(svc, "admin")
        plan = svc.explain(JOIN, admin).to_pylist()
        assert not any(r["step"].startswith("merge scan") for r in plan)
        assert any(r["source"] == "lake" for r in plan if r["step"].startswith("fragment"))
        assert svc.query(JOIN, admin).num_rows == 3
    finally:
        svc.close()


def test_a_csv_table_is_read_by_the_merge_typed_as_declared(tmp_path: Path) -> None:
    config = _mesh(tmp_path)
    notes = tmp_path / "data" / "notes"
    notes.mkdir()
    (notes / "hires.csv").write_text("staff_id,hired\n1,2020-03-15\n2,2022-01-01\n")
    mesh = config / "mesh.yaml"
    source = f"  - {{name: notes, kind: files, options: {{path: {notes}, format: csv}}}}\n"
    text = mesh.read_text(encoding="utf-8").replace("domains:", source + "domains:", 1)
    text += textwrap.indent(textwrap.dedent("""
        - domain: hr
          name: hires
          table: {source: notes, table: hires}
          columns:
            - {name: staff_id, type: BIGINT}
            - {name: hired, type: DATE}
        """), "  ")  # fmt: skip
    mesh.write_text(text, encoding="utf-8")
    svc = QueryService.from_config(config)
    try:
        admin = _user(svc, "admin")
        sql = ("SELECT d.name, h.hired FROM hr.hires AS h JOIN hr.depts AS d "
               "ON d.id = h.staff_id * 10 WHERE h.hired > DATE '2021-01-01'")  # fmt: skip
        table = svc.query(sql, admin)
        assert table.to_pylist() == [{"name": "Ops", "hired": dt.date(2022, 1, 1)}]
        plan = svc.explain(sql, admin).to_pylist()
        scans = [r for r in plan if r["step"].startswith("merge scan")]
        assert [r["source"] for r in scans] == ["notes"]
        assert "read_csv" in scans[0]["sql"].lower()
    finally:
        svc.close()
