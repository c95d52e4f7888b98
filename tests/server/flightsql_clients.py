"""How each client reaches the server: pyarrow.flight sessions and Flight SQL message helpers."""

from __future__ import annotations

import base64
import re
from typing import Any

import pyarrow as pa
from google.protobuf import any_pb2
from google.protobuf.message import Message
from pyarrow import flight


class Session:
    """A pyarrow.flight client logged in the way pyarrow users do (Handshake, padded Basic)."""

    def __init__(self, uri: str, user: str, password: str) -> None:
        self.client = flight.connect(uri)
        name, value = self.client.authenticate_basic_token(user.encode(), password.encode())
        self.headers = [(name.decode(), value.decode())]
        self.options = flight.FlightCallOptions(headers=[(name, value)])

    def info(self, command: Message) -> flight.FlightInfo:
        return self.client.get_flight_info(descriptor(command), self.options)

    def fetch(self, command: Message) -> tuple[flight.FlightInfo, pa.Table]:
        """GetFlightInfo + DoGet of every endpoint, as a Flight SQL client runs a command."""
        info = self.info(command)
        tables = [self.client.do_get(e.ticket, self.options).read_all() for e in info.endpoints]
        return info, pa.concat_tables(tables)

    def action(self, name: str, body: bytes) -> list[bytes]:
        results = self.client.do_action(flight.Action(name, body), self.options)
        return [r.body.to_pybytes() for r in results]

    def close(self) -> None:
        self.client.close()


def pack(message: Message) -> bytes:
    wrapped = any_pb2.Any()
    wrapped.Pack(message)
    return wrapped.SerializeToString()


def unpack(data: bytes, message: Any) -> Any:
    wrapped = any_pb2.Any.FromString(data)
    assert wrapped.Unpack(message), wrapped.type_url
    return message


def descriptor(command: Message) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(pack(command))


def basic(user: str, password: str, *, padded: bool = True) -> str:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return "Basic " + (encoded if padded else encoded.rstrip("="))


def adbc_refusal(code: str, message: str) -> str:
    """How ADBC's Flight SQL driver words a refusal: the gRPC code, then meshgate's message
    (a `pytest.raises(match=...)` pattern)."""
    return rf"^{code}: \[FlightSQL\] {re.escape(message)}"
