"""The Flower apps of a federated training job: the zone's ServerApp and the owners' ClientApp.

Deployment (see :mod:`._deploy`): the zone runs a SuperLink and, through it, this
``server_app``; each owner's node runs a SuperNode whose ``client_app`` reads only the CSV
its owner named in the SuperNode's node config (``data-path``). Both sides get the job spec
through the run config and refuse it unless it hashes to what was approved and carries the
zone's signature (the node checks against the digest its *owner* approved, from its own
node config: ``approved-sha256``).

Server side: ``DefaultWorkflow(fit_workflow=SecAggPlusWorkflow)`` so the strategy only ever
receives the SecAgg+ sum, wrapped in ``DifferentialPrivacyClientSideFixedClipping`` (Gaussian
noise of std ``noise_multiplier * clipping_norm / n`` on the mean; clients clip with
``fixedclipping_mod``). FedAdam's server optimiser runs *after* the noise (:class:`_NoisyThenAdam`),
so its input is the DP mean. The number of rounds is the most that fit in the job's epsilon
budget; what the strategy received in each round is written to the result file, with the
final model and the per-round records (the zone's audit events). Live, :class:`_Reporting`
(the outermost strategy) appends each round's global model *after* the noise (and Adam's
step) to a progress file the zone tails to score the round on the analyst's evaluation data.

Clients report ``num_examples = 1``: the mean is unweighted (the DP mechanism the
accountant prices) and no owner's row count leaves its node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from flwr.app import Message, MessageType
from flwr.client import NumPyClient
from flwr.client.mod import fixedclipping_mod, secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable, Mod
from flwr.common import (
    Context,
    FitRes,
    Parameters,
    Scalar,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.server import Grid, LegacyContext, ServerApp, ServerConfig
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    FedAvg,
    FedProx,
    Strategy,
)
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow

from collabzone.techniques.federated import _accounting, _data, _models, _spec

SECAGG_CLIPPING_RANGE = 64.0
"""SecAgg+ quantises parameters within +-this range (the models' weights stay far inside)."""


def job_from_config(config: dict[str, Any]) -> tuple[_spec.JobSpec, dict[str, Any]]:
    """The spec and public domains the run config carries, after checking the zone's
    signature over the approved digest."""
    spec = _spec.from_json(json.loads(str(config["spec-json"])))
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(config["zone-key"])))
    _spec.verify(spec, str(config["spec-sha256"]), str(config["signature"]), key)
    return spec, json.loads(str(config["domains-json"]))


# -- server side -------------------------------------------------------------------------


class _Recording(FedAvg):
    """FedAvg that writes down what reaches it: under SecAgg+, one already-summed result.

    What it aggregates is the mean *before* the DP noise: it goes to the ServerApp's
    ``server_received`` record only (tests inspect it; the zone never releases it), never
    to the progress file (:class:`_Reporting` writes the noised global model there)."""

    def __init__(self, log: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log = log

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        self.log.append(
            {
                "round": server_round,
                "results_received": len(results),
                "vectors": [
                    _models.flatten(parameters_to_ndarrays(r.parameters)).tolist()
                    for _, r in results
                ],
            }
        )
        return super().aggregate_fit(server_round, results, failures)


class _RecordingProx(_Recording, FedProx):
    """FedProx (sends ``proximal_mu`` to the clients) with the same record."""


class _NoisyThenAdam(Strategy):
    """Adam on the DP-noised mean update (Flower's FedAdam would add noise after Adam)."""

    def __init__(self, inner: Strategy, initial: list[np.ndarray]) -> None:
        self.inner = inner
        self.current = [p.copy() for p in initial]
        size = sum(p.size for p in initial)
        self.m, self.v = np.zeros(size), np.zeros(size)

    def initialize_parameters(self, client_manager: Any) -> Parameters | None:
        return self.inner.initialize_parameters(client_manager)

    def configure_fit(self, server_round: int, parameters: Parameters, client_manager: Any) -> Any:
        return self.inner.configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
        noisy, metrics = self.inner.aggregate_fit(server_round, results, failures)
        if noisy is None:
            return None, metrics
        flat = _models.flatten(self.current)
        delta = _models.flatten(parameters_to_ndarrays(noisy)) - flat
        self.m = 0.9 * self.m + 0.1 * delta
        self.v = 0.99 * self.v + 0.01 * delta * delta
        flat = flat + 0.1 * self.m / (np.sqrt(self.v) + 1e-9)
        self.current = _models.unflatten(flat, self.current)
        return ndarrays_to_parameters(self.current), metrics

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: Any
    ) -> Any:
        return []

    def aggregate_evaluate(self, server_round: int, results: Any, failures: Any) -> Any:
        return None, {}

    def evaluate(self, server_round: int, parameters: Parameters) -> Any:
        return None


class _Reporting(Strategy):
    """The outermost strategy: delegates everything to ``inner`` and, after each round's
    aggregation, appends ``{"round": r, "model": [...]}`` to ``progress`` (a JSON-lines file
    the zone tails), the global model as ``inner`` returns it.

    ``inner`` is the whole chain (DP noise, then FedAdam's server step when the job uses
    it), so the model written is the round's *noised* global model: a DP output the
    accountant already priced (it composes over the released rounds), whose evaluation
    by the zone is post-processing. The pre-noise mean never reaches this file."""

    def __init__(self, inner: Strategy, progress: Path) -> None:
        self.inner = inner
        self.progress = progress

    def initialize_parameters(self, client_manager: Any) -> Parameters | None:
        return self.inner.initialize_parameters(client_manager)

    def configure_fit(self, server_round: int, parameters: Parameters, client_manager: Any) -> Any:
        return self.inner.configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        parameters, metrics = self.inner.aggregate_fit(server_round, results, failures)
        if parameters is not None:
            model = [np.asarray(a).tolist() for a in parameters_to_ndarrays(parameters)]
            line = json.dumps({"round": server_round, "model": model}) + "\n"
            with self.progress.open("a", encoding="utf-8") as fh:
                fh.write(line)  # one write per line: the zone reads whole lines only
        return parameters, metrics

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: Any
    ) -> Any:
        return self.inner.configure_evaluate(server_round, parameters, client_manager)

    def aggregate_evaluate(self, server_round: int, results: Any, failures: Any) -> Any:
        return self.inner.aggregate_evaluate(server_round, results, failures)

    def evaluate(self, server_round: int, parameters: Parameters) -> Any:
        return self.inner.evaluate(server_round, parameters)


server_app = ServerApp()


@server_app.main()
def _server_main(grid: Grid, context: Context) -> None:
    config = dict(context.run_config)
    spec, domains = job_from_config(config)
    p = spec.privacy
    n_clients = len(spec.datasets)
    n_features = sum(_data.width(domains[f]) for f in spec.features)
    initial = _models.init_params(spec.model, n_features)
    budget = float(config["epsilon-budget"])
    rounds = _accounting.max_rounds(
        budget, p.sampling_rate, p.noise_multiplier, p.delta, spec.rounds
    )
    received: list[dict[str, Any]] = []
    common: dict[str, Any] = {
        "fraction_fit": p.sampling_rate,
        "fraction_evaluate": 0.0,
        "min_fit_clients": spec.min_clients,
        "min_available_clients": n_clients,
        "initial_parameters": ndarrays_to_parameters(initial),
    }
    progress = Path(str(config["progress-path"])) if config.get("progress-path") else None
    inner: Strategy = (
        _RecordingProx(received, proximal_mu=spec.proximal_mu, **common)
        if spec.strategy == "FedProx"
        else _Recording(received, **common)
    )
    strategy: Strategy = DifferentialPrivacyClientSideFixedClipping(
        inner, p.noise_multiplier, p.clipping_norm, max(1, round(p.sampling_rate * n_clients))
    )
    if spec.strategy == "FedAdam":
        strategy = _NoisyThenAdam(strategy, initial)
    outermost = strategy if progress is None else _Reporting(strategy, progress)
    legacy = LegacyContext(
        context=context, config=ServerConfig(num_rounds=rounds), strategy=outermost
    )
    fit = (
        SecAggPlusWorkflow(
            num_shares=n_clients,
            reconstruction_threshold=max(2, n_clients - 1),
            clipping_range=SECAGG_CLIPPING_RANGE,
            max_weight=1.0,  # every client weighs 1; the default (1000) scales the values
            # down 1000-fold before quantisation and costs three decimals of precision
        )
        if spec.secure_aggregation
        else None
    )
    DefaultWorkflow(fit_workflow=fit)(grid, legacy)
    params = getattr(strategy, "current", None) or _final_parameters(legacy)
    records = [
        {
            "round": r,
            "clients": n_clients,
            "clipping_norm": p.clipping_norm,
            "noise_std": p.noise_multiplier * p.clipping_norm,
            "epsilon": _accounting.epsilon(r, p.sampling_rate, p.noise_multiplier, p.delta),
        }
        for r in range(1, rounds + 1)
    ]
    out = {
        "model": [np.asarray(a).tolist() for a in params],
        "rounds": records,
        "epsilon": records[-1]["epsilon"] if records else 0.0,
        "stopped": None
        if rounds == spec.rounds
        else f"privacy budget: {rounds} of {spec.rounds} rounds fit in epsilon {budget:g}",
        "server_received": received,
    }
    Path(str(config["result-path"])).write_text(json.dumps(out), encoding="utf-8")


def _final_parameters(legacy: LegacyContext) -> list[np.ndarray]:
    """The global parameters the DefaultWorkflow left in the context's state."""
    from flwr.common import ArrayRecord

    record = legacy.state.array_records["parameters"]
    assert isinstance(record, ArrayRecord)
    return [a.numpy() for a in record.values()]


# -- client side (runs in the owner's SuperNode) -----------------------------------------


class _OwnerClient(NumPyClient):
    def __init__(self, spec: _spec.JobSpec, x: np.ndarray, y: np.ndarray, log: Path | None) -> None:
        self.spec, self.x, self.y, self.log = spec, x, y, log

    def fit(self, parameters: list[np.ndarray], config: dict[str, Scalar]) -> Any:
        how = _models.LocalTraining(
            epochs=self.spec.local_epochs,
            learning_rate=self.spec.learning_rate,
            proximal_mu=float(config.get("proximal_mu", 0.0)),
        )
        new = _models.train_local(
            parameters, self.x, self.y, how, seed=int(config.get("server_round", 0))
        )
        if self.log is not None:  # the owner's own record of what its node computed
            with self.log.open("a", encoding="utf-8") as fh:
                update = _models.flatten(new) - _models.flatten(parameters)
                fh.write(json.dumps({"update": update.tolist()}) + "\n")
        return new, 1, {}

    def evaluate(self, parameters: list[np.ndarray], config: dict[str, Scalar]) -> Any:
        return 0.0, 1, {}


def _client_fn(context: Context) -> Any:
    config = dict(context.run_config)
    node = dict(context.node_config)
    spec, domains = job_from_config(config)
    if spec.digest() != str(node.get("approved-sha256", "")):
        raise PermissionError(
            "this node's owner did not approve this job spec (digest differs); refused"
        )
    frame = pd.read_csv(str(node["data-path"]))
    x = _data.encode(frame, spec.features, domains)
    y = _data.encode_label(frame, str(spec.label), domains[str(spec.label)])
    log = Path(str(node["update-log"])) if node.get("update-log") else None
    return _OwnerClient(spec, x, y, log).to_client()


def secure_aggregation_as_approved(
    msg: Message, ctxt: Context, call_next: ClientAppCallable
) -> Message:
    """SecAgg+ (``secaggplus_mod``) for the training messages of the protocol; a plain
    training message is answered only if the signed spec the owner approved runs without
    secure aggregation: a server that skips SecAgg+ on a job that asks for it would
    collect the owner's unmasked update, so the node refuses."""
    if msg.metadata.message_type != MessageType.TRAIN:
        return call_next(msg, ctxt)
    if RECORD_KEY_CONFIGS in msg.content.config_records:
        return secaggplus_mod(msg, ctxt, call_next)
    spec, _ = job_from_config(dict(ctxt.run_config))
    if spec.secure_aggregation:
        raise PermissionError(
            "the approved job runs with secure aggregation; this node sends no unmasked "
            "update (a training message without SecAgg+ is refused)"
        )
    return call_next(msg, ctxt)


CLIENT_MODS: list[Mod] = [secure_aggregation_as_approved, fixedclipping_mod]
"""The ClientApp's mods: clip the update first, then mask it (SecAgg+ as approved)."""

client_app = ClientApp(client_fn=_client_fn, mods=CLIENT_MODS)
