"""Slow clients cannot hold the server's connections (issue 12, item 8).

A slowloris client opens connections and sends nothing, or trickles its headers or its
body. Each must be disconnected once the header or body timeout passes, while the server
keeps answering everyone else.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.server.conftest import Server, make_parties, start_server


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed ``sock`` (None if it was still open)."""
    sock.settimeout(seconds)
    start = time.monotonic()
    try:
        while sock.recv(65536):
            pass  # a 408/400 answer before closing is fine
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def test_silent_trickling_and_stalled_clients_are_disconnected(
    tmp_path: Path, servers: list[Server]
) -> None:
    make_parties(tmp_path / "zone")
    server = start_server(tmp_path / "zone", "--header-timeout", "1", "--body-timeout", "1")
    servers.append(server)
    port = int(server.url.rsplit(":", 1)[1])
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    trickling = socket.create_connection(("127.0.0.1", port))
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(
        b"POST /v1/price HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{"
    )
    trickling.sendall(b"GET /healthz HTTP/1.1\r\n")
    for _ in range(3):  # a header line every half second never completes the request
        time.sleep(0.5)
        try:
            trickling.sendall(b"X-Slow: 1\r\n")
        except OSError:
            break
    try:
        for sock in (*silent, trickling, stalled):
            assert _closed_within(sock, 10) is not None, "a slow client still holds its socket"
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
    finally:
        for sock in (*silent, trickling, stalled):
            sock.close()


def test_a_slow_but_live_body_is_not_cut_off(tmp_path: Path, servers: list[Server]) -> None:
    make_parties(tmp_path / "zone")
    server = start_server(tmp_path / "zone", "--header-timeout", "1", "--body-timeout", "1")
    servers.append(server)
    port = int(server.url.rsplit(":", 1)[1])
    body = b"grant_type=client_credentials&client_id=bank&client_secret=czt_wrong"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        for i in range(0, len(body), 20):  # 2 s in all, never silent for 1 s
            sock.sendall(body[i : i + 20])
            time.sleep(0.5)
        answer = sock.recv(65536)
    # the whole form arrived (a cut-off one would be a 422 without a client_secret)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
