"""`queuectl progress`: a running job reports how far it is (as cheap to start as `enqueue`)."""

from __future__ import annotations

import os

import click

from queuectl.cli import Session
from queuectl.errors import InvalidInputError, WrongStateError


@click.command()
@click.argument("amount", metavar="DONE/TOTAL | P%")
@click.argument("message", nargs=-1)
@click.pass_obj
def progress(session: Session, amount: str, message: tuple[str, ...]) -> None:
    """Record the progress of the job this runs in: `progress 30/120 files` or `progress 25%`.

    Run inside a job: the runner gives it QUEUECTL_JOB_ID, QUEUECTL_CLAIM_TOKEN and the store. A
    report from an attempt that is no longer the job's running one records nothing (exit 1).
    """
    from queuectl.progress import CLAIM_ENV, parse

    job_id, claim = os.environ.get("QUEUECTL_JOB_ID"), os.environ.get(CLAIM_ENV)
    if not job_id or not claim or not claim.isdigit():
        raise InvalidInputError(
            f"progress: run it inside a job (QUEUECTL_JOB_ID and {CLAIM_ENV} are not set)"
        )
    done, total, text = parse(" ".join((amount, *message)))
    if not session.queue.report_progress(job_id, int(claim), done, total, text):
        raise WrongStateError(
            f"progress: attempt of claim {claim} is no longer the running attempt of {job_id}; "
            "nothing recorded"
        )
