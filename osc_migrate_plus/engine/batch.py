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

"""``batch``'s driver: admission within limits, one bulk read for all.

Each poll costs the same few requests however many migrations are in
flight (a poll every --interval, or sooner while the run's migrations are
quicker than that: engine/cadence.py): migration records changed since
the last poll, and servers changed since the last poll (both bulk reads,
their window on Nova's clock), plus the submissions and confirms
themselves. A server the bulk reads have not mentioned for a while is read
directly once. With ``--on-stall`` other than ``wait``, each live
migration in status ``running`` costs one more read per poll: its
progress, which the bulk read does not carry. Every server is
judged by the same step as ``watch`` (``step.Stepper``). Every step is
journaled before or as it happens, so an interrupted batch can be resumed
without ever submitting a server twice.
"""

import dataclasses
import datetime
import enum
import functools
import queue
import random
import threading
import time
import typing as ty

from osc_migrate_plus.engine import board as boards
from osc_migrate_plus.engine import cadence as cadences
from osc_migrate_plus.engine import hints
from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus.engine import pace as pacing
from osc_migrate_plus.engine import plan
from osc_migrate_plus.engine import stall
from osc_migrate_plus.engine import step
from osc_migrate_plus import model

R = model.Result
# Overlap of two changes-since windows: Nova's timestamps come from several
# hosts' clocks and ``Date`` has whole seconds.
SINCE_OVERLAP = datetime.timedelta(seconds=5)
# A server in flight that no bulk read mentioned for this long is read
# directly: a safety net for updates a window missed.
STALE_AFTER = 60.0
# The least pause between two turns, as a share of --interval (the
# shortest gap between polls too).
MIN_PAUSE = cadences.SHORTEST
# The migrate requests of one turn, and the confirms and reverts of one
# poll round, go out together, this many at once: one after another, the
# last would wait for every answer before it.
SEND_WORKERS = 8
# Events of the step that the journal keeps (the rest is for the eye).
JOURNALED = ('phase', 'migration', 'taken', 'confirm-sent', 'revert-sent',
             'abort-sent', 'verify-started', 'verified', 'stalled',
             'force-complete-sent', 'force-complete-refused',
             'abort-refused')
# --max-parallel auto: the limit found while the batch runs (engine/pace.py).
AUTO = 'auto'
# Statuses a migration waits in, in Nova, before any work on it.
WAITING_STATUSES = ('accepted', 'queued', 'pre-migrating')


@dataclasses.dataclass
class Options:
    mode: str = plan.COLD
    host: ty.Optional[str] = None
    source_hosts: ty.Tuple[str, ...] = ()  # the selection's, if any
    block_migration: ty.Optional[bool] = None
    confirm: bool = False
    verify_command: ty.Optional[str] = None
    max_parallel: ty.Union[int, str] = 4  # or AUTO
    max_per_source: int = 2
    max_per_destination: int = 2
    timeout: float = 3600.0
    interval: float = 2.0
    retries: int = 3
    max_failures: int = 0  # 0: no limit
    # What to do with a live migration that stalled (cold ones: nothing).
    on_stall: str = stall.Policy.WAIT.value
    stall_after: float = stall.DEFAULT_STALL_AFTER


class State(str, enum.Enum):
    QUEUED = 'queued'
    INFLIGHT = 'inflight'
    DONE = 'done'


@dataclasses.dataclass
class Entry:
    item: plan.PlanItem
    follow: step.Follow
    state: State = State.QUEUED
    attempts: int = 0
    next_try: float = 0.0
    baseline_read: bool = False
    unanswered: int = 0  # submissions whose answer was lost
    sending: bool = False  # its migrate request is out, unanswered yet
    waiting_since: ty.Optional[float] = None  # Nova unreachable, unsent
    started: ty.Optional[float] = None
    finished: ty.Optional[float] = None
    result: ty.Optional[model.Result] = None
    message: str = ''
    # What to do about a failure whose cause Nova named: its text ends
    # ``message``; the reporter shows each one once (by key) on stderr.
    hint: ty.Optional[hints.Hint] = None
    last_news: float = 0.0    # when Nova last told us about it
    last_direct: float = -1.0  # when we last read it directly
    last_progress: float = -1.0  # when we last read its live progress
    # Its place in the plan, and the board of the run that holds it (told
    # when its state or result changes).
    order: int = dataclasses.field(default=-1, compare=False)
    board: ty.Optional[boards.Board] = dataclasses.field(
        default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: ty.Any) -> None:
        board = self.__dict__.get('board')
        if board is None or name not in ('state', 'result'):
            object.__setattr__(self, name, value)
            return
        state, result = self.state, self.result
        object.__setattr__(self, name, value)
        board.moved(self, state, result)

    @property
    def server_id(self) -> str:
        return self.item.server.id

    @property
    def source(self) -> ty.Optional[str]:
        return self.follow.source

    @property
    def server(self) -> model.Server:
        return self.follow.server or self.item.server

    @property
    def destination(self) -> ty.Optional[str]:
        migration = self.follow.migration
        return migration.dest if migration is not None else None


def new_entry(item: plan.PlanItem, options: Options) -> Entry:
    server = item.server
    goal = model.Goal.CONFIRM if (options.confirm or options.verify_command) \
        else model.Goal.MIGRATE
    follow = step.Follow(
        server_id=server.id, source=server.host,
        # An adopted migration may have changed the status already.
        original_status=(server.status if item.verdict == plan.PLANNED
                         else None),
        goal=goal, kind=item.mode, server=server)
    entry = Entry(item, follow)
    if item.verdict == plan.SKIPPED:
        entry.state = State.DONE
        entry.result = R.SKIPPED
        entry.message = item.reason
    return entry


def duration(entry: Entry) -> ty.Optional[float]:
    """Seconds from its submission (or adoption) to its result, this run."""
    if entry.started is None or entry.finished is None:
        return None
    return round(entry.finished - entry.started, 1)


def report_facts(entry: Entry) -> ty.Dict[str, ty.Any]:
    """What the report's row shows beyond the verdict, for the journal.

    ``openstack server migrate report`` rebuilds the row from these; the
    journal knew neither the destination nor an adopted server's source.
    """
    mode = entry.follow.kind or entry.item.mode
    return {'name': entry.server.name, 'source': entry.source,
            'dest': entry.destination, 'mode': mode.value if mode else None,
            'attempts': entry.attempts, 'duration': duration(entry)}


@dataclasses.dataclass(frozen=True)
class HostBaseline:
    """The newest migration record from or to a host, and when read."""

    read_at: datetime.datetime  # Nova's clock
    top: int                    # its ID (0: none)


@dataclasses.dataclass
class Load:
    """What counts against the limits, as admission starts a turn.

    A server counts until its confirm (or revert) is sent: by then the copy
    is over and the hosts are free of it. ``picking``: those whose
    destination Nova has not shown yet.
    """
    total: int = 0
    per_source: ty.Dict[ty.Optional[str], int] = dataclasses.field(
        default_factory=dict)
    per_dest: ty.Dict[str, int] = dataclasses.field(default_factory=dict)
    picking: int = 0

    def count(self, entry: Entry) -> None:
        """Add ``entry`` if it holds a slot (a submission just made)."""
        if entry.state != State.INFLIGHT or entry.follow.sent is not None:
            return
        self._add(entry.source, entry.destination)

    def reserve(self, entry: Entry) -> None:
        """Add ``entry``, whose request goes out this turn."""
        self._add(entry.source, None)

    def _add(self, source: ty.Optional[str],
             dest: ty.Optional[str]) -> None:
        self.total += 1
        self.per_source[source] = self.per_source.get(source, 0) + 1
        if dest is None:
            self.picking += 1
        else:
            self.per_dest[dest] = self.per_dest.get(dest, 0) + 1


class Reporter(ty.Protocol):
    def info(self, text: str) -> None: ...

    def event(self, entry: Entry, text: str) -> None: ...

    def status(self, board: boards.Board, elapsed: float) -> None: ...


def since_text(value: datetime.datetime) -> str:
    return value.astimezone(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


class Runner:
    def __init__(self, nova: nova_api.Nova, journal: jrn.Journal,
                 reporter: Reporter, options: Options,
                 clock: ty.Optional[ty.Callable[[], float]] = None,
                 sleep: ty.Optional[ty.Callable[[float], None]] = None
                 ) -> None:
        self.nova = nova
        self.journal = journal
        self.reporter = reporter
        self.options = options
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self.stepper = step.Stepper(nova, self, timeout=options.timeout,
                                    verify_command=options.verify_command,
                                    on_stall=stall.Policy(options.on_stall),
                                    stall_after=options.stall_after,
                                    defer_actions=True)
        self.stop_requested = False
        self.failures = 0
        self.cadence = cadences.Cadence(options.interval)
        self.pace = pacing.Pace(quantum=options.interval / 2) \
            if options.max_parallel == AUTO else None
        # An error of Nova's that ended following (a 403 on the bulk read).
        self.fatal: ty.Optional[Exception] = None
        self._entries: ty.Dict[str, Entry] = {}
        # Each source host's newest record, the baseline of its servers
        # (None: not readable here), and the newest record of each server
        # the bulk reads showed since the run began (one after that read).
        self._host_baselines: ty.Dict[str, ty.Optional[HostBaseline]] = {}
        self._seen_ids: ty.Dict[str, int] = {}
        self._newest_seen: ty.Optional[datetime.datetime] = None
        # The first window opens now, on Nova's clock: nothing of this run
        # changed before. The servers' window is its own: they are not
        # read every poll.
        self._since = self._servers_since = self._nova_now()
        self._servers_read_at = -float('inf')
        self._views_at = -float('inf')  # of the servers waiting their turn

    # -- Nova's clock ------------------------------------------------------
    def _nova_now(self) -> datetime.datetime:
        """Now, on Nova's clock.

        From its answers' Date; lacking that, the newest of Nova's own
        timestamps seen; only as a last resort the client's clock, well
        back.
        """
        now = self.nova.nova_now()
        if now is not None:
            return now
        if self._newest_seen is not None:
            return self._newest_seen
        return datetime.datetime.now(datetime.timezone.utc) - \
            datetime.timedelta(minutes=10)

    def _nova_stamp(self) -> str:
        return self._nova_now().isoformat()

    def _saw(self, servers: ty.Iterable[model.Server],
             records: ty.Iterable[model.Migration]) -> None:
        stamps = [model.nova_time(s.updated) for s in servers]
        stamps += [model.nova_time(r.updated_at or r.created_at)
                   for r in records]
        for stamp in stamps:
            if stamp is not None and (self._newest_seen is None
                                      or stamp > self._newest_seen):
                self._newest_seen = stamp

    # -- step.Listener -------------------------------------------------------
    def event(self, f: step.Follow, name: str, text: str,
              **fields: ty.Any) -> None:
        if name in JOURNALED:
            self.journal.event(f.server_id, name, **fields)
        entry = self._entries.get(f.server_id)
        if entry is not None:
            self.reporter.event(entry, text)

    # -- the loop ----------------------------------------------------------
    def run(self, entries: ty.List[Entry],
            adoptions: ty.Sequence[ty.Tuple[Entry, ty.Dict[str, ty.Any]]]
            = ()) -> bool:
        """Drive every entry to a result. False if interrupted.

        ``adoptions``: entries already under way, with ``adopt``'s
        arguments, taken up first. Whatever ends it early (Ctrl-C twice, an
        error of Nova's that leaves nothing to follow with, credentials that
        expired), what is in flight is journaled as interrupted and verify
        commands are stopped: --resume takes over.
        """
        self._entries.update((e.server_id, e) for e in entries)
        board = boards.Board(entries, State, State.QUEUED)
        # The servers waiting come with views as fresh as their plan (or,
        # in rolling maintenance, their step's listing of the host).
        self._views_at = self.clock()
        if self.nova.nova_now() is None and self._newest_seen is None:
            # No Date from Nova: start from its own timestamps.
            self._saw([e.item.server for e in entries], [])
            if self._newest_seen is not None:
                self._since = self._servers_since = self._newest_seen
        started = self.clock()
        if self.pace is not None:
            self._bound_pace(entries)
        try:
            for entry, how in adoptions:
                if entry.state == State.QUEUED:
                    self.adopt(entry, **how)
            while True:
                if self.stop_requested:
                    self._interrupt(entries)
                    return False
                turn = self.clock()
                self._admit(board)
                if board.count(State.INFLIGHT):
                    self._poll(board.group(State.INFLIGHT))
                    # Refill the slots this poll freed now.
                    self._admit(board)
                self.reporter.status(board, self.clock() - started)
                if board.count(State.DONE) == len(entries):
                    return True
                # Polls keep their cadence: a server that reached
                # VERIFY_RESIZE just after one is seen one interval later,
                # not one interval plus the time this turn took; sooner when
                # one in flight is due to have moved on (engine/cadence.py).
                # A turn longer than that (a slow Nova) still leaves it a
                # breath.
                now = self.clock()
                self.sleep(max(self.cadence.next_poll(turn, now) - now,
                               self.options.interval * MIN_PAUSE))
        except (model.NovaError, model.CredentialsExpired) as exc:
            self.fatal = exc
            self._interrupt(entries, 'following stopped by Nova\'s '
                            'answer: %s; --resume follows it' % exc)
            return False
        except BaseException:
            self._interrupt(entries)
            raise

    # -- admission ---------------------------------------------------------
    def limit(self) -> int:
        """Migrations in flight overall, now (0: no limit)."""
        if self.pace is not None:
            return self.pace.limit
        return int(self.options.max_parallel)

    def _room(self, load: Load) -> bool:
        """Room for one more, whichever server it is.

        Overall, and per destination: Nova picks it (known once it has,
        never when policy hides host names), so this server and every one
        still being placed may land on the busiest host; hold back only
        what could take that host past the limit.
        """
        o = self.options
        limit = self.limit()
        if limit and load.total >= limit:
            return False
        if o.max_per_destination:
            busiest = load.per_dest.get(o.host, 0) if o.host else max(
                load.per_dest.values(), default=0)
            if busiest + load.picking >= o.max_per_destination:
                return False
        return True

    def _may_submit(self, entry: Entry, load: Load) -> bool:
        o = self.options
        return self._room(load) and not (
            o.max_per_source and
            load.per_source.get(entry.source, 0) >= o.max_per_source)

    def _admit(self, board: boards.Board) -> None:
        """Submit what the limits allow; the pace sees slots come and go."""
        self._track_pace(board)
        try:
            self._submit(board)
        finally:
            self._track_pace(board)

    def _submit(self, board: boards.Board) -> None:
        chosen = self._choose(board)
        if chosen:
            self._send_migrations(chosen)

    def _choose(self, board: boards.Board) -> ty.List[Entry]:
        """The servers whose turn it is, checked and within the limits.

        Their requests then go out together (``_send_migrations``): one
        after another, a turn that fills ten slots of a cold drain spent
        seconds on Nova's answers (each waits for the scheduler), and the
        next poll, with its confirms, waited for them.
        """
        now = self.clock()
        chosen: ty.List[Entry] = []
        # What holds a slot, counted once per turn and not once per server
        # waiting (with thousands queued that made each turn O(N^2)).
        load = Load()
        for entry in board.group(State.INFLIGHT):
            load.count(entry)
        # Sources at their limit this turn (the load only grows in it):
        # their servers wait, and once all are, every server waiting does.
        sources = len(board.sources_waiting)
        full: ty.Set[ty.Optional[str]] = set()
        for entry in board.group(State.QUEUED):
            if self.stop_requested:
                return chosen  # no new submissions
            if entry.state != State.QUEUED or entry.next_try > now:
                continue
            if self.options.max_failures and \
                    self.failures >= self.options.max_failures:
                self.finish(entry, R.NOT_STARTED, 'not submitted: '
                            '--max-failures %d reached' %
                            self.options.max_failures)
                continue
            if entry.follow.source in full:
                continue
            if not self._room(load):
                return chosen  # full for any server: the rest wait
            if not self._may_submit(entry, load):
                full.add(entry.follow.source)  # only its source refuses it
                if len(full) == sources:
                    return chosen
                continue
            if not self._fresh_views():
                return chosen  # Nova unreachable: the rest wait
            try:
                ready = self._ready(entry)
            except model.Transient as exc:
                self._pushed_back(exc)
                return chosen  # Nova unreachable: the rest wait
            if ready:
                chosen.append(entry)
                load.reserve(entry)
            else:
                load.count(entry)  # adopted meanwhile: it holds a slot
        return chosen

    def _ready(self, entry: Entry) -> bool:
        """Whether to send ``entry``'s migrate request now.

        Not if Nova carried out an earlier one after all, nor if the server
        changed since the plan; its baseline read first.
        """
        if entry.attempts and self._taken_meanwhile(entry):
            return False
        if not self._still_planned(entry):
            return False
        return entry.baseline_read or self._read_baseline(entry)

    def _send_migrations(self, entries: ty.List[Entry]) -> None:
        """Send the migrate requests of ``entries``, together.

        Each is journaled as submitting before any goes out, and each
        answer is judged and journaled here, in order, once all are in:
        only the requests run in threads. Until then an entry is
        ``sending``: interrupted then, --resume looks for its migration
        before sending anything again.
        """
        for entry in entries:
            entry.attempts += 1
            entry.sending = True
            f = entry.follow
            extra = {} if f.not_before is None else {
                'not_before': f.not_before.isoformat()}
            self.journal.event(entry.server_id, 'submitting',
                               baseline_id=f.baseline_id,
                               attempt=entry.attempts,
                               mode=entry.item.mode,
                               nova_time=self._nova_stamp(), **extra)
        made: ty.Set[int] = set()

        def go(index: int) -> bool:
            # From a sending thread, before each request: after a stop
            # (Ctrl-C), no new submissions, even of this turn.
            if self.stop_requested:
                return False
            made.add(index)
            return True
        try:
            answers = _together([functools.partial(self._request, entry)
                                 for entry in entries], go)
        except BaseException:
            # Quit at once: what never went out is not looked for.
            for index, entry in enumerate(entries):
                if index not in made:
                    self._not_sent(entry)
            raise
        raised: ty.Optional[BaseException] = None
        for entry, answer in zip(entries, answers):
            if answer is NOT_MADE:
                self._not_sent(entry)
            elif isinstance(answer, model.CredentialsExpired):
                # Refused before Nova looked at it: a resume submits it
                # again. The others' answers are journaled first.
                entry.sending = False
                entry.attempts -= 1
                self.journal.event(entry.server_id, 'submit-failed',
                                   message=str(answer), refused=True)
                raised = raised or answer
            elif isinstance(answer, model.NovaError):
                entry.sending = False
                self._submit_failed(entry, answer)
            elif isinstance(answer, BaseException):
                raised = raised or answer  # still sending: not known
            else:
                entry.sending = False
                self.journal.event(entry.server_id, 'submitted')
                self.cadence.asked(entry.server_id, self.clock())
                self._inflight(entry, step.Start.SENT, 'submitted')
        if raised is not None:
            raise raised

    def _not_sent(self, entry: Entry) -> None:
        """Journaled as submitting, but its request never went out."""
        entry.sending = False
        entry.attempts -= 1
        self.journal.event(entry.server_id, 'not-sent',
                           message='stopping: not sent')

    def _request(self, entry: Entry) -> None:
        """The migrate request itself (from a thread: Nova only)."""
        self.nova.start_migration(
            entry.server_id, live=entry.item.mode == model.Kind.LIVE,
            host=self.options.host,
            block_migration=self.options.block_migration)

    def _taken_meanwhile(self, entry: Entry) -> bool:
        """Before sending again: did an earlier request land after all?

        Nova may carry out a request whose answer was lost even after it
        showed nothing for a while, or after the batch was stopped: a
        record newer than the baseline is followed, never migrated again.
        """
        try:
            newest = self.nova.newest_migration(entry.server_id)
        except model.NotFound:
            self.finish(entry, R.DELETED, 'the server was deleted')
            return True
        except model.Transient:
            raise  # Nova unreachable: this server waits its turn again
        except model.NovaError as exc:
            self.finish(entry, R.FAILED, 'not submitted again: reading its '
                        'migration records failed: %s' % exc)
            return True
        if newest is None or not entry.follow.newer([newest]):
            return False
        self.reporter.event(entry, 'Nova carried out an earlier request '
                            '(migration %s): following it' % newest.id)
        self.adopt(entry, baseline_id=entry.follow.baseline_id)
        return True

    def _still_planned(self, entry: Entry) -> bool:
        """The plan again, from what Nova last showed of the server.

        A plan may be hours old at a server's turn: someone moved it,
        stopped it, started migrating it or deleted it meanwhile. The bulk
        reads keep queued servers' views current (``_fresh_views``: no
        older than two intervals when one is submitted).
        """
        planned = entry.item.server
        latest = entry.follow.server or planned
        if latest.status == 'DELETED':
            self.finish(entry, R.DELETED, 'the server was deleted')
            return False
        if latest.host is None and latest.host_hidden:
            latest = dataclasses.replace(latest, host=planned.host)
        if planned.host and latest.host and latest.host != planned.host \
                and latest.task_state not in model.MIGRATING_TASK_STATES:
            self.finish(entry, R.SKIPPED, 'moved since the plan: now on %s, '
                        'not %s' % (latest.host, planned.host))
            return False
        item = plan.preflight(latest, self.options.mode,
                              self.options.source_hosts, self.options.host)
        if item.verdict == plan.SKIPPED:
            entry.item = dataclasses.replace(entry.item, mode=None)
            entry.follow.kind = None
            self.finish(entry, R.SKIPPED, 'changed since the plan: %s'
                        % item.reason)
            return False
        if item.verdict == plan.ADOPT:
            self.reporter.event(entry, 'already migrating since the plan: '
                                'adopted')
            self.adopt(entry, baseline_id=entry.follow.baseline_id
                       if entry.baseline_read else None)
            return False
        entry.item = item
        f = entry.follow
        f.original_status, f.kind = latest.status, item.mode
        return True

    def _host_baseline(self, entry: Entry) -> bool:
        """The baseline from the newest record of its source host.

        One read of one record (``GET /os-migrations?host=&limit=1``)
        serves every server of the host, however long its history, instead
        of one read per server before its submission. Records from or to a
        host are in its cell, and IDs grow within a cell as records are
        created: the host's newest is at least as new as any record of a
        server there that involves the host, and ours will be newer. A
        server's records elsewhere may be newer (it moved on, then was
        unshelved back here): final and created before this read, they are
        told apart by time (``Follow.not_before``). A record since showed
        in the bulk reads (``_seen_ids``). Only an admin reads by host, and
        only where host names show; otherwise, one read per server.
        """
        host = entry.item.server.host
        if not host or entry.server.host_hidden or \
                self.nova.migrations_project is not None:
            return False
        if host not in self._host_baselines:
            # Nova unreachable (Transient): this server waits its turn.
            self._host_baselines[host] = self._read_host(host)
        newest = self._host_baselines[host]
        if newest is None:
            return False
        f = entry.follow
        f.baseline_id = max(newest.top,
                            self._seen_ids.get(entry.server_id, 0))
        f.not_before = newest.read_at - SINCE_OVERLAP
        entry.baseline_read = True
        return True

    def _read_host(self, host: str) -> ty.Optional[HostBaseline]:
        read_at = self._nova_now()
        try:
            newest = self.nova.newest_migration_at(host)
        except model.Transient:
            raise
        except model.NovaError as exc:
            # One read per server then (Nova unreachable: it waits there).
            self.reporter.info('reading the newest migration record of %s '
                               'failed (%s): reading each server\'s' % (
                                   host, exc))
            return None
        if newest is not None:
            self._saw([], [newest])
        return HostBaseline(read_at, newest.id if newest else 0)

    def _read_baseline(self, entry: Entry) -> bool:
        """Note the newest record before the first submission.

        Only a newer record is this batch's. From the source host's newest
        record where it can be read (``_host_baseline``), else one read of
        the server's records. Nothing has been sent yet, so an unreachable
        Nova only delays the server: it waits its turn again, up to
        ``--timeout``, instead of ending the batch. Raises Transient then,
        so that the other servers do not each wait on it too.
        """
        try:
            if self._host_baseline(entry):
                return True
            newest = self.nova.newest_migration(entry.server_id)
        except model.Transient as exc:
            now = self.clock()
            if entry.waiting_since is None:
                entry.waiting_since = now
            if self.options.timeout and \
                    now - entry.waiting_since >= self.options.timeout:
                self.finish(entry, R.NOT_STARTED, 'not submitted: Nova '
                            'unreachable for %ds: %s' % (
                                self.options.timeout, exc))
                return False
            entry.next_try = now + self.options.interval
            self.reporter.event(entry, 'not submitted yet, will retry: %s'
                                % exc)
            raise
        except model.NovaError as exc:
            self.finish(entry, R.FAILED, 'not submitted: reading its '
                        'migration records failed: %s' % exc)
            return False
        entry.follow.baseline_id = newest.id if newest else 0
        entry.baseline_read = True
        if newest is not None:
            self._saw([], [newest])
        return True

    def _submit_failed(self, entry: Entry, exc: model.NovaError) -> None:
        self._pushed_back(exc)
        if isinstance(exc, model.NotFound):
            self.finish(entry, R.DELETED, 'the server was deleted')
            return
        lost = isinstance(exc, model.Transient) and exc.maybe_applied
        # Busy with a task: after an earlier request of ours that failed,
        # that task may well be ours.
        busy = exc.status == 409 and 'task_state' in str(exc)
        if lost or (busy and (entry.unanswered or entry.attempts > 1)):
            entry.unanswered += 1
            self.journal.event(entry.server_id, 'submit-unanswered',
                               message=str(exc), nova_time=self._nova_stamp())
            self._inflight(entry, step.Start.UNCERTAIN, (
                'no answer to the migrate request (%s): looking for it in '
                'Nova before sending anything again' % exc) if lost else (
                'Nova is busy with it (%s): looking whether that is the '
                'request whose answer was lost' % exc))
            return
        # A 409 over a task state passes; one over the vm_state (paused,
        # shelved...) does not.
        if (isinstance(exc, model.Transient) or busy) and \
                entry.attempts <= self.options.retries:
            self._retry_later(entry, 'submit-failed', str(exc), refused=True)
            return
        self.journal.event(entry.server_id, 'submit-failed',
                           message=str(exc), refused=True)
        self.finish(entry, R.FAILED, 'submit refused: %s' % exc)

    # -- --max-parallel auto ------------------------------------------------
    def _bound_pace(self, entries: ty.List[Entry]) -> None:
        """Auto never goes past what the per-host limits let through."""
        assert self.pace is not None
        o = self.options
        bounds = [pacing.CEILING]
        sources = {e.item.server.host for e in entries
                   if e.state != State.DONE}
        if o.max_per_source and None not in sources:
            bounds.append(o.max_per_source * max(1, len(sources)))
        if o.host and o.max_per_destination:
            bounds.append(o.max_per_destination)
        self.pace.ceiling = max(1, min(bounds))
        self.pace.limit = min(self.pace.limit, self.pace.ceiling)

    def _track_pace(self, board: boards.Board) -> None:
        """Tell the pace which migrations hold a slot now, and wait."""
        if self.pace is None:
            return
        now = self.clock()
        holding = [e for e in board.group(State.INFLIGHT)
                   if e.follow.sent is None]
        seen = len(self.pace.changes)
        self.pace.track(now, [e.server_id for e in holding], self._ended_well)
        self.pace.waiting(now, [
            e.server_id for e in holding if e.follow.migration is not None
            and e.follow.migration.status in WAITING_STATUSES])
        self._say_pace(seen)

    def _ended_well(self, server_id: str) -> bool:
        """A migration this run sent that got through: a pace sample."""
        entry = self._entries.get(server_id)
        return entry is not None and \
            entry.follow.start == step.Start.SENT and (
                entry.follow.sent == model.Action.CONFIRM or
                entry.result in (R.MIGRATED, R.CONFIRMED))

    def _pushed_back(self, exc: model.NovaError) -> None:
        """5xx, unreachable, busy with a task: Nova has enough to do."""
        if self.pace is None:
            return
        if isinstance(exc, model.Transient) or (
                exc.status == 409 and 'task_state' in str(exc)):
            seen = len(self.pace.changes)
            self.pace.pushback(self.clock(), str(exc))
            self._say_pace(seen)

    def _say_pace(self, seen: int) -> None:
        assert self.pace is not None
        for change in self.pace.changes[seen:]:
            self.journal.write({'type': 'pace', 'limit': change.limit,
                                'why': change.why})
            self.reporter.info('--max-parallel auto: %d in flight now (%s)'
                               % (change.limit, change.why))

    def _retry_later(self, entry: Entry, event: str, why: str,
                     **fields: ty.Any) -> None:
        delay = min(2 ** entry.attempts, 60) * random.uniform(0.5, 1.5)
        entry.state = State.QUEUED
        entry.next_try = self.clock() + delay
        self.journal.event(entry.server_id, event, message=why,
                           retry_in=round(delay, 1), **fields)
        self.reporter.event(entry, 'not started, submitting again in %ds: '
                            '%s' % (delay, why))

    def _inflight(self, entry: Entry, start: step.Start, how: str) -> None:
        now = self.clock()
        entry.state = State.INFLIGHT
        entry.started = entry.started or now
        entry.last_news = now
        self.stepper.begin(entry.follow, start, now)
        self.reporter.event(entry, how)

    def adopt(self, entry: Entry, migration_id: ty.Optional[int] = None,
              baseline_id: ty.Optional[int] = None,
              uncertain: bool = False,
              lost_at: ty.Optional[str] = None,
              stall_done: ty.Optional[ty.Dict[str, ty.Any]] = None) -> None:
        """Follow a migration already under way; never submit another.

        Resumed servers come with what the journal knows (the migration,
        the baseline); a migration found under way at planning time with
        neither: the one in progress is it, or, if its record does not
        exist yet, any record there now is older. One direct read each
        seeds the server and its records: a bulk read only tells what
        changes from now on, and the migration may have ended long ago.
        ``stall_done``: what the journal says was done of a stall (never
        done again).
        """
        f = entry.follow
        if stall_done:
            f.stall_action = stall_done.get('action')
            f.stall_note = stall_done.get('note') or ''
            f.stall_refused = stall_done.get('refused') or ''
            f.abort_sent = bool(stall_done.get('abort_sent'))
        self._entries[entry.server_id] = entry
        try:
            server = self.nova.get_server(entry.server_id)
            records = self.nova.migrations(entry.server_id)
        except model.NotFound:
            self.finish(entry, R.DELETED, 'the server was deleted')
            return
        except model.Transient as exc:
            # Follow it all the same; the first poll reads it directly.
            self.reporter.event(entry, 'could not read it yet: %s' % exc)
            f.migration_id = migration_id
            f.baseline_id = baseline_id or 0
            self._inflight(entry, step.Start.UNCERTAIN if uncertain
                           else step.Start.ADOPTED, 'adopted')
            entry.last_news = self.clock() - STALE_AFTER
            return
        self._saw([server], records)
        if migration_id is None and baseline_id is None:
            newest = records[0] if records else None
            if newest is not None and \
                    newest.status not in model.FINAL_STATUSES:
                migration_id = newest.id
            baseline_id = newest.id if newest else 0
        f.migration_id = migration_id
        f.baseline_id = baseline_id or 0
        record = next((r for r in records if r.id == migration_id), None)
        if record is not None:
            if record.type not in model.MIGRATION_TYPES:
                self.finish(entry, R.SKIPPED, 'a %s is under way (migration '
                            '%s), not a migration: left to its owner'
                            % (record.type, record.id))
                return
            if record.source:
                # Its source is where the migration started from.
                f.source = record.source
        if not uncertain:
            self.journal.event(entry.server_id, 'adopted',
                               migration_id=migration_id,
                               baseline_id=f.baseline_id)
        self._inflight(entry, step.Start.UNCERTAIN if uncertain
                       else step.Start.ADOPTED,
                       'resumed: looking for the request whose answer was '
                       'lost' if uncertain else 'adopted')
        lost = model.nova_time(lost_at)
        if uncertain and lost is not None:
            # The wait for a lost request counts from when it went out
            # (Nova's clock), not from this resume.
            waited = (self._nova_now() - lost).total_seconds()
            f.start_at -= min(max(waited, 0.0), step.LOST_REPLY_WINDOW)
        entry.last_direct = self.clock()
        self._step(entry, step.Observation(server, records, fresh=True))
        self._send_pending([entry])

    # -- following ---------------------------------------------------------
    def _poll(self, inflight: ty.List[Entry]) -> None:
        # The window's start is Nova's time as this poll goes out, kept for
        # the next one; never the client's clock, which may be off.
        polled_at = self._nova_now()
        try:
            records = self.nova.migrations_since(
                since_text(self._since - SINCE_OVERLAP))
            by_server: ty.Dict[str, ty.List[model.Migration]] = {}
            for record in records:
                by_server.setdefault(record.server_id or '',
                                     []).append(record)
            # The servers, read only when one may tell more than its
            # record (each window starts where the last read of its kind
            # did): while every migration is under way, a poll is one
            # request.
            look = self._servers_due(inflight, by_server)
            listed = self.nova.list_servers(changes_since=since_text(
                self._servers_since - SINCE_OVERLAP)) if look else []
        except model.Transient as exc:
            self.reporter.info('poll failed, will retry: %s' % exc)
            for entry in inflight:
                self._step(entry, step.Observation())
            self._send_pending(inflight)
            return
        self._since = polled_at
        if look:
            self._servers_since = polled_at
            self._servers_read_at = self.clock()
        self._saw(listed, records)
        self.cadence.saw(r for r in records if r.server_id in self._entries)
        for record in records:
            if record.server_id in self._entries:
                self._seen_ids[record.server_id] = max(
                    record.id, self._seen_ids.get(record.server_id, 0))
        servers = {s.id: s for s in listed}
        if look:
            self._views(listed)
        now = self.clock()
        for entry in inflight:
            server = servers.get(entry.server_id)
            mine = by_server.get(entry.server_id, [])
            if server is not None or mine:
                entry.last_news = now
            observation = step.Observation(
                server, mine, progress=self._progress(entry, mine, now))
            due = entry.follow.evidence_due()
            if (due is not None and entry.last_direct < due <= now) or \
                    entry.follow.look_again or \
                    now - entry.last_news >= STALE_AFTER:
                observation = self._read_directly(entry, observation)
            self._step(entry, observation)
        self._send_pending(inflight)

    def _views(self, listed: ty.List[model.Server]) -> None:
        """Keep the view of servers waiting their turn current."""
        self._views_at = self.clock()
        for shown in listed:
            queued = self._entries.get(shown.id)
            if queued is not None and queued.state == State.QUEUED:
                queued.follow.server = shown

    def _fresh_views(self) -> bool:
        """Before a submission: views of the servers waiting, fresh.

        ``_still_planned`` judges a server from what Nova last showed of
        it, and polls read the servers only when one in flight may tell
        more: a slot freed by a timeout or a direct read would otherwise
        let a server go on a view up to SERVER_AT_LEAST_EVERY old (moved
        or migrating since: migrated again). One bulk read, from where the
        servers' window stands; the window does not move (what changed in
        flight is for the next poll that reads the servers). False if Nova
        could not be reached.
        """
        # As fresh as when every poll read the servers: a poll and its
        # turn (confirms of a busy Nova may take a while) ago.
        if self.clock() - self._views_at <= 2 * self.options.interval:
            return True
        try:
            listed = self.nova.list_servers(changes_since=since_text(
                self._servers_since - SINCE_OVERLAP))
        except model.Transient as exc:
            self.reporter.info('could not read the servers before '
                               'submitting, will retry: %s' % exc)
            return False
        self._saw(listed, [])
        self._views(listed)
        return True

    def _servers_due(self, inflight: ty.List[Entry],
                     by_server: ty.Dict[str, ty.List[model.Migration]]
                     ) -> bool:
        now = self.clock()
        if now - self._servers_read_at >= step.SERVER_AT_LEAST_EVERY:
            return True
        return any(e.follow.server_matters(by_server.get(e.server_id, ()),
                                           now) for e in inflight)

    def _progress(self, entry: Entry, records: ty.List[model.Migration],
                  now: float) -> ty.Optional[dict]:
        """A running live migration's progress, for --on-stall.

        The bulk read does not carry it: one read per such migration, at
        most once per interval, and none with --on-stall wait.
        """
        target = self.stepper.progress_target(entry.follow, records)
        if target is None or \
                now - entry.last_progress < self.options.interval * 0.5:
            return None
        entry.last_progress = now
        return self.nova.live_progress(entry.server_id, target.id)

    def _read_directly(self, entry: Entry,
                       bulk: step.Observation) -> step.Observation:
        now = self.clock()
        entry.last_direct = entry.last_news = now
        try:
            server = self.nova.get_server(entry.server_id)
            records = self.nova.migrations(entry.server_id)
        except model.NotFound:
            return step.Observation(gone=True, fresh=True)
        except model.NovaError as exc:
            # No fresh look this time (rate limited, Nova busy): next poll.
            self.reporter.event(entry, 'could not read it: %s' % exc)
            return bulk
        self._saw([server], records)
        return step.Observation(server, records, fresh=True,
                                progress=bulk.progress)

    def _step(self, entry: Entry, observation: step.Observation) -> None:
        if entry.state != State.INFLIGHT:
            return
        found = self.stepper.step(entry.follow, observation, self.clock())
        if found is None and entry.follow.needs_look and \
                not observation.fresh:
            # A failure seen in a bulk view: only a fresh look decides.
            fresh = self._read_directly(entry, step.Observation())
            if fresh.fresh:
                found = self.stepper.step(entry.follow, fresh, self.clock())
        if found is None:
            return
        if found.result == R.NOT_STARTED:
            self._not_taken(entry, found.message)
        else:
            self.finish(entry, found.result, found.message)

    def _send_pending(self, entries: ty.List[Entry]) -> None:
        """Send the confirms and reverts the steps decided, together.

        Only the requests run in threads (``Stepper.send`` touches nothing
        but Nova); each answer is judged and journaled here, in order.
        """
        due = [e for e in entries if e.state == State.INFLIGHT
               and e.follow.pending is not None]
        if not due:
            return
        answers = _together([functools.partial(self.stepper.send, e.follow)
                             for e in due])
        raised: ty.Optional[BaseException] = None
        for entry, answer in zip(due, answers):
            if isinstance(answer, BaseException) and \
                    not isinstance(answer, model.NovaError):
                # Expired credentials: the others' answers are journaled
                # first, then the run stops on it.
                raised = raised or answer
                continue
            found = self.stepper.sent(entry.follow, answer, self.clock())
            if answer is None:
                self.cadence.asked(entry.server_id, self.clock())
            if found is not None:
                self.finish(entry, found.result, found.message)
        if raised is not None:
            raise raised

    def _not_taken(self, entry: Entry, why: str) -> None:
        """Nova showed no sign of a request whose answer was lost.

        Send it again at once (the wait is over): the later, the likelier
        a request Nova holds even longer slips in between.
        """
        if entry.attempts <= self.options.retries:
            entry.state = State.QUEUED
            entry.next_try = self.clock()
            self.journal.event(entry.server_id, 'not-taken', message=why)
            self.reporter.event(entry, 'not started, submitting again: %s'
                                % why)
            return
        self.journal.event(entry.server_id, 'not-taken', message=why)
        self.finish(entry, R.NOT_STARTED, 'not started: %d migrate '
                    'request(s) went unanswered and Nova shows no '
                    'migration' % entry.attempts)

    def finish(self, entry: Entry, result: model.Result,
               message: str) -> None:
        """Give ``entry`` its result, journaled.

        A failure's message gets the hint for the cause Nova named, if
        known; the event for the eye leaves it out (the reporter shows each
        hint once, from ``entry.hint``).
        """
        entry.follow.stop()
        self.cadence.ended(entry.server_id)
        entry.state = State.DONE
        entry.result = result
        said = message
        if result == R.FAILED:
            message, entry.hint = hints.annotate(message)
        entry.message = message
        entry.finished = self.clock()
        if result in (R.FAILED, R.REVERTED):
            self.failures += 1
        self.journal.event(entry.server_id, 'verdict', result=result.value,
                           message=message,
                           migration_id=entry.follow.migration_id,
                           **report_facts(entry))
        if message or result.value != entry.follow.phase:
            self.reporter.event(entry, '%s%s' % (
                result.value, ': ' + said if said else ''))

    def _interrupt(self, entries: ty.List[Entry],
                   why: str = 'interrupted: the migration goes on in Nova; '
                              '--resume follows it') -> None:
        for entry in entries:
            if entry.state == State.INFLIGHT:
                entry.follow.stop()
                entry.state = State.DONE
                entry.result = R.INTERRUPTED
                entry.message = why
                self.journal.event(entry.server_id, 'interrupted',
                                   migration_id=entry.follow.migration_id,
                                   message=why, **report_facts(entry))
            elif entry.state == State.QUEUED and entry.sending:
                # Journaled as submitting: --resume looks for it in Nova.
                entry.state = State.DONE
                entry.result = R.INTERRUPTED
                entry.message = ('interrupted while its migrate request was '
                                 'out: --resume looks for it in Nova before '
                                 'sending anything again')
                self.journal.event(entry.server_id, 'interrupted',
                                   message=entry.message,
                                   **report_facts(entry))
            elif entry.state == State.QUEUED:
                entry.state = State.DONE
                entry.result = R.NOT_STARTED
                entry.message = 'interrupted before submission'
        # An error of Nova's that ended it: the run exits 1, not 130.
        self.journal.write({'type': 'interrupted'} if self.fatal is None
                           else {'type': 'interrupted',
                                 'error': str(self.fatal)})


# The answer of a call ``_together`` did not make.
NOT_MADE = object()


def _together(calls: ty.List[ty.Callable[[], ty.Any]],
              go: ty.Optional[ty.Callable[[int], bool]] = None
              ) -> ty.List[ty.Any]:
    """Make the calls, SEND_WORKERS at once: what each returned or raised.

    One alone is made here. Daemon threads: Ctrl-C twice ("quit at once")
    leaves at once, even if a request hangs in a Nova that no longer
    answers (a pool's threads would be waited for, on the way out and again
    when the interpreter exits). Those left behind then make no further
    call. ``go`` (index), asked before each call, may hold it back: its
    answer is NOT_MADE. Once the wait is interrupted it is never asked
    again, so what it said by then is final.
    """
    answers: ty.List[ty.Any] = [NOT_MADE] * len(calls)
    if len(calls) == 1:
        if go is None or go(0):
            try:
                answers[0] = calls[0]()
            except Exception as exc:
                answers[0] = exc
        return answers
    todo: 'queue.Queue[int]' = queue.Queue()
    for index in range(len(calls)):
        todo.put(index)
    lock = threading.Lock()
    over = threading.Event()

    def work() -> None:
        while True:
            with lock:
                if over.is_set():
                    return
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                if go is not None and not go(index):
                    continue
            try:
                answers[index] = calls[index]()
            except BaseException as exc:  # handed to the main thread
                answers[index] = exc

    threads = [threading.Thread(target=work, daemon=True,
                                name='migrate-plus-send')
               for _ in range(min(len(calls), SEND_WORKERS))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()  # a signal's KeyboardInterrupt comes through here
    except BaseException:
        with lock:
            over.set()
        raise
    return answers
