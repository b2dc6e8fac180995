# Licensed under the Apache License, Version 2.0 (the "License"); you may
# not use this file except in compliance with the License. You may obtain
# a copy of the License at
#
#      http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
# WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
# License for the specific language governing permissions and limitations
# under the License.

"""The poll loop: follow a migration to its verdict.

It asks the gateway for the server and its migration record each interval,
lets ``verdict.assess`` judge, carries out what the state machine asks
(confirm, revert), enforces the deadline (aborting a live migration if
asked) and tells a reporter what changed. It never prints.
"""

import dataclasses
import time
import typing as ty

from osc_migrate_plus.engine import verdict
from osc_migrate_plus import gateway as gw

# How long a migration we started may show no record while the server sits
# idle before we call it lost (Nova creates the record in the conductor).
START_GRACE = 60.0
# Refusals of a confirm/revert tolerated before giving up. 409 is a task
# under way; 400 ("has not been resized") and 404 (no such migration) are
# what Nova answers when it, or someone else, confirmed or reverted first:
# the next read tells.
ACTION_CONFLICTS = 3
RACE_STATUSES = (400, 404, 409)
# Polls to wait for Nova to record why a migration failed (it marks the
# record error before it finishes the instance-action event).
EXPLAIN_POLLS = 3
# After an abort, how long to wait for Nova to cancel.
ABORT_GRACE = 60.0
ABORTABLE = ('running',)
ABORTABLE_265 = ('queued', 'preparing')


class Reporter(ty.Protocol):
    @property
    def wants_live_progress(self) -> bool: ...

    def phase(self, server: verdict.Server,
              migration: ty.Optional[verdict.Migration], phase: str,
              elapsed: float) -> None: ...

    def tick(self, server: verdict.Server,
             migration: ty.Optional[verdict.Migration], phase: str,
             elapsed: float, progress: ty.Optional[dict]) -> None: ...

    def note(self, server: verdict.Server, text: str) -> None: ...


@dataclasses.dataclass
class Outcome:
    result: verdict.Result
    server: verdict.Server
    migration: ty.Optional[verdict.Migration]
    message: str = ''
    elapsed: float = 0.0


class Follower:
    def __init__(self, gateway: gw.NovaGateway, reporter: Reporter,
                 interval: float = 2.0, timeout: float = 3600.0,
                 abort_on_timeout: bool = False,
                 clock: ty.Optional[ty.Callable[[], float]] = None,
                 sleep: ty.Optional[ty.Callable[[float], None]] = None
                 ) -> None:
        self.gateway = gateway
        self.reporter = reporter
        self.interval = interval
        self.timeout = timeout
        self.abort_on_timeout = abort_on_timeout
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        # The last state seen, for a report if we are interrupted.
        self.last_server: ty.Optional[verdict.Server] = None
        self.last_migration: ty.Optional[verdict.Migration] = None
        self.started: ty.Optional[float] = None

    def _read(self, target: verdict.Target, after_id: int
              ) -> ty.Tuple[verdict.Server, ty.Optional[verdict.Migration]]:
        """One poll: the server and its migration (two requests)."""
        server = self.gateway.get_server(target.server_id)
        if target.migration_id is None:
            migration = self.gateway.newest_migration(target.server_id)
            if migration is not None and migration.id <= after_id:
                migration = None  # an older one: ours is not recorded yet
        else:
            # Pinned (possibly an older, named one): read that record.
            records = self.gateway.migrations(target.server_id)
            migration = next((m for m in records
                              if m.id == target.migration_id),
                             records[0] if records else None)
        return server, migration

    def follow(self, target: verdict.Target, after_id: int = 0) -> Outcome:
        """Follow ``target`` until a verdict.

        ``after_id``: records with an id up to this one predate the
        migration being followed (it was not recorded yet).
        """
        started = self.started = self.clock()
        deadline = started + self.timeout if self.timeout else None
        last_phase = None
        conflicts = 0
        while True:
            elapsed = self.clock() - started
            try:
                server, migration = self._read(target, after_id)
            except gw.Transient as exc:
                if self.last_server is not None:
                    self.reporter.note(self.last_server,
                                       'poll failed, will retry: %s' % exc)
                if deadline is not None and self.clock() >= deadline:
                    return self.outcome_so_far(
                        verdict.Result.TIMEOUT, target, elapsed,
                        'timed out after %ds; last poll failed: %s' % (
                            self.timeout, exc))
                self.sleep(self.interval)
                continue
            self.last_server, self.last_migration = server, migration
            if migration is not None and target.migration_id is None:
                target.migration_id = migration.id
                target.kind = migration.kind
            assessment = verdict.assess(target, server, migration)

            if assessment.phase != last_phase:
                self.reporter.phase(server, migration, assessment.phase,
                                    elapsed)
                last_phase = assessment.phase
            progress = None
            if (migration is not None and migration.kind == verdict.LIVE
                    and migration.status == 'running'
                    and self.reporter.wants_live_progress):
                progress = self.gateway.live_progress(server.id, migration.id)
            self.reporter.tick(server, migration, assessment.phase, elapsed,
                               progress)

            if assessment.result is not None:
                message = assessment.reason
                if assessment.result == verdict.Result.FAILED:
                    explained = self._explain(target, server, migration,
                                              message)
                    if explained is None:
                        self.sleep(self.interval)
                        continue
                    message = explained
                return Outcome(assessment.result, server, migration, message,
                               elapsed)

            if assessment.action is not None:
                try:
                    self._act(target, assessment.action)
                except gw.NovaError as exc:
                    if exc.status not in RACE_STATUSES or \
                            conflicts >= ACTION_CONFLICTS:
                        return Outcome(verdict.Result.FAILED, server,
                                       migration, '%s refused: %s' % (
                                           assessment.action.value, exc),
                                       elapsed)
                    conflicts += 1
                    self.reporter.note(server, '%s conflicted, will retry: '
                                       '%s' % (assessment.action.value, exc))
                else:
                    self.reporter.note(server, '%s sent'
                                       % assessment.action.value)
                    continue  # read again at once: confirm is quick

            if (migration is None and server.task_state is None
                    and elapsed > START_GRACE):
                target.explain_tries = EXPLAIN_POLLS
                return Outcome(verdict.Result.FAILED, server, None,
                               self._explain(target, server, None, (
                                   'no migration record appeared within '
                                   '%ds and the server is idle' %
                                   START_GRACE)) or '', elapsed)

            if deadline is not None and self.clock() >= deadline:
                outcome = self._deadline(target, server, migration, elapsed)
                if outcome is not None:
                    return outcome
                deadline = self.clock() + ABORT_GRACE
            self.sleep(self.interval)

    def _act(self, target: verdict.Target, action: verdict.Action) -> None:
        if action == verdict.Action.CONFIRM:
            self.gateway.confirm(target.server_id)
        else:
            self.gateway.revert(target.server_id)
        target.sent = action

    def _deadline(self, target: verdict.Target, server: verdict.Server,
                  migration: ty.Optional[verdict.Migration],
                  elapsed: float) -> ty.Optional[Outcome]:
        """At the deadline: abort (and keep following) or give a verdict."""
        what = 'timed out after %ds' % self.timeout
        if target.abort_sent:
            return Outcome(verdict.Result.TIMEOUT, server, migration,
                           '%s; abort requested but Nova has not cancelled '
                           'the live migration' % what, elapsed)
        if not self.abort_on_timeout:
            return Outcome(verdict.Result.TIMEOUT, server, migration,
                           '%s; the migration goes on in Nova' % what,
                           elapsed)
        if migration is None or migration.kind != verdict.LIVE:
            return Outcome(verdict.Result.TIMEOUT, server, migration,
                           '%s; cold migrations cannot be aborted, it goes '
                           'on in Nova' % what, elapsed)
        abortable = ABORTABLE + (ABORTABLE_265 if self.gateway.supports(
            '2.65') else ())
        if migration.status not in abortable:
            return Outcome(verdict.Result.TIMEOUT, server, migration,
                           '%s; a live migration in status %s cannot be '
                           'aborted' % (what, migration.status), elapsed)
        try:
            self.gateway.abort(server.id, migration.id)
        except gw.NovaError as exc:
            return Outcome(verdict.Result.TIMEOUT, server, migration,
                           '%s; abort refused: %s' % (what, exc), elapsed)
        target.abort_sent = True
        self.reporter.note(server, 'deadline reached: abort sent')
        return None

    def _explain(self, target: verdict.Target, server: verdict.Server,
                 migration: ty.Optional[verdict.Migration],
                 message: str) -> ty.Optional[str]:
        return explain(self.gateway, target, server, migration, message)

    def elapsed(self) -> float:
        return self.clock() - self.started if self.started is not None \
            else 0.0

    def outcome_so_far(self, result: verdict.Result, target: verdict.Target,
                       elapsed: float, message: str) -> Outcome:
        """An outcome from the last state seen (timeout, interruption)."""
        server = self.last_server or verdict.Server(
            target.server_id, '', '', None, target.source)
        return Outcome(result, server, self.last_migration, message, elapsed)


def explain(gateway: gw.NovaGateway, target: verdict.Target,
            server: verdict.Server,
            migration: ty.Optional[verdict.Migration],
            message: str) -> ty.Optional[str]:
    """The failure message with Nova's reason; None: ask again next poll."""
    try:
        reason = gateway.explain(server, migration)
    except gw.NovaError as exc:
        reason = '(could not read the reason: %s)' % exc
    if reason is None:
        target.explain_tries += 1
        if target.explain_tries <= EXPLAIN_POLLS:
            return None
        reason = '(Nova has not recorded why)'
    return '%s: %s' % (message, reason) if reason else message
