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

"""Rolling maintenance: hosts one step after another, each server once.

The hosts are ordered emptiest first and taken ``max_hosts`` at a time (a
step). Each host of a step goes through its phases, each journaled as it
ends: disabled (its compute service, with a reason naming the run), drained
(the batch runner over the servers found on it at its turn), checked
(empty), its host command run, enabled (once nova-compute reports up again
after the command), done. A resume replays those records and continues at
the first phase not recorded; a host command that finished with exit 0 is
never run again, one that failed or never reported back runs again with
``OSC_MIGRATE_RESUMED=1``.

Steering: while a step drains, the hosts still waiting their turn are kept
disabled (with the run's reason) so that the scheduler does not place the
step's servers on hosts that will be drained later, as long as the other
enabled hosts have room (``room``); otherwise the run falls back to every
enabled host, says so, and a server may move twice. Only services whose
disabled reason carries this run's tag are ever enabled by it.
"""

import dataclasses
import json
import time
import typing as ty

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import hostcommand
from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus.engine import plan
from osc_migrate_plus.engine import rolling_seams as seams
from osc_migrate_plus.engine import session
from osc_migrate_plus import model

R = model.Result
DEFAULT_REASON = 'rolling maintenance'
MOVED = (R.MIGRATED.value, R.CONFIRMED.value)
# Nova keeps 255 characters of a disabled reason.
REASON_MAX = 255


def tag(run_id: str) -> str:
    """What marks a service as disabled by this run, in its reason."""
    return '[osc-migrate-plus rolling %s]' % run_id


@dataclasses.dataclass
class RollingOptions:
    hosts: ty.Tuple[str, ...]  # in the order they are maintained
    run_id: str
    max_hosts: int = 1
    host_command: ty.Optional[str] = None
    enable_after: bool = False
    disable_reason: str = DEFAULT_REASON
    # For the host command and for nova-compute to come back; 0: none.
    timeout: float = 3600.0
    interval: float = 2.0

    # What the journal keeps (header 'rolling'; a resume's changes in a
    # 'rolling-options' record).
    KEPT = ('hosts', 'run_id', 'max_hosts', 'host_command', 'enable_after',
            'disable_reason')

    def to_journal(self) -> ty.Dict[str, ty.Any]:
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in ((k, getattr(self, k)) for k in self.KEPT)}

    @classmethod
    def from_journal(cls, saved: ty.Dict[str, ty.Any]) -> 'RollingOptions':
        known = {k: saved[k] for k in cls.KEPT if k in saved}
        known['hosts'] = tuple(known.get('hosts') or ())
        return cls(**known)

    def steps(self) -> ty.List[ty.Tuple[str, ...]]:
        n = max(1, self.max_hosts)
        return [self.hosts[i:i + n] for i in range(0, len(self.hosts), n)]

    def reason(self, waiting: bool = False) -> str:
        mark = ' ' + tag(self.run_id)
        text = self.disable_reason + (' (waiting its turn)'
                                      if waiting else '')
        return text[:REASON_MAX - len(mark)] + mark


def order_hosts(hosts: ty.Sequence[str],
                items: ty.Sequence[plan.PlanItem]) -> ty.List[str]:
    """Emptiest first, then by name.

    The first hosts send the fewest servers to hosts outside the run; once
    done (and enabled again) they take the fuller hosts' servers, which go
    last, when the most hosts are done.
    """
    load = count_per_host(items)
    return sorted(hosts, key=lambda h: (load.get(h, 0), h))


def count_per_host(items: ty.Sequence[plan.PlanItem]) -> ty.Dict[str, int]:
    load: ty.Dict[str, int] = {}
    for item in items:
        host = item.server.host or ''
        load[host] = load.get(host, 0) + 1
    return load


def order_text(order: ty.Sequence[str],
               items: ty.Sequence[plan.PlanItem]) -> str:
    load = count_per_host(items)
    return ('host order, emptiest first so that each host done can take '
            'the next ones\' servers: %s' % ', '.join(
                '%s (%d server%s)' % (h, load.get(h, 0),
                                      '' if load.get(h, 0) == 1 else 's')
                for h in order))


def _service_up(service: dict) -> bool:
    return service.get('state') == 'up'


def candidates(services: ty.Sequence[dict],
               excluded: ty.Iterable[str]) -> ty.List[str]:
    """Hosts the scheduler may pick: enabled, up, not excluded."""
    excluded = set(excluded)
    return sorted({s['host'] for s in services
                   if s.get('status') == 'enabled' and _service_up(s)
                   and s['host'] not in excluded})


class StepEstimate(ty.NamedTuple):
    step: int
    hosts: ty.Tuple[str, ...]
    servers: int
    destinations: ty.Tuple[str, ...]
    room: ty.Optional[bool]


def estimate(options: RollingOptions, items: ty.Sequence[plan.PlanItem],
             services: ty.Sequence[dict],
             room: seams.Room) -> ty.List[StepEstimate]:
    """For the dry run: per step, whether the others have room.

    Today's usage: the servers of earlier steps are counted where they are
    now, an estimate that errs on the side of too little room.
    """
    run = set(options.hosts)
    outside = candidates(services, run)
    found = []
    done: ty.List[str] = []
    for number, hosts in enumerate(options.steps(), 1):
        servers = [i.server for i in items if i.server.host in hosts
                   and i.verdict != plan.SKIPPED]
        destinations = tuple(sorted(outside + (done if options.enable_after
                                               else [])))
        found.append(StepEstimate(number, hosts, len(servers), destinations,
                                  room(servers, destinations)))
        done += hosts
    return found


def planned_moves(estimates: ty.Sequence[StepEstimate]
                  ) -> ty.Tuple[int, int]:
    """The fewest and the most moves the run may make.

    A server of a step without room may land on a host still waiting its
    turn and move again at each later step.
    """
    least = sum(e.servers for e in estimates)
    most = 0
    for index, e in enumerate(estimates):
        later = len(estimates) - index - 1
        most += e.servers * (1 + (later if not e.room else 0))
    return least, most


def moves(path: str) -> ty.Dict[str, int]:
    """Per server, the migrations a journal's run completed (all resumes).

    Read from the journal itself, so that a server moved before a resume
    counts as well.
    """
    found: ty.Dict[str, int] = {}
    with open(path, 'rb') as f:
        for raw in f:
            try:
                record = json.loads(raw)
            except ValueError:
                continue  # a torn last line
            if isinstance(record, dict) and record.get('event') == \
                    'verdict' and record.get('result') in MOVED:
                sid = str(record.get('server'))
                found[sid] = found.get(sid, 0) + 1
    return found


@dataclasses.dataclass
class HostProgress:
    """Where one host stands, from the journal's records."""

    host: str
    step: int
    index: int  # its place in the run, from 1
    disabled: bool = False
    by_run: bool = True      # False: it was disabled by hand before
    drained: bool = False
    moved: int = 0
    check: ty.Optional[str] = None  # the host check's line
    empty: ty.Optional[bool] = None
    command_tries: int = 0
    command_ok: ty.Optional[bool] = None  # of its last run
    command_exit: ty.Optional[int] = None
    command_tail: str = ''
    command_ended: ty.Optional[str] = None  # on Nova's clock
    enabled: bool = False
    left_disabled: str = ''
    done: bool = False
    fallback: bool = False

    @property
    def phase(self) -> str:
        if self.done:
            return 'done'
        if self.command_ok:
            return 'command done'
        if self.command_tries:
            return 'command failed' if self.command_ok is False \
                else 'command started'
        if self.empty is False:
            return 'not empty'
        if self.drained:
            return 'drained'
        if self.disabled:
            return 'disabled'
        return 'waiting'

    def summary(self) -> str:
        parts = ['step %d' % self.step, self.phase]
        if self.drained:
            parts.append('%d moved off' % self.moved)
        if self.check:
            # The check's line starts with the host's name: said already.
            parts.append(self.check.split(': ', 1)[-1]
                         if self.check.startswith(self.host + ': ')
                         else self.check)
        if self.command_tries:
            parts.append('host command %s%s' % (
                'exit %s' % self.command_exit
                if self.command_exit is not None else
                ('timed out' if self.command_ok is False
                 else 'not finished'),
                ' (%d runs)' % self.command_tries
                if self.command_tries > 1 else ''))
            if self.command_ok is False and self.command_tail:
                parts.append('output: %s' % self.command_tail)
        if self.enabled:
            parts.append('enabled')
        elif self.left_disabled:
            parts.append('left disabled: %s' % self.left_disabled)
        if self.fallback:
            parts.append('drained without steering (fallback)')
        return '%s: %s' % (self.host, ', '.join(parts))


def replay_hosts(options: RollingOptions,
                 records: ty.Iterable[dict]) -> ty.Dict[str, HostProgress]:
    hosts: ty.Dict[str, HostProgress] = {}
    index = 0
    for number, step in enumerate(options.steps(), 1):
        for host in step:
            index += 1
            hosts[host] = HostProgress(host, number, index)
    for record in records:
        kind = record.get('type')
        if kind == 'steer-fallback':
            for host in record.get('hosts', ()):
                if host in hosts:
                    hosts[host].fallback = True
            continue
        p = hosts.get(str(record.get('host')))
        if p is None:
            continue
        if kind == 'host-disabled':
            p.disabled, p.by_run = True, bool(record.get('by_run', True))
        elif kind == 'host-drained':
            p.drained = True
            p.moved = len(record.get('moved') or ())
        elif kind == 'host-checked':
            p.empty, p.check = bool(record.get('empty')), record.get('line')
        elif kind == 'host-command-started':
            p.command_tries += 1
            p.command_ok = None
            p.command_exit = None
        elif kind == 'host-command':
            p.command_ok = bool(record.get('ok'))
            p.command_exit = record.get('exit_code')
            p.command_tail = record.get('tail') or ''
            p.command_ended = record.get('nova_time')
        elif kind == 'host-enabled':
            p.enabled = True
        elif kind == 'host-left-disabled':
            p.left_disabled = record.get('why') or ''
        elif kind == 'host-done':
            p.done = True
    return hosts


class Outcome(ty.NamedTuple):
    completed: bool         # False: interrupted (Ctrl-C, Nova stopped it)
    failure: ty.Optional[str]  # why a host stopped the run
    hosts: ty.List[HostProgress]
    left_disabled: ty.List[str]  # services this run disabled, still so


class Stop(Exception):
    """A host phase failed: the run stops before the next host."""


class Interrupted(Exception):
    """Ctrl-C (or Nova's answer) between two phases."""


class Rolling:
    """One rolling run over a batch's entries."""

    def __init__(self, nova: nova_api.Nova, started: session.Batch,
                 reporter: batch.Reporter, options: RollingOptions,
                 batch_options: batch.Options, room: seams.Room,
                 check_host: seams.CheckHost,
                 records: ty.Iterable[dict] = (),
                 clock: ty.Optional[ty.Callable[[], float]] = None,
                 sleep: ty.Optional[ty.Callable[[float], None]] = None
                 ) -> None:
        self.nova = nova
        self.started = started
        self.journal = started.journal
        self.runner = started.runner
        self.reporter = reporter
        self.options = options
        self.batch_options = batch_options
        self.room = room
        self.check_host = check_host
        self.clock = clock or time.monotonic
        self.sleep = sleep or time.sleep
        self.tag = tag(options.run_id)
        self.hosts = replay_hosts(options, records)

    # -- helpers ------------------------------------------------------------
    def _write(self, kind: str, **fields: ty.Any) -> None:
        self.journal.write(dict(fields, type=kind))

    def _services(self) -> ty.Dict[str, dict]:
        return {s['host']: s for s in self.nova.compute_services()}

    def _ours(self, service: ty.Optional[dict]) -> bool:
        return bool(service and service.get('status') == 'disabled' and
                    self.tag in (service.get('disabled_reason') or ''))

    def _check_stop(self) -> None:
        if self.runner.stop_requested:
            raise Interrupted()

    def _latest(self) -> ty.Dict[str, batch.Entry]:
        """Each server's newest entry (a server moved twice has two)."""
        return {e.server_id: e for e in self.started.entries}

    # -- the run ------------------------------------------------------------
    def run(self) -> Outcome:
        failure = None
        completed = True
        for entry in self.started.deleted:
            self.runner.finish(entry, R.DELETED, 'the server was deleted')
        total = len(self.options.hosts)
        try:
            for number, step in enumerate(self.options.steps(), 1):
                todo = [h for h in step if not self.hosts[h].done]
                if not todo:
                    continue
                self._check_stop()
                self.reporter.info('step %d of %d: %s' % (
                    number, len(self.options.steps()), ', '.join(todo)))
                self._steer(number, todo)
                self._disable(todo)
                self._drain(todo)
                self._check(todo)
                self._command(todo, total)
                self._enable(todo)
                for host in todo:
                    self._write('host-done', host=host)
                    self.hosts[host].done = True
        except Interrupted:
            completed = False
        except Stop as exc:
            failure = str(exc)  # the command says it
        except (model.NovaError, model.CredentialsExpired) as exc:
            # Between two phases: each phase done is journaled already.
            failure = 'stopped by Nova\'s answer: %s; --resume continues ' \
                      'at this phase' % exc
        if failure is not None:
            # The run's verdict, for the report: every server may have
            # reached its goal, yet a host stopped the run (exit 1).
            self._write('rolling-stopped', error=failure)
        left = self._left_disabled()
        return Outcome(completed, failure, [self.hosts[h] for h in
                                            self.options.hosts], left)

    # -- steering -----------------------------------------------------------
    def _steer(self, number: int, step: ty.List[str]) -> None:
        """Keep the hosts waiting their turn out of the scheduler's choice.

        Only while the other enabled hosts have room for this step's
        servers; otherwise enable the waiting hosts this run disabled.
        """
        waiting = [h for h in self.options.hosts
                   if h not in step and not self.hosts[h].done]
        if not waiting:
            return
        services = self._services()
        destinations = candidates(list(services.values()),
                                  set(step) | set(waiting))
        latest = self._latest()
        servers = [e.server for e in latest.values()
                   if e.item.server.host in step
                   and e.state != batch.State.DONE]
        fits = self.room(servers, destinations)
        if fits:
            for host in waiting:
                service = services.get(host)
                if service and service.get('status') == 'enabled':
                    self.nova.disable_service(service['id'],
                                              self.options.reason(True))
                    self._write('steer-disabled', host=host)
            self.reporter.info(
                'steering: hosts waiting their turn (%s) kept disabled; the '
                'servers of %s go to %s' % (', '.join(waiting),
                                            ', '.join(step),
                                            ', '.join(destinations)))
            return
        why = ('capacity unknown' if fits is None else
               'not enough room on %s' % (', '.join(destinations)
                                          or 'no other enabled host'))
        enabled = []
        for host in waiting:
            if self._ours(services.get(host)):
                self.nova.enable_service(services[host]['id'])
                self._write('steer-enabled', host=host)
                enabled.append(host)
        self._write('steer-fallback', hosts=list(step), why=why)
        for host in step:
            self.hosts[host].fallback = True
        self.reporter.info(
            'fallback: %s for the servers of %s: any enabled host may take '
            'them, including hosts waiting their turn (%s), so some may '
            'move twice%s' % (why, ', '.join(step), ', '.join(waiting),
                              '; enabled again: %s' % ', '.join(enabled)
                              if enabled else ''))

    # -- phases -------------------------------------------------------------
    def _disable(self, step: ty.List[str]) -> None:
        services = self._services()
        for host in step:
            p = self.hosts[host]
            service = services.get(host)
            if service is None:
                raise Stop('%s: no nova-compute service; the run stops'
                           % host)
            if p.disabled and (not p.by_run or self._ours(service)):
                continue
            if service.get('status') == 'disabled' and \
                    not self._ours(service):
                # Disabled by hand: drained all the same, never enabled.
                reason = service.get('disabled_reason') or ''
                self._write('host-disabled', host=host, by_run=False,
                            reason=reason)
                p.disabled, p.by_run = True, False
                self.reporter.info('%s was already disabled by hand (%s): '
                                   'left so, and never enabled by this run'
                                   % (host, reason or 'no reason'))
                continue
            reason = self.options.reason()
            self.nova.disable_service(service['id'], reason)
            self._write('host-disabled', host=host, by_run=True,
                        reason=reason)
            p.disabled, p.by_run = True, True
            self.reporter.info('%s: nova-compute disabled (%s)'
                               % (host, reason))

    def _step_entries(self, step: ty.List[str]
                      ) -> ty.Tuple[ty.List[batch.Entry],
                                    ty.List[ty.Tuple[batch.Entry, dict]]]:
        """The entries of the servers on these hosts at their turn.

        Nova is asked what is on each host now: a server placed there since
        the plan (by a fallback step, or by a user) is drained too, a
        planned one that left is seen gone before anything is sent.
        """
        latest = self._latest()
        entries = [e for e in latest.values() if e.item.server.host in step]
        mine = {e.server_id for e in entries}
        fresh: ty.List[plan.PlanItem] = []
        seen = set()
        for host in step:
            for server in self.nova.list_servers(host=host):
                seen.add(server.id)
                if server.id in mine:
                    entry = latest[server.id]
                    if entry.state == batch.State.QUEUED:
                        entry.follow.server = server
                    continue
                fresh.append(plan.preflight(server, self.batch_options.mode,
                                            (host,),
                                            self.batch_options.host))
        for entry in entries:
            if entry.state == batch.State.QUEUED and \
                    entry.server_id not in seen:
                try:
                    entry.follow.server = self.nova.get_server(
                        entry.server_id)
                except model.NotFound:
                    entry.follow.server = dataclasses.replace(
                        entry.server, status='DELETED')
        adoptions = [(e, how) for e, how in self.started.adoptions
                     if e.server_id in mine and e.state == batch.State.QUEUED]
        if fresh:
            self.journal.write({'type': 'plan', 'servers': [
                i.to_journal() for i in fresh]})
            for item in fresh:
                entry = batch.new_entry(item, self.batch_options)
                self.started.entries.append(entry)
                entries.append(entry)
                self.reporter.event(entry, 'found on %s at its turn: %s' % (
                    item.server.host, item.verdict.value))
                if item.verdict == plan.ADOPT:
                    adoptions.append((entry, {}))
        return entries, adoptions

    def _drain(self, step: ty.List[str]) -> None:
        hosts = [h for h in step if not self.hosts[h].drained]
        if not hosts:
            return
        self._check_stop()
        entries, adoptions = self._step_entries(hosts)
        if not self.runner.run(entries, adoptions):
            raise Interrupted()
        for host in hosts:
            moved = [e.server_id for e in entries
                     if e.item.server.host == host and e.result is not None
                     and e.result.value in MOVED]
            self._write('host-drained', host=host, moved=moved)
            p = self.hosts[host]
            p.drained, p.moved = True, len(moved)
            self.reporter.info('%s: drained, %d server(s) moved off'
                               % (host, len(moved)))

    def _check(self, step: ty.List[str]) -> None:
        full = []
        for host in step:
            p = self.hosts[host]
            if p.command_ok:
                continue  # checked before its command ran
            self._check_stop()
            found = self.check_host(host, self.started.entries)
            self._write('host-checked', host=host, empty=found.empty,
                        line=found.line)
            p.empty, p.check = found.empty, found.line
            self.reporter.info(found.line)
            if not found.empty:
                full.append(found.line)
        if full:
            raise Stop('not empty after the drain, so no host command ran '
                       'and it stays disabled: %s' % '; '.join(full))

    def _command(self, step: ty.List[str], total: int) -> None:
        """Run the host command on each host of the step, all at once.

        A first Ctrl-C lets running commands finish (stopping a reboot
        halfway helps no one); a second one kills them, and a resume runs
        them again with OSC_MIGRATE_RESUMED=1.
        """
        command = self.options.host_command
        todo = [h for h in step if command and not self.hosts[h].command_ok]
        if not todo:
            return
        self._check_stop()
        running: ty.Dict[str, hostcommand.HostCommand] = {}
        failed = []
        try:
            for host in todo:
                p = self.hosts[host]
                resumed = p.command_tries > 0
                self._write('host-command-started', host=host,
                            resumed=resumed)
                p.command_tries += 1
                running[host] = hostcommand.HostCommand(
                    command or '', hostcommand.environment(
                        host, p.index, total, resumed),
                    self.clock(), self.options.timeout)
                self.reporter.info('%s: host command started%s' % (
                    host, ' again (OSC_MIGRATE_RESUMED=1)' if resumed
                    else ''))
            while running:
                for host, cmd in list(running.items()):
                    outcome = cmd.poll(self.clock())
                    if outcome is None:
                        continue
                    del running[host]
                    ended = self.nova.nova_now()
                    p = self.hosts[host]
                    p.command_ok, p.command_exit = (outcome.passed,
                                                    outcome.exit_code)
                    p.command_tail = outcome.tail
                    p.command_ended = ended.isoformat() if ended else None
                    self._write('host-command', host=host,
                                exit_code=outcome.exit_code,
                                ok=outcome.passed, tail=outcome.tail,
                                message=outcome.message,
                                nova_time=p.command_ended)
                    if outcome.passed:
                        self.reporter.info('%s: host command exited 0%s' % (
                            host, ': ' + outcome.tail if outcome.tail
                            else ''))
                    else:
                        failed.append('%s: %s' % (host, outcome.message))
                if running:
                    self.sleep(self.options.interval)
        finally:
            for cmd in running.values():
                cmd.kill()
        if failed:
            raise Stop('host command failed, the run stops here and the '
                       'host stays disabled: %s' % '; '.join(failed))

    def _enable(self, step: ty.List[str]) -> None:
        if not self.options.enable_after:
            return
        for host in step:
            p = self.hosts[host]
            if p.enabled or p.left_disabled:
                continue
            self._check_stop()
            if not p.by_run:
                why = 'it was disabled by hand before the run'
                self._write('host-left-disabled', host=host, why=why)
                p.left_disabled = why
                self.reporter.info('%s: not enabled: %s' % (host, why))
                continue
            service = self._wait_up(host, model.nova_time(p.command_ended))
            if not self._ours(service):
                why = ('enabled meanwhile' if service.get('status') ==
                       'enabled' else 'disabled by someone else meanwhile '
                       '(%s)' % service.get('disabled_reason'))
                self._write('host-left-disabled', host=host, why=why)
                p.left_disabled = why
                self.reporter.info('%s: not enabled by this run: %s'
                                   % (host, why))
                continue
            self.nova.enable_service(service['id'])
            self._write('host-enabled', host=host)
            p.enabled = True
            self.reporter.info('%s: nova-compute up, enabled again' % host)

    def _wait_up(self, host: str, since: ty.Optional[ty.Any]) -> dict:
        """Until nova-compute reports up with a heartbeat after ``since``.

        A host that rebooted may still look up a moment after its command
        (Nova notices a missing heartbeat only later): a heartbeat newer
        than the command's end is what says it is back.
        """
        timeout = self.options.timeout or hostcommand.NO_LIMIT
        deadline = self.clock() + timeout
        said_down = False
        while True:
            service = self._services().get(host)
            if service is None:
                raise Stop('%s: its nova-compute service is gone' % host)
            beat = model.nova_time(service.get('updated_at'))
            if _service_up(service) and (since is None or (
                    beat is not None and beat >= since)):
                return service
            if not _service_up(service) and not said_down:
                said_down = True
                self.reporter.info('%s: nova-compute is down, waiting for '
                                   'it to come back' % host)
            if self.clock() >= deadline:
                raise Stop('%s: nova-compute did not report up within %ds '
                           'after the host command; it stays disabled'
                           % (host, timeout))
            self._check_stop()
            self.sleep(self.options.interval)

    def _left_disabled(self) -> ty.List[str]:
        try:
            services = self._services()
        except (model.NovaError, model.CredentialsExpired):
            return [h for h, p in self.hosts.items()
                    if p.disabled and p.by_run and not p.enabled]
        return sorted(h for h, s in services.items() if self._ours(s))


class RollingBatch(session.Batch):
    """A batch whose run is a rolling one (what the command runs)."""

    rolling: Rolling
    outcome: ty.Optional[Outcome] = None

    def run(self) -> bool:
        self.outcome = self.rolling.run()
        return self.outcome.completed


def wrap(started: session.Batch, rolling_options: RollingOptions,
         batch_options: batch.Options, nova: nova_api.Nova,
         reporter: batch.Reporter, room: seams.Room,
         check_host: seams.CheckHost,
         records: ty.Iterable[dict] = ()) -> RollingBatch:
    """``started`` (new or resumed) as a rolling run."""
    wrapped = RollingBatch(started.journal, started.runner, started.entries,
                           started.adoptions, started.deleted)
    wrapped.rolling = Rolling(nova, wrapped, reporter, rolling_options,
                              batch_options, room, check_host, records)
    return wrapped


def resumed_options(header: dict, records: ty.Iterable[dict]
                    ) -> ty.Optional[RollingOptions]:
    """A journal's rolling options, with a resume's changes; None if none."""
    saved = header.get('rolling')
    if not saved:
        return None
    merged = dict(saved)
    for record in records:
        if record.get('type') == 'rolling-options':
            merged.update({k: v for k, v in record.items()
                           if k in RollingOptions.KEPT})
    return RollingOptions.from_journal(merged)
