"""An owner's node takes part in a federated job, after checking it is what its owner approved.

Called by the node agent (:class:`collabzone.node.NodeAgent`) for a fan-out job it pulled.
Before it reads a row the node checks, in this order:

1. its owner approved this request **at this node** (the agent's approval book holds the
   spec digest the owner was shown when approving; an auto-approving agreement leaves no
   entry, so the node refuses: a federated job needs its owner's explicit approval);
2. the spec the zone sends hashes to that digest (a spec changed after approval, one more
   round or one more column, is refused here whatever the zone says);
3. the zone signed that digest with its job-signing key (pinned by the agent when given).

Then it encodes its own dataset by the public domains of the plan and joins the job's
link (:mod:`._coordinator`); the rows stay in the node's memory. On the deployment path
(the agent knows the zone's SuperLink address) it starts its SuperNode instead, whose
ClientApp checks the signed spec against the same approved digest before it reads the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collabzone.errors import NotAuthorisedError
from collabzone.techniques.base import Plan, RunContext
from collabzone.techniques.federated import _coordinator, _data, _deploy, _spec
from collabzone.techniques.federated._federation import ClientData


def check(
    plan: Plan,
    context: Mapping[str, Any],
    owner: str,
    approved: str | None,
    pinned_key: str | None,
) -> _spec.JobSpec:
    """The spec, if this node may run it (see the module docstring); else NotAuthorisedError."""
    spec = _spec.from_json(plan.details["spec"])
    if approved is None:
        raise NotAuthorisedError(
            f"{owner!r} did not approve this federated job at its node; the node refuses it "
            "(approve it with the node's approval book, e.g. NodeAgent.approve)"
        )
    key_hex = pinned_key or str(context.get("zone_key", ""))
    if pinned_key is not None and context.get("zone_key") not in (None, pinned_key):
        raise NotAuthorisedError("the job is signed by a key other than the zone's pinned key")
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex))
    except ValueError:
        raise NotAuthorisedError("the job carries no valid zone signing key; refused") from None
    _spec.verify(spec, approved, str(context.get("signature", "")), key)
    return spec


_SUPERNODES: dict[tuple[str, str], _deploy.Deployment] = {}


def join(
    request_id: str,
    plan: Plan,
    ctx: RunContext,
    owner: str,
    spec: _spec.JobSpec,
    options: Mapping[str, Any] | None = None,
) -> bool:
    """Join the job: in-process, the link with this node's client (False if the zone's
    aggregator has not opened it yet: the agent tries again on its next poll); with
    ``options["superlink"]`` (deployment path), start this owner's SuperNode against the
    zone's SuperLink, its node config naming the local file and the approved digest."""
    options = options or {}
    mine = [d for d, o in plan.details["owners"].items() if o == owner]
    if len(mine) != 1:
        raise NotAuthorisedError(f"{owner!r} holds no dataset of this job")
    if options.get("superlink"):
        root = Path(options["workdir"]) / f"{request_id}-{owner}"
        root.mkdir(parents=True, exist_ok=True)
        deployment = _deploy.Deployment(root)
        node_config = {
            "data-path": str(options["paths"][mine[0]]),
            "approved-sha256": str(options["approved"]),
            **dict(options.get("node_config") or {}),
        }
        ca = options.get("root_certificates")
        _deploy.start_supernode(
            deployment, owner, str(options["superlink"]), node_config, Path(ca) if ca else None
        )
        _SUPERNODES[(request_id, owner)] = deployment
        return True
    link = _coordinator.link_for(request_id)
    if link is None:
        return False
    frame = ctx.table(mine[0]).to_pandas()
    domains = plan.details["domains"]
    if spec.task == "analytics":
        link.join(_coordinator.NodeClient(owner, None, frame))
        return True
    x = _data.encode(frame, spec.features, domains)
    y = _data.encode_label(frame, str(spec.label), domains[str(spec.label)])
    link.join(_coordinator.NodeClient(owner, ClientData(owner, x, y)))
    return True


def leave(request_id: str, owner: str) -> None:
    """Stop this owner's SuperNode of a finished job (if it started one)."""
    deployment = _SUPERNODES.pop((request_id, owner), None)
    if deployment is not None:
        deployment.stop()
