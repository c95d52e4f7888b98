"""Text ordering is never pushed to a source that declares a different collation.

A real DuckDB file whose connector declares `text_ordering_matches_engine=False` (as a source
with a case-insensitive, locale-aware default collation that cannot be overridden would):
ORDER BY / top-N on text stays in the merge, numeric top-N still goes down, and the answer is
DuckDB's byte order either way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import duckdb
import pytest
from meshgate_duckdb import DuckDBConnector

from meshgate.catalog.loader import load_mesh
from meshgate.principal import hash_password
from meshgate.registry import installed_kinds
from meshgate.service import QueryService
from meshgate.spi import Capabilities, ConnectorContext

CONFIG = """
mesh: {name: words}
sources: [{name: dictionary, kind: duckdb, options: {path: words.duckdb}}]
domains: [{name: lexicon, owner: linguists}]
products:
  - domain: lexicon
    name: words
    table: {source: dictionary, table: words}
    columns: [{name: id, type: BIGINT}, {name: word, type: VARCHAR}]
roles: [{name: admin, grants: ["*"]}]
users: [{name: admin, password_hash: "HASH", roles: [admin]}]
"""
WORDS = ["banana", "Apple", "apple", "Zebra", "éclair", "cherry", "Cherry", "apricot"]


class LocaleOrderedSource(DuckDBConnector):
    """A source whose text order is not the engine's and cannot be made so."""

    @property
    def capabilities(self) -> Capabilities:
        return dataclasses.replace(super().capabilities, text_ordering_matches_engine=False)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QueryService]:
    directory = tmp_path_factory.mktemp("words")
    with duckdb.connect(str(directory / "words.duckdb")) as connection:
        connection.execute("CREATE TABLE words (id BIGINT, word VARCHAR)")
        connection.executemany("INSERT INTO words VALUES (?, ?)", list(enumerate(WORDS)))
    (directory / "mesh.yaml").write_text(
        CONFIG.replace("HASH", hash_password("admin", salt=b"collation-salt01"))
    )
    definition = load_mesh(directory, known_source_kinds=installed_kinds())
    source = definition.sources["dictionary"]
    connector = LocaleOrderedSource(ConnectorContext("dictionary", source.options, directory))
    svc = QueryService(definition, {"dictionary": connector})
    yield svc
    svc.close()


def test_text_top_n_stays_in_the_merge(service: QueryService) -> None:
    admin = service.principal("admin")
    sql = "SELECT word FROM lexicon.words ORDER BY word LIMIT 5"
    steps = service.explain(sql, admin).to_pylist()
    (fragment,) = [s for s in steps if s["step"].startswith("fragment")]
    assert "ORDER BY" not in fragment["sql"]
    assert "LIMIT" not in fragment["sql"]
    merge = steps[-1]
    assert merge["step"] == "merge"
    assert "ORDER BY" in merge["sql"]
    words = service.query(sql, admin).column("word").to_pylist()
    assert words == sorted(WORDS, key=lambda w: w.encode())[:5]


def test_numeric_top_n_still_goes_down(service: QueryService) -> None:
    sql = "SELECT id FROM lexicon.words ORDER BY id DESC LIMIT 3"
    steps = service.explain(sql, service.principal("admin")).to_pylist()
    assert len(steps) == 1
    assert "ORDER BY" in steps[0]["sql"]
    assert "LIMIT 3" in steps[0]["sql"]
    assert service.query(sql, service.principal("admin")).column("id").to_pylist() == [7, 6, 5]
