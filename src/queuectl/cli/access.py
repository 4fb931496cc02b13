"""Who may call the HTTP API: tokens with roles; and the audit of what their requests did."""

from __future__ import annotations

import click

from queuectl.cli import Group, Session
from queuectl.cli.params import UTF8, limit_option, listing


@click.group(cls=Group)
def token() -> None:
    """API tokens with roles: read (every GET), operate (also cancel, retry, requeue, hold,
    release, pause, resume), admin (everything, enqueue included)."""


@token.command("add")
@click.argument("name", type=UTF8)
@click.option(
    "--role",
    required=True,
    type=click.Choice(["read", "operate", "admin"]),
    help="What the token may do.",
)
@click.pass_obj
def token_add(session: Session, name: str, role: str) -> None:
    """Make token NAME and print it: it is shown this once (only its SHA-256 is stored)."""
    secret = session.queue.add_token(name, role)
    click.echo(secret)
    click.echo(f"token {name} ({role}): keep it now, it cannot be shown again", err=True)


@listing(token, "Print the tokens as JSON.")
def token_list(session: Session, as_json: bool) -> None:
    """The tokens: name, role, when made (never the tokens themselves)."""
    from queuectl.cli.render import local_time, print_listing
    from queuectl.shapes import token_dict

    tokens = [token_dict(t) for t in session.existing_queue.tokens()]
    rows = [(t["name"], t["role"], local_time(t["created_at"])) for t in tokens]
    empty = "no tokens (the one serve uses is an admin token)"
    print_listing(tokens, as_json, empty, ["NAME", "ROLE", "CREATED"], rows)


@token.command("revoke")
@click.argument("name", type=UTF8)
@click.pass_obj
def token_revoke(session: Session, name: str) -> None:
    """Delete token NAME: a server refuses it within seconds."""
    session.existing_queue.revoke_token(name)
    click.echo(f"revoked token {name}", err=True)


@click.command()
@click.option("--since", help="Only the last 10m, 2h, 7d...")
@limit_option(100, "At most this many, the newest.", least=1)
@click.option(
    "--expire",
    is_flag=True,
    help="Delete the entries older than retain_audit instead (runners do it too).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@click.pass_obj
def audit(session: Session, since: str | None, limit: int, expire: bool, as_json: bool) -> None:
    """The API's mutating requests, newest first: when, token, client, route, what they
    touched, status."""
    if expire:
        count = session.existing_queue.expire_audit()
        click.echo(f"deleted {count} audit entr{'y' if count == 1 else 'ies'}", err=True)
        return
    from queuectl.cli.render import json_or_empty, local_time, print_table
    from queuectl.shapes import audit_dict

    # more than a store's LIMIT (a signed 64-bit integer) can hold is all of them
    limit = min(limit, 2**63 - 1)
    entries = [audit_dict(e) for e in session.existing_queue.audit(since, limit)]
    if json_or_empty(entries, as_json, "no audit entries"):
        return
    rows = [
        (
            local_time(e["at"]),
            e["token"],
            e["client"],
            f"{e['method']} {e['route']}",
            e["target"],
            str(e["status"]),
        )
        for e in entries
    ]
    print_table(
        None,
        ["WHEN", "TOKEN", "CLIENT", "REQUEST", "TOUCHED", "STATUS"],
        rows,
        elastic=("TOUCHED",),
    )
