"""Sub-commands contributed by technique packages, mounted on the main CLI.

One line per sub-app: (command name, "module:attribute" of a ``typer.Typer``). The core
sub-apps are mounted when the CLI starts; a technique's module is imported only when its
command is named (or all of them, to list the commands in ``--help``): importing every
technique (pandas, sqlglot, FastAPI...) doubled the start-up of every command. Keep the
modules' top-level imports light all the same.
"""

from __future__ import annotations

import importlib
from typing import Any

import click
import typer
from typer.core import TyperGroup
from typer.main import get_group_from_info
from typer.models import TyperInfo

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


class PluginGroup(TyperGroup):
    """The top-level command group: mounts the technique sub-apps of SUBCOMMANDS on first
    use (as ``Typer.add_typer`` would have mounted them), in their listed order."""

    def _mount(self, name: str) -> None:
        if name in self.commands or name not in _TARGETS:
            return
        module, _, attribute = _TARGETS[name].partition(":")
        sub_app = getattr(importlib.import_module(module), attribute)
        group = get_group_from_info(
            TyperInfo(sub_app, name=name),
            pretty_exceptions_short=sub_app.pretty_exceptions_short,
            rich_markup_mode=self.rich_markup_mode,
            suggest_commands=self.suggest_commands,
        )
        self.add_command(group, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        for name in _TARGETS:
            self._mount(name)
        core = [n for n in super().list_commands(ctx) if n not in _TARGETS]
        return core + list(_TARGETS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._mount(cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] not in self.commands and args[0] not in _TARGETS:
            self.list_commands(ctx)  # a typo: "did you mean" considers every command
        return super().resolve_command(ctx, args)


_TARGETS: dict[str, str] = dict(SUBCOMMANDS)


def typer_app(**settings: Any) -> typer.Typer:
    """The main ``typer.Typer`` (``settings`` as for it), mounting SUBCOMMANDS lazily."""
    return typer.Typer(cls=PluginGroup, **settings)
