"""``python -m collabzone.server --zone DIR --port N``: the same as ``collabzone serve``."""

from collabzone.server.cli import app

app(prog_name="collabzone-server")
