"""How each client reaches the server: pyarrow.flight sessions and Flight SQL message helpers."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adbc_driver_flightsql.dbapi as adbc
import grpc  # type: ignore[import-untyped]
import pyarrow as pa
from google.protobuf import any_pb2
from google.protobuf.message import Message
from pyarrow import flight


class Session:
    """A pyarrow.flight client logged in the way pyarrow users do (Handshake, padded Basic)."""

    def __init__(self, uri: str, user: str, password: str,
                 tls_root_certs: bytes | None = None) -> None:
        extra = {} if tls_root_certs is None else {"tls_root_certs": tls_root_certs}
        self.client = flight.connect(uri, **extra)
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


TLS_OPTION = "adbc.flight.sql.client_option."


@dataclass(frozen=True)
class Endpoint:
    """A running server as each client reaches it: plaintext, or TLS with a private CA."""

    uri: str
    port: int
    ca: bytes | None = None  # PEM of the CA that signed the server's certificate
    ca_file: Path | None = None

    @property
    def tls(self) -> bool:
        return self.ca is not None

    def session(self, user: str, password: str | None = None) -> Session:
        return Session(self.uri, user, user if password is None else password, self.ca)

    def client(self) -> flight.FlightClient:
        extra = {} if self.ca is None else {"tls_root_certs": self.ca}
        return flight.connect(self.uri, **extra)

    def grpc_channel(self) -> grpc.Channel:
        """A raw gRPC channel to the server, for calls whose wire form a test must see."""
        target = f"127.0.0.1:{self.port}"
        if self.ca is None:
            return grpc.insecure_channel(target)
        return grpc.secure_channel(target, grpc.ssl_channel_credentials(self.ca))

    def adbc_options(self, user: str, password: str | None = None) -> dict[str, str]:
        options = {"username": user, "password": user if password is None else password}
        if self.ca is not None:
            options[TLS_OPTION + "tls_root_certs"] = self.ca.decode()
        return options

    def adbc(self, user: str, password: str | None = None, **kwargs: Any) -> adbc.Connection:
        """An ADBC DB-API connection (autocommit on, as read-only clients use it)."""
        return adbc.connect(self.uri, db_kwargs=self.adbc_options(user, password),
                            autocommit=True, **kwargs)


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
