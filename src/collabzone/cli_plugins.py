"""Sub-commands contributed by technique packages, mounted on the main CLI.

One line per sub-app: (command name, "module:attribute" of a ``typer.Typer``). Modules
are imported when the CLI starts; keep their top-level imports light.
"""

from __future__ import annotations

CORE_SUBCOMMANDS: list[tuple[str, str]] = [
    ("party", "collabzone.cli_parties:app"),
    ("dataset", "collabzone.cli_datasets:dataset_app"),
    ("agreement", "collabzone.cli_datasets:agreement_app"),
    ("request", "collabzone.cli_requests:request_app"),
    ("audit", "collabzone.cli_audit:app"),
]
SUBCOMMANDS: list[tuple[str, str]] = [
    ("deid", "collabzone.techniques.deid.cli:app"),
    ("link", "collabzone.techniques.linking.cli:app"),
    ("validator", "collabzone.techniques.validator.cli:app"),
    ("lookalike", "collabzone.techniques.lookalike.cli:app"),
    ("sealed", "collabzone.techniques.sealed.cli:app"),
    ("query", "collabzone.techniques.sql.cli:app"),
    ("mpc", "collabzone.techniques.mpc.cli:app"),
    ("he", "collabzone.techniques.mpc.cli_he:app"),
    ("serve", "collabzone.server.cli:app"),
    ("keys", "collabzone.cli_keys:app"),
    ("webhook", "collabzone.server.cli_webhooks:app"),
    ("synth", "collabzone.techniques.synthetic.cli:app"),
    ("fl", "collabzone.techniques.federated.cli:app"),
]
