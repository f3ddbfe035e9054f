"""MPC share packages over the network: the zone relays packages sealed to each server.

A real zone server process on 127.0.0.1; the provider's ``collabzone mpc upload --send``
and each compute server's ``collabzone mpc relay-key`` / ``fetch`` talk to it over HTTP.
Each server ends up with exactly its own shares, the relay only ever held sealed bytes,
and nobody can read, post or take what is not theirs.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from collabzone.errors import InvalidInputError, NotAuthorisedError, NotFoundError
from collabzone.keys import MASTER_KEY_ENV, new_master_key
from collabzone.techniques.mpc._relay import Mailbox, seal, unseal
from collabzone.techniques.mpc._relay_party import (
    Relay,
    fetch_packages,
    relay_root,
    send_packages,
)
from collabzone.techniques.mpc._shares import decode, recombine
from collabzone.techniques.mpc._store import ShareStore
from collabzone.zone import init
from tests.server.conftest import (
    ROLES,
    Handles,
    remote_handles,
    run_cli,
    start_server,
)

SERVERS = ("s0", "s1", "s2")
ROWS = 60
SPEC = {"columns": [{"name": "age", "type": "float", "class": "measure",
                     "domain": {"min": 0, "max": 100}}]}  # fmt: skip


def _ages(path: Path) -> np.ndarray:
    ages = np.random.default_rng(4).integers(18, 90, ROWS).astype(float)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["age"])
        writer.writerows([[a] for a in ages])
    return ages


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Handles]:
    """One zone server process for the module (each test uses its own servers and dataset):
    starting one costs seconds on a loaded machine."""
    root = tmp_path_factory.mktemp("relay") / "zone"
    key = new_master_key()
    operator, operator_token = init(root, master_key=key)
    tokens = {"operator": operator_token}
    for name, roles in ROLES.items():
        tokens[name] = operator.add_party(name, roles)[1]
    server = start_server(root, env={MASTER_KEY_ENV: key})
    h = remote_handles(server, tokens)
    yield Handles(root, "remote", h["operator"], h["bank"], h["partner"], h["insurer"],
                  h["auditor"], tokens, server)  # fmt: skip
    for handle in h.values():
        handle.close()
    server.stop()


def test_packages_reach_each_server_sealed_through_the_zone(
    served: Handles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    assert served.server is not None
    url = served.server.url
    tokens = dict(served.tokens)
    for name in SERVERS:
        tokens[name] = served.operator.add_party(name, ["compute"])[1]
    keys = {name: new_master_key() for name in SERVERS}

    def run(party: str, *args: str) -> str:
        monkeypatch.setenv(MASTER_KEY_ENV, keys.get(party, "unused"))
        code, out = run_cli(monkeypatch, capsys, "--zone", url, "--token", tokens[party], *args)
        assert code == 0, out
        return out

    stores = {name: tmp_path / name for name in SERVERS}
    pins = []
    for name in SERVERS:
        out = run(name, "mpc", "relay-key", "--store", str(stores[name]))
        found = re.search(r"fingerprint ([0-9a-f]{16})", out)
        assert found, out
        pins += ["--fingerprint", f"{name}:{found.group(1)}"]
    served.partner.register_dataset("ages", SPEC, row_count=ROWS)
    ages = _ages(tmp_path / "ages.csv")
    upload = ("mpc", "upload", str(tmp_path / "ages.csv"), "--dataset", "ages",
              "--provider", "partner", "--column", "age:0:100", "--report", "mean",
              "--recipient", "bank", *(a for s in SERVERS for a in ("--send", s)), *pins)  # fmt: skip
    out = run("partner", *upload)
    assert out.count("relayed") == 3

    # the relay holds only sealed bytes: no share, no holding, no plain JSON
    mailboxes = {s: Mailbox(relay_root(served.root), s) for s in SERVERS}
    blobs = {s: mailboxes[s].read(mailboxes[s].waiting()[0]["id"]) for s in SERVERS}
    for server, blob in blobs.items():
        assert b"holding" not in blob and b"shares" not in blob and b"partner" not in blob
        assert mailboxes[server].waiting()[0]["provider"] == "partner"
    # a server fetches its own mailbox only...
    first = mailboxes["s0"].waiting()[0]["id"]
    assert "stored 1 package(s): ages" in run("s1", "mpc", "fetch", "--store", str(stores["s1"]))
    assert [len(mailboxes[s].waiting()) for s in SERVERS] == [1, 0, 1]
    # ...and a package sealed to s0 does not open with s1's key (nor with a fresh store's)
    for name, store in (("s1", stores["s1"]), ("s0", tmp_path / "thief")):
        with pytest.raises(InvalidInputError, match="not sealed to this server"):
            unseal(blobs["s0"], ShareStore(store, keys[name]).relay_key())
    thief = ("mpc", "fetch", "--store", str(tmp_path / "thief"))
    monkeypatch.setenv(MASTER_KEY_ENV, keys["s0"])
    code, text = run_cli(monkeypatch, capsys, "--zone", url, "--token", tokens["s0"], *thief)
    assert code != 0 and "not sealed to this server" in text  # and it stays in the mailbox
    assert len(mailboxes["s0"].waiting()) == 1

    run("s0", "mpc", "fetch", "--store", str(stores["s0"]), "--index", "0")
    run("s2", "mpc", "fetch", "--store", str(stores["s2"]), "--index", "2")
    assert all(not mailboxes[s].waiting() for s in SERVERS)  # the relay keeps nothing
    with pytest.raises(NotFoundError, match="no package"):
        mailboxes["s0"].read(first)

    shares = {}
    for index, name in ((0, "s0"), (2, "s2")):
        held = ShareStore(stores[name], keys[name])
        assert held.holdings()["ages"].provider == "partner"
        shares[index] = [int(v) for v in held.shares("ages", ["age"])["age"]]
    # any two servers (t = 1) recombine the clipped, normalised ages; one alone cannot
    assert np.allclose(np.array(decode(recombine(shares, 1))) * 100, ages, atol=1e-6)


def test_only_the_right_parties_use_the_relay(served: Handles, tmp_path: Path) -> None:
    """Access rules over HTTP: keys by their server, posts by the owner, mailboxes by theirs."""
    assert served.server is not None
    from collabzone.client import connect_remote

    tokens = {n: served.operator.add_party(n, ["compute"])[1] for n in ("a0", "a1")}
    s0, s1 = (connect_remote(served.server.url, client_id=n, client_secret=tokens[n])
              for n in ("a0", "a1"))  # fmt: skip
    key = bytes(ShareStore(tmp_path / "a0", new_master_key()).relay_key().public_key)
    with pytest.raises(NotAuthorisedError, match="only 'a1' publishes"):
        s0.octets("PUT", "/v1/mpc/relay/a1/key", key)
    s0.octets("PUT", "/v1/mpc/relay/a0/key", key)
    assert served.bank.octets("GET", "/v1/mpc/relay/a0/key") == key
    served.partner.register_dataset("ages2", SPEC, row_count=ROWS)
    sealed = seal({"holding": {}, "shares": {}}, key)
    with pytest.raises(NotAuthorisedError, match="does not own a dataset 'ages2'"):
        served.bank.octets("POST", "/v1/mpc/relay/a0/uploads/ages2", sealed)
    with pytest.raises(InvalidInputError, match="not a compute server"):
        served.partner.octets("POST", "/v1/mpc/relay/bank/uploads/ages2", sealed)
    Relay(served.partner).post("a0", "ages2", sealed)
    with pytest.raises(NotAuthorisedError, match="only 'a0' reads"):
        s1.octets("GET", "/v1/mpc/relay/a0/packages")
    waiting = Relay(s0).waiting("a0")
    assert [(w["provider"], w["dataset"]) for w in waiting] == [("partner", "ages2")]
    with pytest.raises(NotAuthorisedError, match="only 'a0' reads"):
        s1.octets("DELETE", f"/v1/mpc/relay/a0/packages/{waiting[0]['id']}")
    for handle in (s0, s1):
        handle.close()


def test_a_package_naming_another_provider_is_refused_by_the_server(
    served: Handles, tmp_path: Path
) -> None:
    """The zone says who posted; a package claiming another provider stays unopened."""
    from collabzone.techniques.mpc import split_upload

    assert served.server is not None
    token = served.operator.add_party("b0", ["compute"])[1]
    s0 = served.operator.as_party(token)
    store = ShareStore(tmp_path / "b0", new_master_key())
    Relay(s0).publish_key(bytes(store.relay_key().public_key))
    served.partner.register_dataset("ages3", SPEC, row_count=2)
    forged = split_upload("ages3", "insurer", {"age": np.array([1.0, 2.0])},
                          {"age": (0.0, 100.0)}, reports=["mean"], recipients=["bank"],
                          min_group_size=1, servers=1, threshold=0)[0]  # fmt: skip
    with pytest.raises(InvalidInputError, match="another provider"):
        send_packages(Relay(served.partner), "ages3", [forged], ["b0"])
    honest = split_upload("ages3", "partner", {"age": np.array([1.0, 2.0])},
                          {"age": (0.0, 100.0)}, reports=["mean"], recipients=["bank"],
                          min_group_size=1, servers=1, threshold=0)  # fmt: skip
    with pytest.raises(NotAuthorisedError, match="fingerprint"):  # a key swapped by the zone
        send_packages(Relay(served.partner), "ages3", honest, ["b0"], expected={"b0": "0" * 16})
    assert Relay(s0).waiting("b0") == []
    key = Relay(served.partner).key("b0")
    Relay(served.partner).post("b0", "ages3", seal(forged, key))  # by hand, past the client
    with pytest.raises(NotAuthorisedError, match="'partner' posted it"):
        fetch_packages(Relay(s0), "b0", store)
    assert store.holdings() == {} and len(Relay(s0).waiting("b0")) == 1
