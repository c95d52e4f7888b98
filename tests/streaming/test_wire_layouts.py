"""Layouts clients cannot read (flightsql-clients.md P15) are flattened before the wire:
dictionary, run-end encoded, large and view arrays arrive as their plain types, same values."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from meshgate.sqlconnector.streaming import _to_wire
from meshgate.types import wire_schema

PRODUCED = {
    "dictionary": pa.array(["a", "b", "a", None]).dictionary_encode(),
    "run_end_encoded": pc.run_end_encode(pa.array([7, 7, 8, None], pa.int64())),
    "large_string": pa.array(["a", "b", "a", None], pa.large_string()),
    "string_view": pa.array(["a", "b", "a", None], pa.string_view()),
    "large_list": pa.array([[1], [], None, [2, 3]], pa.large_list(pa.int32())),
}


@pytest.mark.parametrize("layout", sorted(PRODUCED))
def test_a_source_layout_reaches_the_wire_as_its_plain_type(layout: str) -> None:
    column = PRODUCED[layout]
    batch = pa.RecordBatch.from_arrays([column], names=["c"])
    schema = wire_schema(batch.schema)
    sent = _to_wire(batch, schema)
    assert sent.column(0).type in {pa.string(), pa.int64(), pa.list_(pa.int32())}
    assert sent.column(0).to_pylist() == column.to_pylist()
