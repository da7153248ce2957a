"""`python -m internvid` runs the CLI."""

from internvid.cli import app

app()
