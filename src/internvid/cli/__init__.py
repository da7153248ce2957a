"""The `internvid` command line: `app` (cli/app.py) and one thin module per command."""

from internvid.cli.app import app

__all__ = ["app"]
