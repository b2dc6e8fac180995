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

"""What a batch did, rebuilt from its journal alone (no cloud).

One pass over the journal's records, in order, gives each server's row (the
columns of ``batch``'s report), its phases as time spans for the timeline,
and the runs (the first and each ``--resume``). Where each server stands
comes from the journal's own rules (``journal.apply``, ``journal.reopened``
at a resume), so the report and ``--resume`` never disagree. Journals
written before the verdict carried ``source``, ``dest``, ``duration``...
still report, with those cells blank.
"""

import dataclasses
import datetime
import os
import typing as ty

from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus import model

R = model.Result
SUCCESS = (R.MIGRATED, R.CONFIRMED)
ASIDE = (R.SKIPPED, R.DELETED)

# The journal's state, as ``--list`` shows it.
FINISHED = 'finished'
INTERRUPTED = 'interrupted'
RUNNING = 'running'

# Phases of the timeline, in the order a migration goes through them.
QUEUED = 'queued'
MIGRATING = 'migrating'
VERIFY_RESIZE = 'VERIFY_RESIZE'
VERIFYING = 'verifying'
CONFIRMING = 'confirming'
REVERTING = 'reverting'
PHASES = (QUEUED, MIGRATING, VERIFY_RESIZE, VERIFYING, CONFIRMING, REVERTING)
# Nova phases (the ``phase`` event) that start a timeline phase; the rest
# (starting, pre-migrating, running...) are all "migrating".
_NOVA_PHASES = {'verify_resize': VERIFY_RESIZE, 'confirming': CONFIRMING,
                'reverting': REVERTING}
_EVENT_PHASES = {'verify-started': VERIFYING, 'verified': VERIFY_RESIZE,
                 'confirm-sent': CONFIRMING, 'revert-sent': REVERTING}
# A live migration that stalled, and what was done about it (see
# ``--on-stall``): marked on its lane.
_STALL_EVENTS = ('stalled', 'force-complete-sent', 'force-complete-refused',
                 'abort-refused')
# Events that put a server in flight (again).
_IN_FLIGHT = ('submitting', 'submitted', 'adopted', 'taken',
              'submit-unanswered')
INTERRUPTED_MESSAGE = ('interrupted: the migration goes on in Nova; '
                       '--resume follows it')
NOT_SUBMITTED_MESSAGE = 'interrupted before submission'


@dataclasses.dataclass
class Span:
    phase: str
    start: datetime.datetime
    end: datetime.datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclasses.dataclass
class Mark:
    """A moment worth pointing at: a failure, a timeout, an interruption."""

    at: datetime.datetime
    what: str      # a result's value, or 'abort-sent'
    message: str


@dataclasses.dataclass
class ServerReport:
    id: str
    name: str = ''
    project_id: ty.Optional[str] = None
    source: ty.Optional[str] = None
    dest: ty.Optional[str] = None
    mode: ty.Optional[str] = None
    result: ty.Optional[model.Result] = None
    attempts: int = 0
    duration: ty.Optional[float] = None
    message: str = ''
    # 'queued', 'inflight' or 'done' at the journal's end.
    standing: str = 'queued'
    # A verdict of the batch's own (not a plan's skip, nor an interruption).
    verdict: bool = False
    spans: ty.List[Span] = dataclasses.field(default_factory=list)
    marks: ty.List[Mark] = dataclasses.field(default_factory=list)

    def row(self) -> tuple:
        """The row of ``batch``'s report (v1.batch.COLUMNS)."""
        return (self.id, self.name, self.project_id, self.source, self.dest,
                self.mode, self.result.value if self.result else None,
                self.attempts, self.duration, self.message)


@dataclasses.dataclass
class Run:
    """One batch process on the journal: the first, or a resume."""

    started: datetime.datetime
    ended: ty.Optional[datetime.datetime] = None
    how: str = ''  # 'interrupted' (Ctrl-C, an error), 'stopped' (killed)
    # The error of Nova's that ended it (the batch then exited 1).
    error: str = ''
    # Its host checks (--source-host): the journal's host-check records.
    host_checks: ty.List[dict] = dataclasses.field(default_factory=list)

    @property
    def host_check_failed(self) -> bool:
        return any(c.get('fails') for c in self.host_checks)


@dataclasses.dataclass
class Report:
    path: str
    header: dict
    state: str
    servers: ty.List[ServerReport]
    runs: ty.List[Run]
    torn: bool
    started: ty.Optional[datetime.datetime]
    finished: ty.Optional[datetime.datetime]  # None while running
    last_record: ty.Optional[datetime.datetime]

    @property
    def completed(self) -> bool:
        """Did its last run drive every server to a result?"""
        return self.state == FINISHED

    def counts(self) -> ty.Dict[str, int]:
        """As batch's status line: done, failed, skipped, in flight, queued.

        Failed counts verdicts only: a server in flight when the batch was
        interrupted is ``inflight`` (its migration may go on in Nova), one
        never submitted ``queued``.
        """
        s = self.servers
        return {
            'servers': len(s),
            'done': sum(1 for x in s if x.result in SUCCESS),
            'failed': sum(1 for x in s if x.verdict and x.result is not None
                          and x.result not in SUCCESS + ASIDE),
            'skipped': sum(1 for x in s if x.result in ASIDE),
            'inflight': sum(1 for x in s if x.standing == 'inflight'),
            'queued': sum(1 for x in s if x.standing == 'queued'),
        }

    def results(self) -> ty.Dict[str, int]:
        """Servers per Result value (blank: no result yet)."""
        out: ty.Dict[str, int] = {}
        for s in self.servers:
            key = s.result.value if s.result else ''
            out[key] = out.get(key, 0) + 1
        return out

    def selection(self) -> str:
        return selection_text(self.header.get('selection') or {})

    def in_flight(self) -> ty.List[ty.Tuple[datetime.datetime, int]]:
        """Migrations in flight over time: (when, how many from then on).

        Counted as the limits count them: from the submission until the
        confirm (or revert) is sent, or the verdict.
        """
        changes: ty.List[ty.Tuple[datetime.datetime, int]] = []
        for server in self.servers:
            for start, end in _busy(server.spans):
                changes += [(start, 1), (end, -1)]
        changes.sort(key=lambda c: (c[0], c[1]))
        series: ty.List[ty.Tuple[datetime.datetime, int]] = []
        level = 0
        for at, delta in changes:
            level += delta
            if series and series[-1][0] == at:
                series[-1] = (at, level)
            else:
                series.append((at, level))
        return series


def _busy(spans: ty.List[Span]
          ) -> ty.Iterator[ty.Tuple[datetime.datetime, datetime.datetime]]:
    """A server's stretches holding a slot, joined."""
    current: ty.Optional[ty.List[datetime.datetime]] = None
    for span in spans:
        if span.phase in (QUEUED, CONFIRMING, REVERTING):
            continue
        if current is not None and span.start <= current[1]:
            current[1] = max(current[1], span.end)
            continue
        if current is not None:
            yield current[0], current[1]
        current = [span.start, span.end]
    if current is not None:
        yield current[0], current[1]


def selection_text(selection: dict) -> str:
    """The selection as the options that made it."""
    parts = []
    if selection.get('aggregate'):
        parts.append('--aggregate %s' % selection['aggregate'])
    else:
        # Journals before several hosts recorded the one source_host.
        hosts = selection.get('source_hosts') or [
            selection.get('source_host')]
        parts += ['--source-host %s' % h for h in hosts if h]
    for key in ('project', 'status', 'servers_from'):
        if selection.get(key):
            parts.append('--%s %s' % (key.replace('_', '-'),
                                      selection[key]))
    named = [str(n) for n in selection.get('servers') or []]
    if named:
        shown = ' '.join(named[:3])
        if len(named) > 3:
            shown += ' (+%d more)' % (len(named) - 3)
        parts.insert(0, shown)
    return ' '.join(parts)


def _time(record: dict) -> ty.Optional[datetime.datetime]:
    value = record.get('ts')
    return model.nova_time(value) if isinstance(value, str) else None


class _Server:
    """One server being rebuilt: its journal state, row and phases."""

    def __init__(self, sid: str, plan: ty.Optional[dict] = None) -> None:
        self.state = jrn.ServerState(jrn.PLANNED, plan=plan)
        self.report = ServerReport(sid)
        self.facts: dict = {}       # of its last verdict or interruption
        self.stop_message = ''
        self.phase: ty.Optional[str] = None
        self.since: ty.Optional[datetime.datetime] = None
        if plan is not None:
            r = self.report
            r.name = str(plan.get('name') or '')
            r.project_id = plan.get('project_id')
            r.source = plan.get('source')
            r.mode = plan.get('mode')
            if plan.get('verdict') == 'skipped':
                self.state = self.state._replace(state=jrn.SKIPPED)
                r.result, r.message = R.SKIPPED, str(plan.get('reason') or '')

    # -- the timeline --------------------------------------------------------
    def enter(self, phase: ty.Optional[str],
              at: ty.Optional[datetime.datetime]) -> None:
        """Phase ``phase`` from ``at`` on (None: out of the timeline)."""
        if at is None or phase == self.phase:
            return
        if self.phase is not None and self.since is not None and \
                at > self.since:  # (a zero-length phase is not drawn)
            self.report.spans.append(Span(self.phase, self.since, at))
        self.phase, self.since = phase, at

    def mark(self, at: ty.Optional[datetime.datetime], what: str,
             message: str) -> None:
        if at is not None:
            self.report.marks.append(Mark(at, what, message))

    # -- the events ----------------------------------------------------------
    def event(self, record: dict, at: ty.Optional[datetime.datetime]
              ) -> None:
        name = record.get('event')
        before = self.state.state
        self.state = jrn.apply(self.state, record)
        if name == 'submitting':
            if record.get('mode') and not self.report.mode:
                self.report.mode = record['mode']
            self.enter(MIGRATING, at)
        elif name in _IN_FLIGHT:
            if self.phase in (None, QUEUED):
                self.enter(MIGRATING, at)
        elif name in ('submit-failed', 'not-taken', 'not-sent'):
            if self.state.state == jrn.PLANNED:
                self.enter(QUEUED, at)  # to be sent again
        elif name == 'phase':
            phase = _NOVA_PHASES.get(str(record.get('phase')))
            if phase is not None:
                self.enter(phase, at)
            elif self.phase in (None, QUEUED):
                # Nova's steps of the copy; never back from a later phase
                # (Nova's "confirmed" comes after "confirming").
                self.enter(MIGRATING, at)
        elif name in _EVENT_PHASES:
            self.enter(_EVENT_PHASES[name], at)
        elif name == 'abort-sent':
            self.mark(at, 'abort-sent', 'deadline reached: abort sent')
        elif name in _STALL_EVENTS:
            self.mark(at, str(name), str(record.get('note')
                                         or record.get('message') or ''))
        elif name == 'verdict':
            self._verdict(record, at)
        elif name == 'interrupted':
            self.facts = record
            # Why its run stopped following it (older journals: not said).
            self.stop_message = str(record.get('message') or '')
            self.enter(None, at)
            self.mark(at, R.INTERRUPTED.value,
                      self.stop_message or INTERRUPTED_MESSAGE)
        if before == jrn.FINISHED and self.state.state != jrn.FINISHED:
            self._reopen()

    def _verdict(self, record: dict,
                 at: ty.Optional[datetime.datetime]) -> None:
        r = self.report
        self.facts = record
        try:
            r.result = model.Result(record.get('result'))
        except ValueError:
            r.result = None
        r.message = str(record.get('message') or '')
        r.verdict = True
        self.enter(None, at)
        if r.result is not None and r.result not in SUCCESS + (
                R.SKIPPED, R.REVERTED):
            self.mark(at, r.result.value, r.message)

    def _reopen(self) -> None:
        """A resume took it up again: its old verdict no longer stands."""
        r = self.report
        r.result, r.message, r.verdict = None, '', False

    def resumed(self, at: ty.Optional[datetime.datetime]) -> None:
        """A resume decides where it stands, as ``--resume`` does."""
        self.stop_message = ''
        state = jrn.reopened(self.state)
        if state != self.state.state:
            self.state = self.state._replace(state=state)
            self._reopen()
        if state == jrn.PLANNED:
            self.enter(QUEUED, at)
        elif state in (jrn.SUBMITTED, jrn.SUBMITTING, jrn.UNCERTAIN):
            self.enter(MIGRATING, at)

    def stopped(self, at: ty.Optional[datetime.datetime]) -> None:
        """Its run ended (interrupted, or the process died)."""
        self.enter(None, at)

    # -- the row -------------------------------------------------------------
    def finish(self, running: bool) -> ServerReport:
        r = self.report
        state = self.state.state
        facts = self.facts
        for key, attr in (('name', 'name'), ('source', 'source'),
                          ('dest', 'dest'), ('mode', 'mode')):
            if facts.get(key):
                setattr(r, attr, facts[key])
        attempts = facts.get('attempts')
        r.attempts = attempts if isinstance(attempts, int) \
            else self.state.attempts
        duration = facts.get('duration')
        r.duration = duration if isinstance(duration, (int, float)) and \
            r.verdict else None
        if state in (jrn.FINISHED, jrn.SKIPPED):
            r.standing = 'done'
        elif state == jrn.PLANNED:
            r.standing = 'queued'
            if not running:
                r.result, r.message = R.NOT_STARTED, NOT_SUBMITTED_MESSAGE
        else:
            r.standing = 'inflight'
            if not running:
                r.result = R.INTERRUPTED
                r.message = self.stop_message or INTERRUPTED_MESSAGE
        return r


def build(path: str, running: ty.Optional[bool] = None) -> Report:
    """The report of the journal at ``path``.

    Raises ``journal.JournalError`` (the same messages as ``--resume``) for
    a journal that cannot be read, and for one whose records are not of the
    shape this tool writes (edited by hand, another tool's file).
    ``running``: whether a batch holds it (probed if not given).
    """
    header, records, torn = jrn.read(path)
    try:
        return _build(path, header, records, torn, running)
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        raise jrn.JournalError('journal %s is damaged: a record is not of '
                               'the shape this tool writes (%s: %s)'
                               % (path, type(exc).__name__, exc))


def _build(path: str, header: dict, records: ty.List[dict], torn: bool,
           running: ty.Optional[bool]) -> Report:
    if running is None:
        running = jrn.in_use(path)
    servers: ty.Dict[str, _Server] = {}
    started = _time(header)
    runs = [Run(started)] if started is not None else []
    last = started
    # A run whose process died leaves no record: its end is its last one.
    for number, record in enumerate(records[1:], 2):
        at = _time(record) or last
        kind = record['type']
        if kind == 'plan':
            items = record.get('servers')
            if not isinstance(items, list) or not all(
                    isinstance(i, dict) and isinstance(i.get('id'), str)
                    for i in items):
                raise jrn.JournalError('journal %s is damaged at line %d: a '
                                       'plan without server IDs'
                                       % (path, number))
            for item in items:
                servers[item['id']] = server = _Server(item['id'], item)
                if server.state.state == jrn.PLANNED:
                    server.enter(QUEUED, at)
        elif kind == 'event':
            sid = record['server']
            if sid not in servers:
                servers[sid] = _Server(sid)
            servers[sid].event(record, at)
        elif kind == 'interrupted':
            for server in servers.values():
                server.stopped(at)
            if runs:
                runs[-1].ended, runs[-1].how = at, INTERRUPTED
                runs[-1].error = str(record.get('error') or '')
        elif kind == 'host-check':
            if runs:
                runs[-1].host_checks.append(record)
        elif kind == 'rolling-stopped':
            # A host of a rolling run stopped it (its command failed, it
            # was not empty): the batch exited 1.
            if runs:
                runs[-1].error = str(record.get('error') or
                                     'a host stopped the rolling run')
        elif kind == 'resumed':
            for server in servers.values():
                server.stopped(last)
            if runs and runs[-1].ended is None:
                runs[-1].ended, runs[-1].how = last, 'stopped'
            if at is not None:
                runs.append(Run(at))
            for server in servers.values():
                server.resumed(at)
        last = at
    end = last
    for server in servers.values():
        server.stopped(end)
    if runs and runs[-1].ended is None and not running:
        runs[-1].ended = end
    rows = [s.finish(running) for s in servers.values()]
    report = Report(os.path.abspath(path), header, RUNNING, rows, runs,
                    torn, started, None, end)
    if not running:
        last_run_interrupted = bool(runs) and runs[-1].how == INTERRUPTED
        done = all(s.standing == 'done' for s in rows)
        report.state = FINISHED if done and not last_run_interrupted \
            else INTERRUPTED
        report.finished = end
        if runs and runs[-1].how == '' and report.state == INTERRUPTED:
            runs[-1].how = 'stopped'
    return report


class Listed(ty.NamedTuple):
    path: str
    report: ty.Optional[Report]
    error: str = ''


def list_journals(directory: ty.Optional[str] = None) -> ty.List[Listed]:
    """Every journal in ``directory`` (the default one), oldest first.

    A journal that cannot be read is listed with its error, not skipped.
    """
    directory = directory or jrn.default_dir()
    try:
        names = sorted(n for n in os.listdir(directory)
                       if n.endswith('.jsonl'))
    except FileNotFoundError:
        return []
    listed = []
    for name in names:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        try:
            listed.append(Listed(path, build(path)))
        except (jrn.JournalError, OSError) as exc:
            listed.append(Listed(path, None, str(exc)))
    epoch = datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    listed.sort(key=lambda x: ((x.report.started or epoch)
                               if x.report else epoch, x.path))
    return listed
