"""Sub-commands contributed by technique packages, mounted on the main CLI.

One line per sub-app: (command name, "module:attribute" of a ``typer.Typer``). Modules
are imported when the CLI starts; keep their top-level imports light.
"""

from __future__ import annotations

SUBCOMMANDS: list[tuple[str, str]] = [
    ("deid", "collabzone.techniques.deid.cli:app"),
    ("link", "collabzone.techniques.linking.cli:app"),
    ("validator", "collabzone.techniques.validator.cli:app"),
    ("lookalike", "collabzone.techniques.lookalike.cli:app"),
    ("sealed", "collabzone.techniques.sealed.cli:app"),
    ("query", "collabzone.techniques.sql.cli:app"),
    ("mpc", "collabzone.techniques.mpc.cli:app"),
    ("serve", "collabzone.server.cli:app"),
    ("keys", "collabzone.cli_keys:app"),
    ("webhook", "collabzone.server.cli_webhooks:app"),
    ("synth", "collabzone.techniques.synthetic.cli:app"),
    ("fl", "collabzone.techniques.federated.cli:app"),
]
