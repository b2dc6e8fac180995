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

"""Run a batch: submit within limits, follow everything in one bulk poll.

Each interval costs the same few requests however many migrations are in
flight: migration records changed since the last poll, and servers changed
since the last poll (both bulk reads), plus the submissions and confirms
themselves. ``verdict.assess`` judges every server, exactly as for ``watch``.
Every step is journaled before or as it happens, so an interrupted batch can
be resumed without ever submitting a server twice.
"""

import dataclasses
import datetime
import os
import random
import signal
import subprocess
import time
import typing as ty

from osc_migrate_plus.engine import follower
from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import plan
from osc_migrate_plus.engine import verdict
from osc_migrate_plus import gateway as gw

R = verdict.Result
# Results for servers that were never migrated by this batch.
SKIPPED = 'skipped'
PLANNED = 'planned'
NOT_STARTED = 'not-started'
VERIFY_TIMEOUT = 300.0
# Overlap of two changes-since windows: Nova's timestamps have second
# precision at best and clocks differ.
SINCE_OVERLAP = datetime.timedelta(seconds=5)


@dataclasses.dataclass
class Options:
    mode: str = plan.COLD
    host: ty.Optional[str] = None
    block_migration: ty.Optional[bool] = None
    confirm: bool = False
    verify_command: ty.Optional[str] = None
    max_parallel: int = 2
    max_per_source: int = 2
    max_per_destination: int = 2
    timeout: float = 3600.0
    interval: float = 2.0
    retries: int = 3
    max_failures: int = 0  # 0: no limit


@dataclasses.dataclass
class Entry:
    item: plan.PlanItem
    target: verdict.Target
    state: str = 'queued'  # queued, inflight, done
    baseline_id: int = 0
    attempts: int = 0
    next_try: float = 0.0
    started: ty.Optional[float] = None
    finished: ty.Optional[float] = None
    result: ty.Optional[str] = None
    message: str = ''
    server: ty.Optional[verdict.Server] = None
    migration: ty.Optional[verdict.Migration] = None
    phase: str = ''
    verify: ty.Optional[subprocess.Popen] = None
    verify_deadline: float = 0.0
    verify_passed: bool = False
    refusals: int = 0  # confirm/revert refused, see follower.RACE_STATUSES
    waiting_since: ty.Optional[float] = None  # Nova unreachable, unsent

    @property
    def server_id(self) -> str:
        return self.item.server.id

    @property
    def source(self) -> ty.Optional[str]:
        return self.item.server.host

    @property
    def destination(self) -> ty.Optional[str]:
        if self.migration is not None and self.migration.dest:
            return self.migration.dest
        return None


def new_entry(item: plan.PlanItem, options: Options) -> Entry:
    server = item.server
    goal = verdict.Goal.CONFIRM if (options.confirm or
                                    options.verify_command) \
        else verdict.Goal.MIGRATE
    target = verdict.Target(
        server_id=server.id, source=server.host,
        # An adopted migration may have changed the status already.
        original_status=(server.status if item.verdict == plan.PLANNED
                         else None),
        goal=goal, kind=item.mode)
    entry = Entry(item, target)
    if item.verdict == plan.SKIPPED:
        entry.state = 'done'
        entry.result = SKIPPED
        entry.message = item.reason
    return entry


class Reporter(ty.Protocol):
    def event(self, entry: Entry, text: str) -> None: ...

    def status(self, entries: ty.List[Entry], elapsed: float) -> None: ...


def _since_text(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


class Runner:
    def __init__(self, gateway: gw.NovaGateway, journal: jrn.Journal,
                 reporter: Reporter, options: Options,
                 clock: ty.Optional[ty.Callable[[], float]] = None,
                 sleep: ty.Optional[ty.Callable[[float], None]] = None,
                 utcnow: ty.Optional[ty.Callable[[], datetime.datetime]]
                 = None) -> None:
        self.gateway = gateway
        self.journal = journal
        self.reporter = reporter
        self.options = options
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self.utcnow = utcnow or (lambda: datetime.datetime.now(
            datetime.timezone.utc))
        self.stop_requested = False
        self.failures = 0
        # Nova's clock may differ from ours: start the changes-since window
        # well before now.
        self._since = self.utcnow() - datetime.timedelta(minutes=10)

    # -- the loop ----------------------------------------------------------
    def run(self, entries: ty.List[Entry]) -> bool:
        """Drive every entry to a result. False if interrupted."""
        started = self.clock()
        while True:
            if self.stop_requested:
                self._interrupt(entries)
                return False
            self._submit(entries)
            inflight = [e for e in entries if e.state == 'inflight']
            if inflight:
                self._poll(inflight)
                # Refill the slots this poll freed now, not an interval on.
                self._submit(entries)
            self.reporter.status(entries, self.clock() - started)
            if all(e.state == 'done' for e in entries):
                return True
            self.sleep(self.options.interval)

    # -- submission --------------------------------------------------------
    def _may_submit(self, entry: Entry, entries: ty.List[Entry]) -> bool:
        o = self.options
        # A server counts against the limits until its confirm (or revert)
        # is sent: by then the copy is over and the hosts are free of it.
        inflight = [e for e in entries
                    if e.state == 'inflight' and e.target.sent is None]
        if o.max_parallel and len(inflight) >= o.max_parallel:
            return False
        if o.max_per_source and len([
                e for e in inflight if e.source == entry.source
        ]) >= o.max_per_source:
            return False
        if o.host and o.max_per_destination and len([
                e for e in inflight if (e.destination or o.host) == o.host
        ]) >= o.max_per_destination:
            return False
        if o.max_per_destination and not o.host:
            # Destinations are known once Nova picks them: hold back while
            # any destination is full or one is still being picked.
            per_dest: ty.Dict[str, int] = {}
            for e in inflight:
                if e.destination is None:
                    return len(inflight) < o.max_per_destination
                per_dest[e.destination] = per_dest.get(e.destination, 0) + 1
            if per_dest and max(per_dest.values()) >= o.max_per_destination:
                return False
        return True

    def _submit(self, entries: ty.List[Entry]) -> None:
        now = self.clock()
        for entry in entries:
            if entry.state != 'queued' or entry.next_try > now:
                continue
            if self.options.max_failures and \
                    self.failures >= self.options.max_failures:
                self._finish(entry, NOT_STARTED, 'not submitted: '
                             '--max-failures %d reached' %
                             self.options.max_failures)
                continue
            if not self._may_submit(entry, entries):
                continue
            try:
                self._submit_one(entry)
            except gw.Transient:
                return  # Nova unreachable: the rest wait for the next turn

    def _submit_one(self, entry: Entry) -> None:
        server = entry.item.server
        live = entry.item.mode == plan.LIVE
        if entry.attempts == 0 and not self._read_baseline(entry):
            return
        entry.attempts += 1
        self.journal.event(server.id, 'submitting',
                           baseline_id=entry.baseline_id,
                           attempt=entry.attempts, mode=entry.item.mode)
        try:
            self.gateway.start_migration(
                server.id, live=live, host=self.options.host,
                block_migration=self.options.block_migration)
        except gw.NovaError as exc:
            self._submit_failed(entry, exc)
            return
        self.journal.event(server.id, 'submitted')
        self._inflight(entry, 'submitted')

    def _read_baseline(self, entry: Entry) -> bool:
        """Note the newest record before the first submission.

        Only a newer record is this batch's. Nothing has been sent yet, so
        an unreachable Nova only delays the server: it waits its turn again,
        up to ``--timeout``, instead of ending the batch. Raises Transient
        then, so that the other servers do not each wait on it too.
        """
        try:
            newest = self.gateway.newest_migration(entry.server_id)
        except gw.Transient as exc:
            now = self.clock()
            if entry.waiting_since is None:
                entry.waiting_since = now
            if self.options.timeout and \
                    now - entry.waiting_since >= self.options.timeout:
                self._finish(entry, NOT_STARTED, 'not submitted: Nova '
                             'unreachable for %ds: %s' % (
                                 self.options.timeout, exc))
                return False
            entry.next_try = now + self.options.interval
            self.reporter.event(entry, 'not submitted yet, will retry: %s'
                                % exc)
            raise
        except gw.NovaError as exc:
            self._finish(entry, R.FAILED.value, 'not submitted: reading its '
                         'migration records failed: %s' % exc)
            return False
        entry.baseline_id = newest.id if newest else 0
        return True

    def adopt(self, entry: Entry, migration_id: ty.Optional[int] = None,
              baseline_id: int = 0) -> None:
        """Follow a migration already under way; never submit another.

        Seeds the server and its record with one read each: a bulk
        changes-since poll only returns what changes from now on.
        """
        entry.baseline_id = baseline_id
        entry.server = self.gateway.get_server(entry.server_id)
        records = self.gateway.migrations(entry.server_id)
        if migration_id is not None:
            entry.migration = next((m for m in records
                                    if m.id == migration_id), None)
        elif records and records[0].id > baseline_id and \
                verdict.in_progress(entry.server, records[0]):
            entry.migration = records[0]
        if entry.migration is not None:
            entry.item = dataclasses.replace(
                entry.item, server=dataclasses.replace(
                    entry.item.server, host=entry.migration.source))
        self.journal.event(entry.server_id, 'adopted',
                           migration_id=entry.migration.id
                           if entry.migration else None)
        self._inflight(entry, 'adopted')
        if entry.migration is not None:
            entry.target.migration_id = entry.migration.id
            entry.target.kind = entry.migration.kind

    def _inflight(self, entry: Entry, how: str) -> None:
        server = entry.item.server
        entry.server = entry.server or server
        entry.state = 'inflight'
        entry.started = entry.started or self.clock()
        self.reporter.event(entry, how)

    def _submit_failed(self, entry: Entry, exc: gw.NovaError) -> None:
        # A 409 over a task state passes; one over the vm_state (paused,
        # shelved...) does not.
        retryable = isinstance(exc, gw.Transient) or (
            exc.status == 409 and 'task_state' in str(exc))
        if isinstance(exc, gw.Transient):
            # The request may have reached Nova: look before trying again,
            # never migrate a server twice.
            try:
                server = self.gateway.get_server(entry.server_id)
                newest = self.gateway.newest_migration(entry.server_id)
            except gw.NovaError:
                server, newest = None, None
            if (newest is not None and newest.id > entry.baseline_id) or (
                    server is not None and server.task_state in
                    verdict.MIGRATING_TASK_STATES):
                self.journal.event(entry.server_id, 'adopted',
                                   note='submission answered %s but Nova '
                                        'started it' % exc)
                self._inflight(entry, 'submitted (confirmed after: %s)'
                               % exc)
                return
        if retryable and entry.attempts <= self.options.retries:
            delay = min(2 ** entry.attempts, 60) * random.uniform(0.5, 1.5)
            entry.next_try = self.clock() + delay
            self.journal.event(entry.server_id, 'submit-failed',
                               message=str(exc), retry_in=round(delay, 1))
            self.reporter.event(entry, 'submit failed, retry in %ds: %s'
                                % (delay, exc))
            return
        self.journal.event(entry.server_id, 'submit-failed',
                           message=str(exc))
        self._finish(entry, R.FAILED.value, 'submit refused: %s' % exc)

    # -- following ---------------------------------------------------------
    def _poll(self, inflight: ty.List[Entry]) -> None:
        since = _since_text(self._since - SINCE_OVERLAP)
        polled_at = self.utcnow()
        try:
            records = self.gateway.migrations_since(since)
            servers = {s.id: s for s in self.gateway.list_servers(
                changes_since=since)}
        except gw.Transient as exc:
            for entry in inflight:
                self.reporter.event(entry, 'poll failed, will retry: %s'
                                    % exc)
            self._check_deadlines(inflight)
            return
        self._since = polled_at
        newest: ty.Dict[str, verdict.Migration] = {}
        for record in records:
            sid = record.server_id or ''
            if sid not in newest or record.id > newest[sid].id:
                newest[sid] = record
        for entry in inflight:
            if entry.server_id in servers:
                entry.server = servers[entry.server_id]
            latest = newest.get(entry.server_id)
            if latest is not None and latest.id > entry.baseline_id and (
                    entry.target.migration_id in (None, latest.id)):
                if entry.migration is None or \
                        entry.migration.id != latest.id:
                    self.journal.event(entry.server_id, 'migration',
                                       migration_id=latest.id)
                entry.migration = latest
            self._assess(entry)
        self._check_deadlines([e for e in inflight if e.state == 'inflight'])

    def _assess(self, entry: Entry) -> None:
        if entry.server is None:
            return  # not changed since before submission: nothing new
        target = entry.target
        if entry.migration is not None and target.migration_id is None:
            target.migration_id = entry.migration.id
            target.kind = entry.migration.kind
        a = verdict.assess(target, entry.server, entry.migration)
        if a.phase != entry.phase:
            entry.phase = a.phase
            self.journal.event(entry.server_id, 'phase', phase=a.phase)
            self.reporter.event(entry, a.phase)
        if a.result is not None:
            self._verdict(entry, a)
            return
        if a.action is not None:
            self._decide(entry, a.action)

    def _verdict(self, entry: Entry, a: verdict.Assessment) -> None:
        result = a.result
        assert result is not None  # noqa: S101 (only called with one)
        message = a.reason
        if result == R.FAILED:
            explained = follower.explain(
                self.gateway, entry.target,
                entry.server or entry.item.server, entry.migration, message)
            if explained is None:
                return  # Nova is still recording why: next poll
            message = explained
        elif (result == R.MIGRATED and entry.target.kind == verdict.LIVE
              and self.options.verify_command and not entry.verify_passed):
            if not self._verification_done(entry):
                return
            if not entry.verify_passed:
                self._finish(entry, R.FAILED.value, entry.message)
                return
        elif result == R.MIGRATED and entry.target.kind == verdict.COLD:
            message = 'left in VERIFY_RESIZE: confirm with openstack ' \
                      'server migration confirm %s' % entry.server_id
        self._finish(entry, result.value, message)

    def _decide(self, entry: Entry, action: verdict.Action) -> None:
        """At VERIFY_RESIZE: verify first if asked, then confirm/revert."""
        if self.options.verify_command and not entry.verify_passed and \
                entry.target.goal == verdict.Goal.CONFIRM:
            if not self._verification_done(entry):
                return
            if not entry.verify_passed:
                entry.target.goal = verdict.Goal.REVERT
                action = verdict.Action.REVERT
        try:
            if action == verdict.Action.CONFIRM:
                self.gateway.confirm(entry.server_id)
            else:
                self.gateway.revert(entry.server_id)
        except gw.NovaError as exc:
            if isinstance(exc, gw.Transient) or (
                    exc.status in follower.RACE_STATUSES and
                    entry.refusals < follower.ACTION_CONFLICTS):
                # The next poll tells whether Nova (auto-confirm) or someone
                # else got there first, or the task under way has ended.
                entry.refusals += not isinstance(exc, gw.Transient)
                self.reporter.event(entry, '%s will be retried: %s'
                                    % (action.value, exc))
                return
            self._finish(entry, R.FAILED.value, '%s refused: %s'
                         % (action.value, exc))
            return
        entry.target.sent = action
        self.journal.event(entry.server_id, action.value + '-sent')
        self.reporter.event(entry, action.value + ' sent')

    def _verification_done(self, entry: Entry) -> bool:
        """Start or check the verify command; True once it has ended."""
        if entry.verify is None:
            env = dict(os.environ)
            server = entry.server or entry.item.server
            # Facts reach the command only through its environment, never
            # its command line: names are tenant data.
            env.update({
                'OSC_MIGRATE_SERVER_ID': entry.server_id,
                'OSC_MIGRATE_SERVER_NAME': server.name or '',
                'OSC_MIGRATE_PROJECT_ID': server.project_id or '',
                'OSC_MIGRATE_SOURCE_HOST': entry.source or '',
                'OSC_MIGRATE_DEST_HOST': (entry.destination
                                          or server.host or ''),
                'OSC_MIGRATE_MODE': entry.target.kind or '',
            })
            entry.verify = subprocess.Popen(
                ['/bin/sh', '-c', self.options.verify_command or 'false'],
                env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True)
            entry.verify_deadline = self.clock() + VERIFY_TIMEOUT
            self.journal.event(entry.server_id, 'verify-started')
            self.reporter.event(entry, 'verifying')
            return False
        code = entry.verify.poll()
        if code is None:
            if self.clock() < entry.verify_deadline:
                return False
            # The whole session: the shell's children hold the output pipe.
            os.killpg(entry.verify.pid, signal.SIGKILL)
            entry.verify.wait()
            code = None
        output = entry.verify.stdout.read().decode(errors='replace') \
            if entry.verify.stdout else ''
        tail = ' '.join(output.strip().splitlines()[-3:])[-300:]
        entry.verify_passed = code == 0
        if code is None:
            entry.message = 'verify command timed out after %ds' % (
                VERIFY_TIMEOUT)
        elif code != 0:
            entry.message = 'verify command exited %d: %s' % (code, tail)
        self.journal.event(entry.server_id, 'verified', exit_code=code,
                           passed=entry.verify_passed, output_tail=tail)
        self.reporter.event(entry, 'verify %s' % (
            'passed' if entry.verify_passed else 'failed'))
        return True

    def _check_deadlines(self, inflight: ty.List[Entry]) -> None:
        if not self.options.timeout:
            return
        now = self.clock()
        for entry in inflight:
            if entry.started is not None and \
                    now - entry.started >= self.options.timeout:
                self._finish(entry, R.TIMEOUT.value, 'timed out after %ds; '
                             'the migration goes on in Nova'
                             % self.options.timeout)

    def _finish(self, entry: Entry, result: str, message: str) -> None:
        if result == R.REVERTED.value and entry.message:
            message = 'reverted after failed verification: %s' % (
                entry.message)
        entry.state = 'done'
        entry.result = result
        entry.message = message
        entry.finished = self.clock()
        if result in (R.FAILED.value, R.REVERTED.value):
            self.failures += 1
        self.journal.event(entry.server_id, 'verdict', result=result,
                           message=message,
                           migration_id=entry.migration.id
                           if entry.migration else None)
        if message or result != entry.phase:  # else the phase line said it
            self.reporter.event(entry, '%s%s' % (result, ': ' + message
                                                 if message else ''))

    def _interrupt(self, entries: ty.List[Entry]) -> None:
        for entry in entries:
            if entry.state == 'inflight':
                entry.state = 'done'
                entry.result = R.INTERRUPTED.value
                entry.message = 'interrupted: the migration goes on in ' \
                                'Nova; --resume follows it'
                self.journal.event(entry.server_id, 'interrupted',
                                   migration_id=entry.migration.id
                                   if entry.migration else None)
            elif entry.state == 'queued':
                entry.state = 'done'
                entry.result = NOT_STARTED
                entry.message = 'interrupted before submission'
        self.journal.write({'type': 'interrupted'})
