"""The zone's background aggregator: an approved federated job starts without an operator.

The zone server starts one :class:`Aggregator` thread when ``zone.toml`` has a
``[federated]`` section (``collabzone.techniques.registry.start_workers``). It polls the
approved federated jobs (the request becomes ``approved`` when the last required owner
approves), takes the oldest (``approved -> running``, carried by the server's process), and
runs it to its release, one job at a time (one SuperLink port; a SuperLink serves the
SuperNodes of one job):

- ``aggregator = "flower"`` (deployments): the zone's SuperLink on ``host:port`` with the
  zone's TLS certificates (``certificates``, a directory made by ``collabzone fl certs``;
  issued into ``<zone>/server/fl-certs`` for ``hosts`` when absent), the owners' node agents
  dialling ``advertised`` start their SuperNodes, the ServerApp runs, the zone releases.
  ``insecure = true`` drops TLS (tests only).
- ``aggregator = "local"``: the in-process link (node agents in the same process: tests,
  the demo), waiting at most ``join_timeout`` seconds for every node.

A job whose run breaks ends ``failed`` (audited, charged for rounds already run); a job
left ``running`` by a crashed server is failed and audited when the zone opens again
(``RequestEngine.recover``: its worker process is gone). Stopping the server stops the
running job's SuperLink, which fails that job.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collabzone.errors import InvalidInputError

if TYPE_CHECKING:
    from collabzone.zone import Zone

log = logging.getLogger("collabzone.federated.aggregator")
TECHNIQUE = "federated"
_KEYS = {"aggregator", "host", "port", "advertised", "certificates", "hosts", "insecure",
         "poll", "join_timeout", "run_timeout"}  # fmt: skip


@dataclass(frozen=True)
class AggregatorConfig:
    """The ``[federated]`` section of ``zone.toml`` (see the module docstring)."""

    mode: str = "flower"
    host: str = "0.0.0.0"
    port: int = 9092
    advertised: str | None = None
    certificates: Path | None = None
    hosts: tuple[str, ...] = ()
    insecure: bool = False
    poll: float = 1.0
    join_timeout: float = 600.0
    run_timeout: float = 3600.0

    @classmethod
    def parse(cls, doc: dict[str, Any], root: Path) -> AggregatorConfig:
        """Validate the section (an unknown key is an error, not ignored)."""
        unknown = set(doc) - _KEYS
        if unknown:
            raise InvalidInputError(f"[federated] in zone.toml has no {', '.join(sorted(unknown))}")
        mode = doc.get("aggregator", "flower")
        if mode not in ("flower", "local"):
            raise InvalidInputError('[federated] aggregator must be "flower" or "local"')
        certificates = doc.get("certificates")
        try:
            return cls(
                mode=mode,
                host=str(doc.get("host", "0.0.0.0")),
                port=int(doc.get("port", 9092)),
                advertised=doc.get("advertised"),
                certificates=(root / str(certificates)) if certificates else None,
                hosts=tuple(str(h) for h in doc.get("hosts", ())),
                insecure=bool(doc.get("insecure", False)),
                poll=float(doc.get("poll", 1.0)),
                join_timeout=float(doc.get("join_timeout", 600.0)),
                run_timeout=float(doc.get("run_timeout", 3600.0)),
            )
        except (TypeError, ValueError):
            raise InvalidInputError(
                "[federated] in zone.toml: a value has the wrong type"
            ) from None


class Aggregator:
    """One background thread running the zone's approved federated jobs (one at a time)."""

    def __init__(self, zone: Zone, config: AggregatorConfig, workdir: Path) -> None:
        self.zone = zone
        self.config = config
        self.workdir = workdir
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._link: Any = None  # the running job's FlowerLink (close() stops its SuperLink)
        self.last_link: Any = None
        """The last job's FlowerLink (its ``raw`` ServerApp record: tests inspect it)."""

    def start(self) -> Aggregator:
        self._thread = threading.Thread(target=self._loop, name="fl-aggregator", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 30.0) -> None:
        """Stop polling; a running job's SuperLink is stopped, which fails that job."""
        self._stop.set()
        link = self._link
        if link is not None:
            link.deployment.stop()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.config.poll):
            try:
                self.poll_once()
            except Exception:  # the loop outlives one bad poll (e.g. the database away)
                log.exception("federated aggregator: poll failed")

    def poll_once(self) -> list[str]:
        """Run every approved federated job waiting now; returns their ids."""
        done = []
        for request_id in self.zone.approved_fanout(TECHNIQUE):
            if self._stop.is_set():
                break
            self.run_job(request_id)
            done.append(request_id)
        return done

    def run_job(self, request_id: str) -> None:
        """Take the job and run it to its release (or its failure, audited)."""
        from collabzone.techniques.federated import _coordinator

        try:
            self.zone.start_fanout(request_id, {"aggregator": self.config.mode})
        except InvalidInputError:
            return  # another aggregator took it, or an owner's refusal came first
        try:
            if self.config.mode == "local":
                self._run_local(request_id)
                return
            spec = self.zone.fanout_job(request_id)["plan"]["details"]["spec"]
            if spec.get("task") == "analytics":  # its secure sum has no Flower app yet
                self.zone.fail_fanout(
                    request_id,
                    "federated analytics runs on the in-process path only "
                    '(aggregator = "local"); the Flower deployment trains models',
                )
                return
            link = _coordinator.open_flower(
                self.zone, request_id, self.workdir / request_id, self._tls(),
                self.config.host, self.config.port, self.config.advertised,
            )  # fmt: skip
            self._link = self.last_link = link
            try:
                _coordinator.run_flower(self.zone, link, timeout=self.config.run_timeout)
            finally:
                self._link = None
        except Exception as exc:  # run/run_flower failed the job already; make sure
            log.warning("federated job %s stopped: %s", request_id, type(exc).__name__)
            self.zone.fail_fanout(request_id, _coordinator._message(exc))

    def _run_local(self, request_id: str) -> None:
        from collabzone.techniques.federated import _coordinator

        link = _coordinator.open_link(self.zone, request_id)
        deadline = time.monotonic() + self.config.join_timeout
        while link.missing():
            if self._stop.is_set() or time.monotonic() > deadline:
                missing = ", ".join(link.missing())
                self.zone.fail_fanout(
                    request_id, f"the nodes of {missing} did not join the job in time"
                )
                with _coordinator._LOCK:
                    _coordinator._LINKS.pop(request_id, None)
                return
            time.sleep(min(0.05, self.config.poll))
        _coordinator.run(self.zone, request_id)

    def _tls(self) -> Any:
        from collabzone.techniques.federated import _tls

        if self.config.insecure:
            return None
        if self.config.certificates is not None:
            return _tls.Certificates.at(self.config.certificates)
        folder = self.workdir.parent / "fl-certs"
        if (folder / _tls.CERT_FILE).is_file():
            return _tls.Certificates.at(folder)
        hosts = self.config.hosts or (socket.getfqdn(), "localhost", "127.0.0.1")
        issued = _tls.issue(folder, hosts, zone_id=self.zone.zone_id)
        log.warning("issued the SuperLink's TLS certificates; hand %s to the owners", issued.ca)
        return issued


def start(zone: Zone) -> Aggregator | None:
    """The server's aggregator when ``zone.toml`` has a ``[federated]`` section, else None
    (approved jobs then wait for a host call, ``_coordinator.open_flower``/``run_flower``)."""
    path = Path(zone.root) / "zone.toml"
    doc = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    section = doc.get("federated")
    if not isinstance(section, dict):
        return None
    config = AggregatorConfig.parse(section, Path(zone.root))
    return Aggregator(zone, config, Path(zone.root) / "server" / "federated").start()
