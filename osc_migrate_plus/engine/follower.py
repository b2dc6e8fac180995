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

"""``watch``'s driver: one server, observed by per-server reads.

Each interval it reads the migration record, the server too when it may
tell more (``Follow.server_matters``), and a running live migration's
progress when stall handling or the display needs it, and hands them to the
step (``step.Stepper``), which decides. It also starts the migration for
``watch --start`` and tells a reporter what changed. It never prints.
"""

import dataclasses
import time
import typing as ty

from osc_migrate_plus.engine import hints
from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus.engine import stall
from osc_migrate_plus.engine import step
from osc_migrate_plus import model


class Reporter(ty.Protocol):
    @property
    def wants_live_progress(self) -> bool: ...

    def phase(self, server: model.Server,
              migration: ty.Optional[model.Migration], phase: str,
              elapsed: float) -> None: ...

    def tick(self, server: model.Server,
             migration: ty.Optional[model.Migration], phase: str,
             elapsed: float, progress: ty.Optional[dict]) -> None: ...

    def note(self, server: model.Server, text: str) -> None: ...


@dataclasses.dataclass
class Outcome:
    result: model.Result
    server: model.Server
    migration: ty.Optional[model.Migration]
    message: str = ''
    elapsed: float = 0.0
    # What to do about a failure whose cause Nova named (its text ends
    # ``message``).
    hint: ty.Optional[hints.Hint] = None


class Follower:
    def __init__(self, nova: nova_api.Nova, reporter: Reporter,
                 interval: float = 2.0, timeout: float = 3600.0,
                 abort_on_timeout: bool = False,
                 clock: ty.Optional[ty.Callable[[], float]] = None,
                 sleep: ty.Optional[ty.Callable[[float], None]] = None,
                 on_stall: stall.Policy = stall.Policy.WAIT,
                 stall_after: float = stall.DEFAULT_STALL_AFTER) -> None:
        self.nova = nova
        self.reporter = reporter
        self.interval = interval
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self.stepper = step.Stepper(nova, self, timeout=timeout,
                                    abort_on_timeout=abort_on_timeout,
                                    on_stall=on_stall,
                                    stall_after=stall_after)
        self.started: ty.Optional[float] = None
        self._server_read_at = -float('inf')

    # -- step.Listener -------------------------------------------------------
    def event(self, f: step.Follow, name: str, text: str,
              **fields: ty.Any) -> None:
        server = f.server or model.Server(f.server_id, '', '', None,
                                          f.source)
        if name == 'phase':
            self.reporter.phase(server, f.migration, text, self.elapsed())
        else:
            self.reporter.note(server, text)

    # -- starting and following ---------------------------------------------
    def start(self, f: step.Follow, live: bool, host: ty.Optional[str],
              block_migration: ty.Optional[bool]) -> None:
        """Start the migration (watch --start); never twice.

        Records up to the newest one now are not ours. If the answer is
        lost the request may still be carried out: follow it as uncertain;
        the step says ``not-started`` only once Nova has shown nothing for
        a while. Raises what Nova refused, or a Transient that surely never
        reached it: nothing changed.
        """
        newest = self.nova.newest_migration(f.server_id)
        f.baseline_id = newest.id if newest else 0
        self.started = self.clock()
        try:
            self.nova.start_migration(f.server_id, live=live, host=host,
                                      block_migration=block_migration)
        except model.Transient as exc:
            if not exc.maybe_applied:
                raise
            self.stepper.begin(f, step.Start.UNCERTAIN, self.clock())
            self.event(f, 'note', 'no answer to the migrate request (%s); '
                       'looking for it in Nova before anything else' % exc)
            return
        self.stepper.begin(f, step.Start.SENT, self.clock())

    def follow(self, f: step.Follow) -> Outcome:
        """Follow ``f`` until a verdict."""
        if self.started is None:
            self.started = self.clock()
            self.stepper.begin(f, step.Start.ADOPTED, self.started)
        while True:
            sent = f.sent
            try:
                observation = self._observe(f)
            except model.Transient as exc:
                if f.server is not None:
                    self.reporter.note(f.server, 'poll failed, will retry: '
                                       '%s' % exc)
                observation = step.Observation()
            found = self.stepper.step(f, observation, self.clock())
            if f.server is not None:
                self.reporter.tick(f.server, f.migration, f.phase,
                                   self.elapsed(), self._shown(f, observation))
            if found is not None:
                return self.outcome(found.result, f, found.message)
            if f.sent == sent:  # after a confirm, look again at once
                self.sleep(self.interval)

    def _observe(self, f: step.Follow) -> step.Observation:
        """The migration record, and the server when it may tell more.

        One request a poll while the record is under way (2.59: the
        server's records, newest first); the server too once the record
        has moved on, after a confirm or revert, when a start is due to be
        judged, and at least every SERVER_AT_LEAST_EVERY seconds (a
        deletion shows only there). No microversion puts both in one read.
        A third, the progress of a running live migration, when stall
        handling or the live display wants it.
        """
        if f.migration_id is None:
            # Ours is newer than the baseline: the newest will do.
            records = self.nova.migrations(f.server_id, limit=1)
        else:
            # Pinned (possibly an older one the user named).
            records = self.nova.migrations(f.server_id)
        now = self.clock()
        due = f.evidence_due()
        server = None
        if f.server_matters(records, now) or \
                (due is not None and now >= due) \
                or now - self._server_read_at >= step.SERVER_AT_LEAST_EVERY:
            try:
                server = self.nova.get_server(f.server_id)
            except model.NotFound:
                return step.Observation(gone=True, fresh=True)
            self._server_read_at = now
        progress = None
        target = self.stepper.progress_target(
            f, records, display=self.reporter.wants_live_progress)
        if target is not None:
            progress = self.nova.live_progress(f.server_id, target.id)
        return step.Observation(server, records, fresh=server is not None,
                                progress=progress)

    def _shown(self, f: step.Follow,
               observation: step.Observation) -> ty.Optional[dict]:
        """The progress to display: this look's, of the one followed."""
        migration, progress = f.migration, observation.progress
        if (migration is None or progress is None
                or migration.status != 'running'
                or not self.reporter.wants_live_progress
                or progress.get('id', migration.id) != migration.id):
            return None
        return dict(progress)

    def elapsed(self) -> float:
        return self.clock() - self.started if self.started is not None \
            else 0.0

    def outcome(self, result: model.Result, f: step.Follow,
                message: str) -> Outcome:
        """An outcome from the last state seen (verdict or interruption)."""
        f.stop()
        server = f.server or model.Server(f.server_id, '', '', None,
                                          f.source)
        hint = None
        if result == model.Result.FAILED:
            message, hint = hints.annotate(message)
        return Outcome(result, server, f.migration, message, self.elapsed(),
                       hint)
