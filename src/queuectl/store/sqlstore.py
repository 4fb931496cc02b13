"""SQLStore: the Store composed of its flows over one dialect; it holds no logic of its own.

Each flow is a module (enqueue, exchange, flowcontrol, actions, reads, maintenance, admin);
the store wires them to the dialect and lends their methods out under the Store's names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from queuectl.store.access import Access
from queuectl.store.actions import Actions
from queuectl.store.admin import Admin
from queuectl.store.batches import Batches
from queuectl.store.control import Control
from queuectl.store.dialect import Dialect
from queuectl.store.enqueue import Enqueue
from queuectl.store.exchange import Exchanger
from queuectl.store.flowcontrol import FlowControl
from queuectl.store.hooks import Hooks
from queuectl.store.maintenance import Maintenance
from queuectl.store.reads import Reads
from queuectl.store.records import Ledger
from queuectl.store.settings import Settings
from queuectl.store.settle import Settle

if TYPE_CHECKING:
    from queuectl.clock import Clock
    from queuectl.store import Listener


class SQLStore:
    """The Store over one dialect (see store/__init__.py for what each method promises)."""

    def __init__(self, db: Dialect) -> None:
        self.db = db
        settings = Settings(db)
        enqueue = Enqueue(db)
        settle = Settle(db, settings, Hooks(db, settings, enqueue))
        flow = FlowControl(db)
        exchanger = Exchanger(db, settle, flow)
        actions = Actions(db, enqueue, settle, settle.hooks)
        reads = Reads(db)
        maintenance = Maintenance(db, enqueue, settle, actions)
        admin = Admin(db, settings)
        access = Access(db)
        batches = Batches(db)
        control = Control(db, settle, settle.hooks)

        # -- what a runner needs
        self.finish_and_claim = exchanger.finish_and_claim
        self.save_progress = exchanger.save_progress
        self.release = exchanger.release
        self.save_output = exchanger.save_output
        self.owned_jobs = exchanger.owned_jobs
        self.register_runner = maintenance.register_runner
        self.heartbeat = maintenance.heartbeat
        self.unregister_runner = maintenance.unregister_runner
        self.housekeeping = maintenance.housekeeping
        self.reap = maintenance.reap
        self.expire = maintenance.expire
        self.forget_finished_minutes = maintenance.forget_finished_minutes
        self.next_schedule_ms = maintenance.next_schedule_ms
        self.fire_schedules = maintenance.fire_schedules
        self.config = admin.config
        self.expire_unstarted = control.expire_unstarted

        # -- what reads need
        self.get = reads.get
        self.ids_with_prefix = reads.ids_with_prefix
        self.list_jobs = reads.list_jobs
        self.search_jobs = reads.search_jobs
        self.output = reads.output
        self.history = reads.history
        self.counts = reads.counts
        self.done_since = reads.done_since
        self.finished_per_minute = reads.finished_per_minute
        self.attempts_by_queue = reads.attempts_by_queue
        self.recent_durations = reads.recent_durations
        self.oldest_due = reads.oldest_due
        self.totals = reads.totals
        self.dependencies = reads.dependencies
        self.finished_since = reads.finished_since
        self.usage_totals = reads.usage_totals
        self.cpu_since = reads.cpu_since
        self.runners = maintenance.runners
        self.queues = admin.queues
        self.queue_settings = flow.queue_settings
        self.window_starts = flow.window_starts
        self.lock_holder = flow.lock_holder
        self.schedules = maintenance.schedules
        self.hooks = admin.hooks
        self.batches = batches.batches
        self.batch_waits = batches.batch_waits
        self.conditions = reads.conditions
        self.queue_defaults = control.queue_defaults

        # -- what admin needs
        self.enqueue_many = enqueue.enqueue_many
        self.enqueue_batches = enqueue.enqueue_batches
        self.cancel = actions.cancel
        self.cancel_all = actions.cancel_all
        self.requeue = actions.requeue
        self.purge = actions.purge
        self.bulk = actions.bulk
        self.request_stop = maintenance.request_stop
        self.withdraw_stop = maintenance.withdraw_stop
        self.set_config = admin.set_config
        self.set_paused = admin.set_paused
        self.set_limits = flow.set_limits
        self.set_job_defaults = flow.set_job_defaults
        self.add_schedule = maintenance.add_schedule
        self.remove_schedule = maintenance.remove_schedule
        self.add_hook = admin.add_hook
        self.remove_hook = admin.remove_hook
        self.reset = admin.reset
        self.set_batch_limit = batches.set_batch_limit

        # -- who may call the API, and what they did
        self.add_token = access.add_token
        self.tokens = access.tokens
        self.revoke_token = access.revoke_token
        self.token_role = access.token_role
        self.record_audit = access.record_audit
        self.audit = access.audit
        self.expire_audit = access.expire_audit
        self.hold = control.hold
        self.release_held = control.release
        self.hold_queue = control.hold_queue
        self.release_queue = control.release_queue
        self.hold_batch = control.hold_batch
        self.release_batch = control.release_batch
        self.list_held = control.list_held
        self.edit = control.edit
        self.set_queue_defaults = control.set_queue_defaults

    @property
    def kind(self) -> str:
        return self.db.kind

    @property
    def clock(self) -> Clock:
        return self.db.clock

    @property
    def compact_after(self) -> int:
        """How many counter deltas pile up before a read folds them (tests lower it)."""
        return self.db.compact_after

    @compact_after.setter
    def compact_after(self, value: int) -> None:
        self.db.compact_after = value

    def now(self) -> int:
        return self.db.now()

    def ledger(self) -> Ledger:
        """A new ledger for one runner's claims, to pass to finish_and_claim and release."""
        return Ledger()

    def migrate(self) -> int:
        return self.db.migrate()

    def describe(self) -> dict[str, Any]:
        return self.db.describe()

    def verify(self) -> None:
        self.db.verify()

    def listener(self, name: str) -> Listener | None:
        return self.db.listener(name)

    def close(self) -> None:
        self.db.close()
