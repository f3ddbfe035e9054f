"""The ``he_sum`` technique: the sum of providers' encrypted vectors, as a zone request.

The zone acts as the HE mediator of :mod:`collabzone.techniques.mpc._he`. The recipient's
client publishes its public CKKS context into the zone's HE inbox (:func:`publish_context`);
each provider encrypts its vector (per-category counts or sums) under it **at its own
premises** (:func:`~collabzone.techniques.mpc._he.encrypt`) and deposits the ciphertext
for its dataset (:func:`deposit`). An analyst then asks for the total
(spec: ``datasets``, ``recipient``).

* ``plan`` checks the datasets are in the catalogue (metadata only: the values never reach
  the zone) and the recipient is a party.
* ``check`` is pure: each provider's ``he_sum`` agreement must name the recipient
  (``recipients``), and the number of distinct providers must reach the largest
  ``min_providers`` of the agreements (never below 2: a sum of one provider is its data).
  Datasets of the requester or the recipient do not count as providers (padding a
  victim's vector with one's own zeros is the attack
  :func:`collabzone.attacks.he_self_padding`).
* ``run`` first audits the release against every earlier ``he_sum`` release, across all
  analysts (:func:`_audit_providers`): the providers are the units of a disclosure-audit
  space (:mod:`collabzone.disclosure`, ``he_sum:providers``), each release one cell of its
  contributors, and a release that would leave an atom (a set of providers no
  combination of totals splits further) under ``min_providers`` is refused: the totals of
  {A, B, C} and then {B, C} differ by A's vector (:func:`collabzone.attacks.he_differencing`).
  The new space goes out in :attr:`Outcome.audit_updates`, stored with the release. It
  then adds the deposited ciphertexts with the public context only; the zone never holds
  the secret key, so it cannot read the vectors or the total.
  With ``epsilon`` in the spec, the zone then adds encrypted Laplace noise of scale
  (sum of the datasets' declared ``contribution_bound``) / epsilon to the total
  (:mod:`collabzone.techniques.mpc._he_noise`), so the recipient only ever decrypts a
  noisy total; ``plan`` prices epsilon on every dataset and the release debits it.
* ``release`` re-checks the provider count (and the noise an agreement requires) and
  lets out only the encrypted total (base64, with its SHA-256), to the requester and the
  recipient, whose client alone decrypts it (:func:`open_total`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from collabzone import disclosure
from collabzone.budget import PrivacyCost, privacy_parameter
from collabzone.errors import (
    ConflictError,
    InternalError,
    InvalidInputError,
    PolicyRefusal,
    Reason,
)
from collabzone.techniques.base import (
    AuditUpdate,
    Merge,
    Outcome,
    Plan,
    PlanContext,
    Rules,
    RuleSpec,
    RunContext,
    Technique,
)
from collabzone.techniques.mpc._he import RecipientKeys, aggregate
from collabzone.techniques.view import ResultView

MIN_PROVIDERS_FLOOR = 2
NO_SECRET_KEY = (
    "the zone never held the recipient's secret key: it added the providers' ciphertexts "
    "under the public CKKS context, and only the recipient's client can decrypt the total"
)
_SAFE_KEYS = frozenset(
    {"datasets", "recipient", "providers", "ciphertext", "sha256", "deposits", "epsilon",
     "noise_scale"}
)  # fmt: skip
_SPEC_KEYS = frozenset({"datasets", "recipient", "epsilon"})
CONTEXT_FILE = "context.pub"
AUDIT_SPACE = "he_sum:providers"
"""One audited space for every he_sum release, whoever asked (differencing needs only two
totals, and analysts may pool what they received)."""
PROVIDER_KEY_PURPOSE = "he_sum/provider-hash"


def _safe(name: str, what: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise InvalidInputError(f"{what} {name!r} is not a plain name")
    return name


def recipient_folder(inbox: Path, recipient: str) -> Path:
    """Where ``recipient``'s context and the ciphertexts deposited for it live."""
    return Path(inbox) / _safe(recipient, "recipient")


def publish_context(inbox: Path, recipient: str, public_context: bytes) -> Path:
    """Store the recipient's public context where providers and the mediator read it."""
    folder = recipient_folder(inbox, recipient)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONTEXT_FILE
    path.write_bytes(public_context)
    return path


def deposit(inbox: Path, recipient: str, dataset: str, ciphertext: bytes) -> Path:
    """Store a provider's ciphertext (made at its premises) for ``dataset``."""
    folder = recipient_folder(inbox, recipient)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_safe(dataset, 'dataset')}.ckks"
    path.write_bytes(ciphertext)
    return path


def open_total(payload: Mapping[str, Any], keys: RecipientKeys) -> list[float]:
    """The recipient's client: check the released ciphertext's SHA-256 and decrypt it."""
    ciphertext = base64.b64decode(payload["ciphertext"])
    if hashlib.sha256(ciphertext).hexdigest() != payload["sha256"]:
        raise InvalidInputError("the released ciphertext does not match its SHA-256")
    return keys.decrypt(ciphertext)


def _min_providers(rules: Rules) -> int:
    asked = [int(r.get("min_providers") or 0) for r in rules.by_dataset.values()]
    return max([MIN_PROVIDERS_FLOOR, *asked])


def _run_minimum(plan: Plan, ctx: RunContext) -> int:
    """The largest ``min_providers`` of the he_sum agreements behind the plan (the floor if
    none is visible here: the zone's pure check already refused a plan below them)."""
    found = [
        int(a.rules["min_providers"])
        for name in plan.datasets
        for a in ctx.agreements_for(name)
        if a.technique == "he_sum" and isinstance(a.rules.get("min_providers"), int)
    ]
    return max([MIN_PROVIDERS_FLOOR, *found])


def _run_bounds(plan: Plan, ctx: RunContext) -> dict[str, float]:
    """Each dataset's declared ``contribution_bound``: the largest of its he_sum agreements
    (conservative: more noise), 0 for the requester's own dataset without one (its owner
    asked for the total). Raises :class:`ConflictError` for another provider's dataset
    without one (the pure check refused such a plan; an agreement changed since)."""
    bounds: dict[str, float] = {}
    for name in plan.datasets:
        found = [
            float(a.rules["contribution_bound"])
            for a in ctx.agreements_for(name)
            if a.technique == "he_sum"
            and isinstance(a.rules.get("contribution_bound"), int | float)
        ]
        if found:
            bounds[name] = max(found)
        elif plan.details["owners"][name] == ctx.requester.name:
            bounds[name] = 0.0
        else:
            raise ConflictError(
                f"no he_sum agreement on {name!r} declares a contribution_bound any more: "
                "submit the request again"
            )
    return bounds


def _audit_providers(plan: Plan, ctx: RunContext) -> AuditUpdate:
    """Add this release (one cell: its contributing providers) to the providers' space.

    Every owner of a summed dataset is a member, the requester and the recipient too (the
    recipient decrypts their vectors as well). Raises :class:`PolicyRefusal`
    (``DIFFERENCING``) when an atom of providers would fall under ``min_providers``. An
    atom of no provider (two releases with disjoint providers: the audit's region "in
    both") discloses no vector, so it does not refuse.
    """
    needed = _run_minimum(plan, ctx)
    owners = sorted(set(plan.details["owners"].values()))
    members = disclosure.text_hashes(owners, ctx.derive_key(PROVIDER_KEY_PURPOSE))
    stored = ctx.audit_state(AUDIT_SPACE)
    current = disclosure.Space.from_bytes(stored[1]) if stored else disclosure.Space()
    result = disclosure.audit(
        current,
        disclosure.ReleasedCells(members=[members]),
        {},
        duckdb.connect(),  # no conditions: no grid to query (and no data: it is encrypted)
        min_size=needed,
    )
    finding = result.finding
    if finding.small_atoms > finding.empty_regions:
        raise PolicyRefusal(
            Reason("DIFFERENCING", "min_providers",
                   f"with the he_sum totals already released (to any analyst), this total "
                   f"would single out a group of {finding.smallest} provider(s), fewer than "
                   f"min_providers={needed}: the difference of two totals would be their "
                   "vector. Ask for the same providers as an earlier total, or for sets "
                   f"that differ by at least {needed} providers")
        )  # fmt: skip
    return AuditUpdate(AUDIT_SPACE, stored[0] if stored else None, result.space.to_bytes())


def _noise_reasons(epsilon: float | None, rules: Rules) -> list[Reason]:
    """A total without noise over a dataset whose agreement requires it."""
    if epsilon is not None or not rules.get("require_noise"):
        return []
    return [
        Reason("NOISE_REQUIRED", "require_noise",
               "an agreement behind this total requires DP noise: add 'epsilon' to the spec")
    ]  # fmt: skip


class HESum(Technique):
    """Sum of providers' CKKS-encrypted vectors, added by the zone as a keyless mediator."""

    name = "he_sum"
    summary = "sum of vectors encrypted under the recipient's key, added without it (TenSEAL)"
    rule_specs = (
        RuleSpec("recipients", Merge.SUBSET, "parties that may decrypt a total ('*': any)", list),
        RuleSpec(
            "min_providers",
            Merge.AT_LEAST,
            "fewest distinct providers a total may combine",
            int,
            floor=MIN_PROVIDERS_FLOOR,
        ),
        RuleSpec(
            "contribution_bound",
            Merge.PER_DATASET,
            "most this dataset's vector changes (L1) when one person is added or removed; "
            "needed for DP noise (epsilon)",
            (int, float),
        ),
        RuleSpec("require_noise", Merge.ANY, "totals over this dataset must carry DP noise", bool),
    )

    def __init__(self, inbox: Path | None = None) -> None:
        self.inbox = inbox

    def plan(self, spec: Mapping[str, Any], ctx: PlanContext) -> Plan:
        datasets = spec.get("datasets")
        recipient = spec.get("recipient")
        if (
            not isinstance(datasets, list)
            or not datasets
            or not all(isinstance(d, str) for d in datasets)
        ):
            raise InvalidInputError("'datasets' must be a non-empty list of dataset names")
        if len(set(datasets)) != len(datasets):
            raise InvalidInputError("'datasets' names a dataset twice")
        if not isinstance(recipient, str) or not recipient:
            raise InvalidInputError("'recipient' must name the party that decrypts the total")
        if set(spec) - _SPEC_KEYS:
            raise InvalidInputError(
                f"unknown keys {sorted(set(spec) - _SPEC_KEYS)}: an he_sum spec has "
                "'datasets', 'recipient' and optionally 'epsilon' (DP noise)"
            )
        epsilon = spec.get("epsilon")
        cost: dict[str, PrivacyCost] = {}
        if epsilon is not None:
            epsilon = privacy_parameter("epsilon", epsilon)
            # one release is epsilon-DP for a person wherever they are: each dataset pays it
            cost = {name: PrivacyCost(epsilon=epsilon) for name in datasets}
        ctx.party(recipient)  # the recipient must be a party of the zone
        owners = {name: ctx.dataset(name).owner for name in datasets}
        # the requester's and the recipient's own vectors do not count: padding a victim's
        # vector with one's own zeros would otherwise pass a minimum of two providers
        providers = len(set(owners.values()) - {ctx.requester.name, recipient})
        noisy = "" if epsilon is None else f" with Laplace noise (epsilon {epsilon:g})"
        return Plan(
            technique=self.name,
            datasets=tuple(datasets),
            cost=cost,
            outputs=f"the encrypted total of {len(datasets)} vectors{noisy}, "
            f"decrypted by {recipient!r}",
            details={
                "recipient": recipient,
                "owners": owners,
                "providers": providers,
                "epsilon": epsilon,
            },
        )

    def check(self, plan: Plan, rules: Rules, ctx: PlanContext) -> list[Reason]:
        recipient = plan.details["recipient"]
        reasons: list[Reason] = []
        for name in plan.datasets:
            own = rules.by_dataset.get(name, {})
            owner = plan.details["owners"][name]
            if owner == ctx.requester.name and not own:
                continue  # the requester's own data: no agreement needed
            recipients = own.get("recipients") or []
            if recipient not in recipients and "*" not in recipients:
                reasons.append(
                    Reason("RECIPIENT_NOT_GRANTED", "recipients",
                           f"{recipient!r} may not receive totals over {name!r}", owner)
                )  # fmt: skip
            if plan.details.get("epsilon") is not None and own.get("contribution_bound") is None:
                reasons.append(
                    Reason("BOUND_NOT_DECLARED", "contribution_bound",
                           f"DP noise needs the owner of {name!r} to declare its vector's "
                           "contribution_bound (L1 change per person) in its he_sum "
                           "agreement", owner)
                )  # fmt: skip
        reasons.extend(_noise_reasons(plan.details.get("epsilon"), rules))
        providers = int(plan.details["providers"])
        needed = _min_providers(rules)
        if providers < needed:
            reasons.append(
                Reason("TOO_FEW_PROVIDERS", "min_providers",
                       f"the total combines {providers} provider(s) other than the requester "
                       f"and the recipient; the agreements require at least {needed}: add "
                       "datasets of other providers")
            )  # fmt: skip
        return reasons

    def run(self, plan: Plan, ctx: RunContext) -> Outcome:
        inbox = Path(self.inbox) if self.inbox is not None else ctx.technique_dir()
        recipient = plan.details["recipient"]
        folder = recipient_folder(inbox, recipient)
        context_path = folder / CONTEXT_FILE
        if not context_path.is_file():
            raise ConflictError(f"{recipient!r} has not published its public context yet")
        update = _audit_providers(plan, ctx)  # before touching any ciphertext
        ciphertexts, deposits = [], []
        for name in plan.datasets:
            path = folder / f"{_safe(name, 'dataset')}.ckks"
            if not path.is_file():
                raise ConflictError(
                    f"no ciphertext deposited for {name!r} under {recipient!r}'s key: its "
                    "provider must encrypt its vector and deposit it first"
                )
            ciphertexts.append(path.read_bytes())
            deposits.append(
                {"dataset": name, "provider": plan.details["owners"][name],
                 "deposited": int(path.stat().st_mtime)}
            )  # fmt: skip
        providers = int(plan.details["providers"])
        public = context_path.read_bytes()
        # distinct providers were checked against the agreements; the floor again here
        total = aggregate(public, ciphertexts, min_providers=MIN_PROVIDERS_FLOOR)
        epsilon, scale, mechanism = plan.details.get("epsilon"), None, None
        if epsilon is not None:
            from collabzone.techniques.mpc import _he_noise

            l1 = _he_noise.sensitivity(_run_bounds(plan, ctx))
            total, scale = _he_noise.noisy_total(public, total, l1=l1, epsilon=float(epsilon))
            mechanism = f"{_he_noise.MECHANISM} (epsilon {epsilon:g}, L1 sensitivity {l1:g})"
        noise = {} if epsilon is None else {"epsilon": epsilon, "noise_scale": scale}
        return Outcome(
            payload={
                "datasets": list(plan.datasets),
                "recipient": recipient,
                "providers": providers,
                "ciphertext": base64.b64encode(total).decode("ascii"),
                "sha256": hashlib.sha256(total).hexdigest(),
                "deposits": deposits,
                **noise,
            },
            mechanism=mechanism,
            noise_scale=scale,
            spent=dict(plan.cost),
            released_to=tuple(dict.fromkeys((ctx.requester.name, recipient))),
            notes=(NO_SECRET_KEY,),
            audit_updates=(update,),
        )

    def release(self, plan: Plan, outcome: Outcome, rules: Rules) -> Outcome:
        extra = set(outcome.payload) - _SAFE_KEYS
        if extra:
            raise InternalError(
                f"an he_sum outcome may carry only the encrypted total, not {extra}"
            )
        needed = _min_providers(rules)
        if int(outcome.payload["providers"]) < needed:
            raise PolicyRefusal(
                Reason("TOO_FEW_PROVIDERS", "min_providers",
                       f"the total combines {outcome.payload['providers']} provider(s), "
                       f"fewer than {needed}")
            )  # fmt: skip
        refusals = _noise_reasons(outcome.payload.get("epsilon"), rules)
        if refusals:
            raise PolicyRefusal(refusals)
        return outcome

    def result_view(self, payload: Mapping[str, Any]) -> ResultView:
        """Status, the deposits added (provider, when), never the ciphertext or a value."""
        from collabzone.techniques.mpc._views import he_view

        return he_view(payload)


__all__: Sequence[str] = (
    "AUDIT_SPACE",
    "NO_SECRET_KEY",
    "HESum",
    "deposit",
    "open_total",
    "publish_context",
)
