"""The `flex4grid` command loads only the package its subcommand needs."""

from __future__ import annotations

import subprocess
import sys

from flex4grid import cli


def _loads_sqlalchemy(argv: list[str]) -> bool:
    code = (
        "import sys\nfrom flex4grid import cli\n"
        f"cli.build_parser({argv!r})\nprint('sqlalchemy' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout.strip() == "True"


def test_a_gateway_command_does_not_load_the_vtn_database_stack() -> None:
    assert not _loads_sqlalchemy(["ven", "status"])
    assert _loads_sqlalchemy(["vtn", "serve"])  # the check can fail


def test_help_lists_every_command() -> None:
    choices = cli.build_parser([]).format_help()
    for command in ("oadr", "certs", "vtn", "event", "ven"):
        assert command in choices
