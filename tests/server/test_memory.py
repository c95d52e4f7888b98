"""The served process gives back what a sign-in borrows (scrypt's 16 MB working area)."""

from __future__ import annotations

from pathlib import Path

from pyarrow import flight

from tests.fuzz.served import ServedDemo

SIGN_INS = 30


def test_sign_ins_do_not_grow_the_server(tmp_path: Path) -> None:
    """Found by tests/fuzz: each password sign-in kept ~1 MB of the server's RSS."""
    with ServedDemo(tmp_path) as served:
        client = flight.connect(served.uri)
        try:
            for _ in range(3):
                client.authenticate_basic_token("partner", "partner")
            before = served.rss_bytes()
            for _ in range(SIGN_INS):
                client.authenticate_basic_token("partner", "partner")
            grown = served.rss_bytes() - before
        finally:
            client.close()
    assert grown < 10 * 1024 * 1024, f"{SIGN_INS} sign-ins grew the server {grown} bytes"
