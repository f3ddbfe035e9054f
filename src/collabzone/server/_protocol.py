"""Slow clients: header and body read timeouts on uvicorn's own HTTP/1.1 protocol.

uvicorn times out idle keep-alive connections, but not a client that opens a connection
and sends nothing, nor one that trickles its headers or body a byte at a time: 400 such
connections held the server for as long as they liked. :func:`protocol_class` returns
uvicorn's h11 protocol with two timers added:

* ``header_timeout``: from the connection's start (or its first byte after a keep-alive
  pause) until the request's headers are complete;
* ``body_timeout``: the longest silence allowed while a request body is arriving (it
  restarts with every chunk, so a large upload on a slow but live link is fine).

A client that misses either is disconnected; a body cut off this way reaches the app as
a disconnect, so nothing half-received is stored. Time the server itself makes the client
wait (reading paused for back-pressure, or the response not yet sent) never counts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class _TimedH11Protocol(H11Protocol):
    header_timeout: float = 10.0
    body_timeout: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        their = self.conn.their_state
        if their is h11.IDLE and self._read_timer is None:
            self._arm(self.header_timeout)  # a new request started: headers must follow
        elif their is h11.SEND_BODY:
            self._arm(self.body_timeout)  # every chunk restarts the silence allowed
        elif their is not h11.IDLE:
            self._disarm()  # the request has fully arrived

    def on_response_complete(self) -> None:
        self._disarm()  # keep-alive: uvicorn's own idle timeout takes over
        super().on_response_complete()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._read_timer = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None

    def _expired(self) -> None:
        self._read_timer = None
        if self.transport.is_closing():
            return
        their = self.conn.their_state
        if self.flow.read_paused and their is h11.SEND_BODY:
            self._arm(self.body_timeout)  # we stopped reading, not the client
            return
        if their is h11.IDLE and self.cycle is not None and not self.cycle.response_complete:
            return  # pipelined: the previous response is still being produced
        if their in (h11.IDLE, h11.SEND_BODY):
            self.transport.close()


def protocol_class(header_timeout: float, body_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with these header and body read timeouts (seconds)."""
    return type(
        "SlowClientH11Protocol",
        (_TimedH11Protocol,),
        {"header_timeout": header_timeout, "body_timeout": body_timeout},
    )
