"""docs/cli.md is what docs/gen_cli.py makes of the click commands today, and the configuration
page names every key with its default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from queuectl.config import KEYS

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_reference_matches_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "gen_cli.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_cli_reference_names_every_command_and_option() -> None:
    import click

    from queuectl.cli import cli

    text = (ROOT / "docs" / "cli.md").read_text()

    def walk(command: click.Command, ctx: click.Context) -> None:
        assert f"`{ctx.command_path}`" in text
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                assert any(opt in text for opt in param.opts), (ctx.command_path, param.opts)
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                with click.Context(sub, info_name=name, parent=ctx) as sub_ctx:
                    walk(sub, sub_ctx)

    with click.Context(cli, info_name="queuectl") as ctx:
        walk(cli, ctx)


def test_the_configuration_page_names_every_key_and_default() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    for name, key in KEYS.items():
        assert f"| `{name}` | {key.default:g} |" in text, name
