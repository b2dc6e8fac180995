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

"""A fake Nova at the HTTP level, as unkind as a real one.

The real ``NovaGateway`` and the real commands run against ``FakeNova.proxy``
(an openstacksdk compute proxy whose ``request`` Nova answers). What makes it
unkind, as Nova is:

* It has its own clock. Every timestamp (``Date`` header, ``updated``,
  ``created_at``, ``updated_at``) is on Nova's wall clock, which
  ``nova_offset`` may put off the client's; time passes while a request is
  on the wire (``latency``), so a burst of requests sees Nova move.
* Everything is asynchronous, in Nova's order: the 202 comes before the
  migration record, a new record has ``updated_at`` None (so
  ``changes-since`` does not return it until its first update), a cold
  migration's record says ``finished``/``confirmed`` a moment before the
  server follows, a live one's server is done a moment before its record.
* ``changes-since`` keeps ``updated >= since`` and, for servers, includes
  deleted ones (status ``DELETED``); a deleted server's migration records
  are soft-deleted with it and vanish from ``os-migrations``.
* Replies get lost (the request is applied later, or never), requests fail
  with 5xx or a connection reset, reads fail.
* Names are matched as case-insensitive regexes (MySQL), a policy may hide
  host names, Nova answers conflicts with its own words.
* A live migration may stall (its progress figures stop decreasing until
  it is forced to complete or aborted) or report no figures at all, as
  drivers other than libvirt do.
* Its work may slow down with what it does at once (``contend``), as a
  Nova sharing a few cores with its computes does: more in flight than it
  can work on makes each migration longer, and past that point the
  overhead makes the whole batch slower.

``client_time()`` puts the client on the same simulated clock: its sleeps
are where Nova's work happens.
"""

import copy
import datetime
import email.utils
import heapq
import http.client
import itertools
import json
import re
import threading
import time
import types
import typing as ty
from unittest import mock
import urllib.parse
import uuid

import fixtures
from keystoneauth1 import discover
from keystoneauth1 import exceptions as ksa_exc
from openstack.compute.v2 import _proxy
import requests

ENDPOINT = 'http://nova.example:8774/v2.1'
NO_VALID_HOST = ('No valid host was found. There are not enough hosts '
                 'available.')
# Seconds of simulated time each step of Nova's work takes.
TIMING = {
    'record_delay': 0.5,     # the 202 to the conductor creating the record
    'step': 0.1,             # between two quick steps of one process
    'lag': 0.2,              # a record updated, then the server saved
    'cold_duration': 3.0,    # migrating to finished
    'confirm_delay': 1.0,
    'revert_delay': 1.0,
    'live_duration': 2.0,    # running to the server on its destination
    'live_record_lag': 0.5,  # ... then the record completed
    'abort_delay': 0.5,
}
MIGRATION_TIME = '%Y-%m-%dT%H:%M:%S.%f'
# nova.conf [DEFAULT] report_interval: a running nova-compute's heartbeat
# (its service's updated_at) every so many seconds.
REPORT_INTERVAL = 10.0
SERVER_TIME = '%Y-%m-%dT%H:%M:%SZ'
MEMORY_TOTAL = 4 * 1024 ** 3

# nova.api.openstack.common._STATE_MAP, the part a migration meets.
_STATUS = {
    'active': {None: 'ACTIVE', 'migrating': 'MIGRATING',
               'resize_prep': 'RESIZE', 'resize_migrating': 'RESIZE',
               'resize_migrated': 'RESIZE', 'resize_finish': 'RESIZE',
               'rebooting': 'REBOOT'},
    'stopped': {None: 'SHUTOFF', 'resize_prep': 'RESIZE',
                'resize_migrating': 'RESIZE', 'resize_migrated': 'RESIZE',
                'resize_finish': 'RESIZE'},
    'resized': {None: 'VERIFY_RESIZE', 'resize_reverting': 'REVERT_RESIZE'},
    'paused': {None: 'PAUSED', 'migrating': 'MIGRATING'},
    'suspended': {None: 'SUSPENDED'},
    'error': {None: 'ERROR'},
    'deleted': {None: 'DELETED'},
    'shelved_offloaded': {None: 'SHELVED_OFFLOADED'},
}
_VM_STATE = {'ACTIVE': 'active', 'SHUTOFF': 'stopped', 'PAUSED': 'paused',
             'SUSPENDED': 'suspended', 'ERROR': 'error',
             'SHELVED_OFFLOADED': 'shelved_offloaded'}
LIVE_IN_PROGRESS = ('queued', 'preparing', 'running', 'post-migrating')
_ERROR_KEYS = {400: 'badRequest', 403: 'forbidden', 404: 'itemNotFound',
               409: 'conflictingRequest'}


def status_of(vm_state: str, task_state: ty.Optional[str]) -> str:
    states = _STATUS.get(vm_state, {None: 'UNKNOWN'})
    return states.get(task_state, states[None])


def _mv(text: ty.Optional[str]) -> ty.Tuple[int, ...]:
    return tuple(discover.normalize_version_number(text or '2.1'))


class NovaFault(Exception):
    """Nova's answer to a request it refuses: status and its words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Caller(ty.NamedTuple):
    """Who sends a request: a role of Nova's default policy, a project."""
    role: str = 'admin'      # 'admin', 'manager' (nova >= 32) or 'member'
    project: str = 'admin'

    @property
    def admin(self) -> bool:
        return self.role == 'admin'


ADMIN = Caller()


class Request(ty.NamedTuple):
    method: str
    path: str
    params: dict
    body: ty.Any
    microversion: ty.Tuple[int, ...]
    caller: Caller = ADMIN

    @property
    def action(self) -> ty.Optional[str]:
        if self.method == 'POST' and self.path.endswith('/action') and \
                isinstance(self.body, dict) and self.body:
            return next(iter(self.body))
        return None

    @property
    def server_id(self) -> ty.Optional[str]:
        match = re.match(r'/servers/([^/]+)', self.path)
        return match.group(1) if match and match.group(1) != 'detail' \
            else None


class FakeNova:
    """One simulated cloud: compute hosts, servers, Nova's processes."""

    def __init__(self, hosts: int = 3, nova_offset: float = 0.0,
                 latency: float = 0.05, hide_hosts: bool = False,
                 max_microversion: str = '2.100',
                 max_limit: int = 1000, caller: Caller = ADMIN) -> None:
        # The client's wall clock is base + now, Nova's base + now + offset.
        self.base = datetime.datetime.now(datetime.timezone.utc).replace(
            microsecond=0)
        self.now = 0.0
        self.nova_offset = nova_offset
        self.latency = latency
        self.hide_hosts = hide_hosts
        self.max_limit = max_limit
        # The client's credentials; Nova's own doings run as admin.
        self.caller = caller
        self.timing = dict(TIMING)
        self.services = {}
        for n in range(1, hosts + 1):
            host = 'compute%d' % n
            self.services[host] = {
                'id': str(uuid.uuid4()), 'binary': 'nova-compute',
                'host': host, 'zone': 'nova', 'status': 'enabled',
                'state': 'up', 'disabled_reason': None,
                'forced_down': False, 'updated_at': None,
                # The compute node's UUID: its resource provider's too.
                'node_uuid': str(uuid.uuid4())}
        # nova-compute heartbeats: when each started beating, when it
        # stopped (service_down), when its record was last updated (PUT).
        self._beating_since: ty.Dict[str, float] = {}
        self._stopped_at: ty.Dict[str, float] = {}
        self._service_put: ty.Dict[str, float] = {}
        self._servers: ty.Dict[str, dict] = {}
        self.aggregates: ty.Dict[str, ty.List[str]] = {}
        self._migrations: ty.List[dict] = []
        self._actions: ty.Dict[str, ty.List[dict]] = {}
        self._queue: ty.List[tuple] = []
        self._seq = itertools.count()
        self._mids = itertools.count(1)
        self._rotation = 0
        self._fail_rules: ty.List[dict] = []
        self._before_record: ty.Set[str] = set()
        # Live migrations of these servers stall (or report no figures).
        self._stalls: ty.Dict[str, dict] = {}
        self._lost_rules: ty.List[dict] = []
        self._error_rules: ty.List[dict] = []
        self._read_rules: ty.List[dict] = []
        self._after: ty.List[tuple] = []
        # What the client sent: (sim_time, method, path, params or action).
        self.requests: ty.List[tuple] = []
        # Requests whose reply was lost and that Nova has not applied yet.
        self.lost: ty.List[Request] = []
        # Requests applied late: (sim_time, method, path, status, message).
        self.late: ty.List[tuple] = []
        # Called at the start of every client sleep (a test may raise).
        self.sleep_hooks: ty.List[ty.Callable[[], None]] = []
        # From then on (sim time) the client's token is refused (401).
        self.token_expires: ty.Optional[float] = None
        # A FakePlacement attaches itself: the scheduler then places only
        # where Placement has room (and claims it at once, as Nova does).
        self.placement: ty.Any = None
        # Nova's API serves many clients at once; the simulation, one
        # request at a time. ``gate`` (a test's) sees each request first,
        # outside the lock: where concurrent requests can meet.
        self._lock = threading.RLock()
        self.gate: ty.Optional[ty.Callable[[str, str, ty.Any], None]] = None
        # contend(): migrations Nova works on at full speed, and the extra
        # cost of each one beyond (None: no contention).
        self._contention: ty.Optional[ty.Tuple[int, float]] = None

        self.proxy = mock.Mock(spec=_proxy.Proxy)
        self.proxy.request.side_effect = self._request
        self.proxy.get_endpoint_data.return_value = discover.EndpointData(
            min_microversion='2.1', max_microversion=max_microversion)
        self.proxy.get_endpoint.return_value = ENDPOINT
        self.proxy.default_microversion = None

    # -- clocks ------------------------------------------------------------
    def nova_time(self) -> datetime.datetime:
        """Nova's wall clock, now."""
        return self.base + datetime.timedelta(
            seconds=self.now + self.nova_offset)

    def client_wall(self) -> datetime.datetime:
        """The client's wall clock (the real clock, following sim time)."""
        return self.base + datetime.timedelta(seconds=self.now)

    def at(self, when: ty.Optional[float], work: ty.Callable[[], None]
           ) -> None:
        """Schedule Nova's work at a sim time (now, or at once if past)."""
        if when is None or when <= self.now:
            work()
            return
        heapq.heappush(self._queue, (when, next(self._seq), work))

    def after(self, seconds: float, work: ty.Callable[[], None]) -> None:
        heapq.heappush(self._queue, (self.now + seconds, next(self._seq),
                                     work))

    def advance(self, seconds: float) -> None:
        """Let time pass, running Nova's scheduled work in order."""
        end = self.now + max(0.0, seconds)
        while self._queue and self._queue[0][0] <= end:
            when, _, work = heapq.heappop(self._queue)
            self.now = max(self.now, when)
            work()
        self.now = end

    def settle(self, limit: float = 86400.0) -> None:
        """Run everything Nova has scheduled (within ``limit`` seconds)."""
        end = self.now + limit
        while self._queue and self._queue[0][0] <= end:
            self.advance(self._queue[0][0] - self.now)

    def client_time(self, real_sleep: float = 0.0) -> fixtures.Fixture:
        return ClientTime(self, real_sleep)

    # -- the cloud, seen by a test -----------------------------------------
    def add_server(self, name: str, host: str = 'compute1',
                   status: str = 'ACTIVE', project_id: str = 'p1') -> str:
        sid = str(uuid.uuid4())
        now = self.nova_time()
        self._servers[sid] = {
            'id': sid, 'name': name, 'project_id': project_id,
            'user_id': 'u1', 'vm_state': _VM_STATE[status],
            'task_state': None,
            'host': None if status == 'SHELVED_OFFLOADED' else host,
            'created': now,
            'updated': now, 'deleted': False, 'fault': None}
        self._actions[sid] = [{
            'action': 'create', 'request_id': self._request_id(),
            'message': None, 'start_time': now, 'updated_at': now,
            'events': []}]
        return sid

    def service_down(self, host: str) -> None:
        """nova-compute stops (a reboot): no heartbeat, forced down.

        As the harness does (and fencing would): Nova shows it down at
        once, not after service_down_time.
        """
        self._stopped_at[host] = self.now
        self.services[host].update(state='down', forced_down=True)

    def service_up(self, host: str) -> None:
        """nova-compute starts again: heartbeats from now on."""
        self._stopped_at.pop(host, None)
        self._beating_since[host] = self.now
        self.services[host].update(state='up', forced_down=False)

    def _service_doc(self, s: dict) -> dict:
        """A service as Nova shows it: updated_at is its last save.

        Saved by each heartbeat (every REPORT_INTERVAL while it runs) and
        by each update through the API.
        """
        host = s['host']
        since = self._beating_since.get(host, 0.0)
        until = self._stopped_at.get(host, self.now)
        beat = since + (until - since) // REPORT_INTERVAL * REPORT_INTERVAL
        last = max(beat, self._service_put.get(host, beat))
        doc = dict(s)
        doc['updated_at'] = (self.base + datetime.timedelta(
            seconds=last + self.nova_offset)).strftime(MIGRATION_TIME)
        return doc

    def delete_server(self, sid: str, at: ty.Optional[float] = None) -> None:
        def delete() -> None:
            server = self._servers[sid]
            self._save(server, vm_state='deleted', task_state=None,
                       deleted=True)
            # instance_destroy soft-deletes its migration records too.
            for record in self._migrations:
                if record['instance_uuid'] == sid:
                    record['deleted'] = True
                    record['alive'] = False
        self.at(at, delete)

    def error_server(self, sid: str, at: ty.Optional[float] = None) -> None:
        """The server goes to ERROR, its records left as they are.

        (``_error_out_instance_on_exception`` around a compute operation
        that failed before it saved its record: a confirm whose cleanup of
        the source failed, in releases that left the record confirming.)
        """
        def error() -> None:
            self._save(self._servers[sid], vm_state='error',
                       task_state=None)
        self.at(at, error)

    def restart_compute(self, host: str,
                        at: ty.Optional[float] = None) -> None:
        """nova-compute on ``host`` restarts (a crash, a package update).

        ComputeManager._init_instance, for each server on the host: one in
        resize_migrating (a cold copy under way) is rolled back onto this
        host and its task cleared, its migration record left as it was;
        resize_prep: the task cleared, the record left; migrating (live):
        _reset_live_migration aborts and errors the record only if it is
        ``running``, and clears the task.
        """
        def restart() -> None:
            for server in self._servers.values():
                if server['deleted'] or server['host'] != host:
                    continue
                task = server['task_state']
                if task not in ('resize_migrating', 'resize_prep',
                                'migrating'):
                    continue
                for record in self._migrations:
                    if record['instance_uuid'] != server['id'] or \
                            not self._alive(record):
                        continue
                    # The work in flight dies with the process.
                    record['alive'] = False
                    if task == 'migrating' and \
                            record['status'] == 'running':
                        self._save(record, status='error')
                self._save(server, task_state=None)
        self.at(at, restart)

    def contend(self, parallel: int, thrash: float = 0.1) -> None:
        """Nova's work slows down with the migrations it runs at once.

        Each piece of a migration's work (the conductor picking a host, the
        copy, the confirm) takes its time stretched, when it starts, by the
        migrations under way: shared ``parallel`` ways (a migration beyond
        takes its share of the same cores), and each one beyond ``parallel``
        costs every migration ``thrash`` more (CPU contention, the database,
        periodic tasks). Throughput peaks at ``parallel`` in flight and
        falls past it, as on the two-core test cloud.
        """
        self._contention = (parallel, thrash)

    def _stretched(self, seconds: float) -> float:
        if self._contention is None:
            return seconds
        parallel, thrash = self._contention
        # Under way: alive and not waiting for a confirm (the one starting
        # this piece of work is among them, or about to be).
        busy = max(1, sum(1 for m in self._migrations
                          if self._alive(m) and m['status'] != 'finished'))
        return seconds * max(1.0, busy / parallel) * (
            1.0 + thrash * max(0, busy - parallel))

    def fail_migrations(self, to: ty.Iterable[str] = (),
                        from_: ty.Iterable[str] = (),
                        servers: ty.Iterable[str] = (),
                        message: ty.Optional[str] = None,
                        error_state: bool = False) -> None:
        """Migrations matching any of these end ``error`` halfway.

        The server goes back to its previous state on its source (Nova's
        InstanceFaultRollback), or to ERROR with ``error_state``.
        """
        self._fail_rules.append({'to': set(to), 'from': set(from_),
                                 'servers': set(servers),
                                 'message': message,
                                 'error_state': error_state})

    def clear_failures(self) -> None:
        self._fail_rules = []
        self._before_record = set()
        self._stalls = {}

    def stall_live(self, sid: str, at: float = 0.91, figures: bool = True,
                   force_works: bool = True) -> None:
        """The server's next live migrations stall once running.

        Their memory still to copy decreases until ``at`` of it is copied,
        then stays flat; they go on only when forced to complete (unless
        ``force_works`` is False: the guest dirties memory faster than any
        copy) or aborted. ``figures`` False: the driver reports no progress
        figures at all (Nova shows them null).
        """
        self._stalls[sid] = {'stuck': True, 'at': at, 'figures': figures,
                             'force_works': force_works}

    def no_progress_figures(self, sid: str) -> None:
        """The server's live migrations report no figures, and finish."""
        self._stalls[sid] = {'stuck': False, 'at': 1.0, 'figures': False,
                             'force_works': True}

    def fail_before_record(self, sid: str) -> None:
        """Nova accepts (202), the conductor fails before any record."""
        self._before_record.add(sid)

    def start_elsewhere(self, sid: str, live: bool = False,
                        at: ty.Optional[float] = None,
                        host: ty.Optional[str] = None) -> None:
        """Someone else (core OSC) starts a migration, through the API."""
        body = ({'os-migrateLive': {'host': host, 'block_migration': 'auto'}}
                if live else {'migrate': {'host': host} if host else None})
        self.at(at, lambda: self._apply(self._internal('POST', sid, body)))

    def moved_before(self, sid: str, source: str, dest: str) -> None:
        """History: a confirmed migration between two other hosts.

        As a server has that was migrated elsewhere, then shelved and
        unshelved onto the host it is on now (no record of that move).
        """
        server = self._servers[sid]
        record = self._new_record(dict(server, host=source), 'migration',
                                  dest, 'confirmed', server['project_id'])
        record['updated_at'] = self.nova_time()
        record['alive'] = False

    def resize(self, sid: str) -> None:
        """A tenant's own resize (record type ``resize``)."""
        server = self._live_server(sid)
        self._check_state(server, 'resize', ('active', 'stopped'))
        self._cold_start(server, None, 'resize', server['project_id'])

    def auto_confirm(self, sid: str) -> None:
        """Nova's periodic task confirms (resize_confirm_window)."""
        self._apply(self._internal('POST', sid, {'confirmResize': None}))

    def expire_token(self, at: ty.Optional[float] = None) -> None:
        """The client's token expires (now, or at sim time ``at``)."""
        self.token_expires = self.now if at is None else at

    # -- failures of the wire ----------------------------------------------
    def lose_reply(self, action: str, server: ty.Optional[str] = None,
                   status: ty.Union[int, str] = 504,
                   apply_after: ty.Optional[float] = 0.5,
                   times: ty.Optional[int] = 1) -> None:
        """The client gets an error, Nova applies the request later or not.

        ``status``: an HTTP status (a gateway answering for Nova) or
        ``'reset'`` (a connection error raised from ``request``).
        ``apply_after``: sim seconds until Nova applies it (its checks run
        then, its answer is discarded); None: never, unless ``apply_lost``.
        """
        self._lost_rules.append({'action': action, 'server': server,
                                 'status': status, 'apply_after': apply_after,
                                 'left': times})

    def apply_lost(self, at: ty.Optional[float] = None,
                   after: ty.Optional[ty.Tuple[str, str]] = None) -> None:
        """Apply the lost requests Nova still holds.

        At a sim time, or right after the next request ``(method,
        path_contains)`` has been answered.
        """
        def apply() -> None:
            held, self.lost = self.lost, []
            for request in held:
                self._apply(request)
        if after is not None:
            self._after.append((after, apply))
        else:
            self.at(at, apply)

    def fail_request(self, action: ty.Optional[str] = None,
                     method: ty.Optional[str] = None,
                     path: ty.Optional[str] = None,
                     status: ty.Union[int, str] = 503,
                     times: ty.Optional[int] = 1,
                     applied: bool = False) -> None:
        """Answer matching requests with ``status`` (or ``'reset'``).

        ``applied``: Nova did the work before the failure (e.g. a 502 from
        a proxy whose backend answered too late).
        """
        self._error_rules.append({'action': action, 'method': method,
                                  'path': path, 'status': status,
                                  'applied': applied, 'left': times})

    def fail_reads(self, path_contains: str,
                   status: ty.Union[int, str] = 503,
                   times: ty.Optional[int] = 1) -> None:
        self._read_rules.append({'method': 'GET', 'path': path_contains,
                                 'action': None, 'status': status,
                                 'left': times})

    # -- inspection ----------------------------------------------------------
    def records(self, sid: str) -> ty.List[dict]:
        """Nova's migration records of a server, newest first.

        ``forced``: how many force_complete actions Nova took on it.
        """
        found = [m for m in self._migrations if m['instance_uuid'] == sid]
        return [dict(self._migration_doc(m, hosts=True),
                     deleted=m['deleted'], forced=m.get('forced', 0))
                for m in _newest_first(found)]

    def server(self, sid: str) -> dict:
        s = self._servers[sid]
        return dict(self._server_doc(s, hosts=True),
                    vm_state=s['vm_state'], deleted=s['deleted'])

    def count(self, method: str, what: str) -> int:
        """Requests by method and action name (POST) or path substring."""
        return sum(1 for _, m, path, extra in self.requests
                   if m == method and (extra == what or what in path))

    def posts(self, action: str) -> ty.List[float]:
        """The sim times the client sent this action."""
        return [t for t, m, _, extra in self.requests
                if m == 'POST' and extra == action]

    # -- the wire ----------------------------------------------------------
    def _request(self, url: str, method: str, json: ty.Any = None,
                 params: ty.Optional[dict] = None,
                 microversion: ty.Optional[str] = None,
                 raise_exc: bool = False, **kw: ty.Any) -> requests.Response:
        if self.gate is not None:
            self.gate(method, url, json)
        with self._lock:
            return self._serve(url, method, json, params, microversion)

    def _serve(self, url: str, method: str, json: ty.Any,
               params: ty.Optional[dict],
               microversion: ty.Optional[str]) -> requests.Response:
        parsed = urllib.parse.urlsplit(url)
        path = parsed.path
        if path.startswith('/v2.1'):
            path = path[len('/v2.1'):]
        merged = dict(urllib.parse.parse_qsl(parsed.query))
        merged.update({k: v for k, v in (params or {}).items()
                       if v is not None})
        version = microversion or self.proxy.default_microversion
        req = Request(method, path, merged, copy.deepcopy(json),
                      _mv(version), self.caller)
        self.requests.append((self.now, method, path,
                              req.action if req.action else merged))
        self.advance(self.latency)
        if self.token_expires is not None and self.now >= self.token_expires:
            # keystonemiddleware's answer: before Nova sees the request.
            return self._response(req, 401, {'error': {
                'code': 401, 'title': 'Unauthorized',
                'message': 'The request you have made requires '
                           'authentication.'}})
        for rules in (self._read_rules, self._error_rules):
            rule = self._take(rules, req)
            if rule is not None:
                if rule.get('applied'):
                    self._apply(req)
                return self._failure(req, rule['status'])
        rule = self._take(self._lost_rules, req)
        if rule is not None:
            if rule['apply_after'] is None:
                self.lost.append(req)
            else:
                self.after(rule['apply_after'], lambda: self._apply(req))
            return self._failure(req, rule['status'])
        response = self._dispatch(req)
        for hook in list(self._after):
            (m, contains), work = hook
            if m == method and contains in path:
                self._after.remove(hook)
                work()
        return response

    @staticmethod
    def _take(rules: ty.List[dict], req: Request) -> ty.Optional[dict]:
        for rule in rules:
            if rule['left'] is not None and rule['left'] <= 0:
                continue
            if rule.get('action') and rule['action'] != req.action:
                continue
            if rule.get('server') and rule['server'] != req.server_id:
                continue
            if rule.get('method') and rule['method'] != req.method:
                continue
            if rule.get('path') and rule['path'] not in req.path:
                continue
            if rule['left'] is not None:
                rule['left'] -= 1
            return rule
        return None

    def _failure(self, req: Request, status: ty.Union[int, str]
                 ) -> requests.Response:
        if status == 'reset':
            raise ksa_exc.ConnectFailure(
                'Unable to establish connection to %s%s: Connection reset '
                'by peer' % (ENDPOINT, req.path))
        assert isinstance(status, int)  # noqa: S101
        return self._response(req, status, {'computeFault': {
            'code': status,
            'message': http.client.responses.get(status, 'Error')}})

    def _internal(self, method: str, sid: str, body: ty.Any) -> Request:
        return Request(method, '/servers/%s/action' % sid, {}, body,
                       _mv(self.proxy.get_endpoint_data.return_value
                           .max_microversion))

    def _apply(self, req: Request) -> None:
        """Apply a request whose answer nobody reads."""
        try:
            status, body = self._route(req)
            message = ''
        except NovaFault as fault:
            status, message = fault.status, fault.message
        self.late.append((self.now, req.method, req.path, status, message))

    def _dispatch(self, req: Request) -> requests.Response:
        try:
            status, body = self._route(req)
        except NovaFault as fault:
            return self._response(req, fault.status, {
                _ERROR_KEYS.get(fault.status, 'computeFault'): {
                    'code': fault.status, 'message': fault.message}})
        return self._response(req, status, body)

    def _response(self, req: Request, status: int,
                  body: ty.Any) -> requests.Response:
        r = requests.Response()
        r.status_code = status
        r.reason = http.client.responses.get(status, '')
        r._content = json.dumps(body).encode() if body is not None else b''
        r.headers['Content-Type'] = 'application/json'
        r.headers['Date'] = email.utils.format_datetime(
            self.nova_time().replace(microsecond=0), usegmt=True)
        r.headers['x-openstack-request-id'] = self._request_id()
        r.headers['OpenStack-API-Version'] = 'compute %d.%d' % (
            req.microversion[0], req.microversion[1])
        url = ENDPOINT + req.path
        if req.params:
            url += '?' + urllib.parse.urlencode(req.params)
        r.request = requests.Request(req.method, url).prepare()
        r.url = url
        return r

    _ROUTES = (
        ('GET', r'/servers/detail', '_list_servers'),
        ('GET', r'/servers/([^/]+)', '_show_server'),
        ('POST', r'/servers/([^/]+)/action', '_action'),
        ('GET', r'/servers/([^/]+)/migrations', '_list_live'),
        ('GET', r'/servers/([^/]+)/migrations/([^/]+)', '_show_live'),
        ('DELETE', r'/servers/([^/]+)/migrations/([^/]+)', '_abort'),
        ('POST', r'/servers/([^/]+)/migrations/([^/]+)/action',
         '_migration_action'),
        ('GET', r'/servers/([^/]+)/os-instance-actions', '_list_actions'),
        ('GET', r'/servers/([^/]+)/os-instance-actions/([^/]+)',
         '_show_action'),
        ('GET', r'/os-migrations', '_list_migrations'),
        ('GET', r'/os-services', '_list_services'),
        ('GET', r'/os-aggregates', '_list_aggregates'),
        ('GET', r'/os-hypervisors/detail', '_list_hypervisors'),
        ('PUT', r'/os-services/([^/]+)', '_update_service'),
    )

    # Routes that exist only from a microversion (older: 404, as Nova's
    # version-dispatched controllers answer).
    _SINCE = {'_migration_action': (2, 22), '_list_live': (2, 23),
              '_show_live': (2, 23), '_abort': (2, 24)}

    def _route(self, req: Request) -> ty.Tuple[int, ty.Any]:
        for method, pattern, name in self._ROUTES:
            match = re.fullmatch(pattern, req.path.rstrip('/'))
            if method == req.method and match:
                if req.microversion < self._SINCE.get(name, (2, 1)):
                    raise NovaFault(404, 'The resource could not be found.')
                self._authorize(req, name, *match.groups())
                return getattr(self, name)(req, *match.groups())
        raise NovaFault(404, 'The resource could not be found.')

    # -- policy: Nova 34's defaults -------------------------------------------
    # Rules that a project manager passes (nova >= 32); a member passes
    # none of them, an admin all.
    _MANAGER_RULES = {
        'migrate': 'os_compute_api:os-migrate-server:migrate',
        'os-migrateLive': 'os_compute_api:os-migrate-server:migrate_live',
        '_list_migrations': 'os_compute_api:os-migrations:index',
        '_abort': 'os_compute_api:servers:migrations:delete',
        'force_complete': 'os_compute_api:servers:migrations:force_complete',
        '_list_live': 'os_compute_api:servers:migrations:index',
    }
    # Admin-only rules.
    _ADMIN_RULES = {
        '_show_live': 'os_compute_api:servers:migrations:show',
        '_list_services': 'os_compute_api:os-services:list',
        '_list_aggregates': 'os_compute_api:os-aggregates:index',
        '_list_hypervisors': 'os_compute_api:os-hypervisors:list-detail',
        '_update_service': 'os_compute_api:os-services:update',
    }

    @staticmethod
    def _forbid(rule: str) -> NovaFault:
        return NovaFault(403, "Policy doesn't allow %s to be performed."
                         % rule)

    def _authorize(self, req: Request, name: str, *args: str) -> None:
        """Refuse what Nova's default policy refuses this caller (403).

        A server of another project is not found (404), as in Nova.
        """
        caller = req.caller
        if caller.admin:
            return
        sid = req.server_id
        if sid and sid in self._servers and \
                self._servers[sid]['project_id'] != caller.project:
            raise NovaFault(404, 'Instance %s could not be found.' % sid)
        rule = self._ADMIN_RULES.get(name)
        if rule:
            raise self._forbid(rule)
        rule = self._MANAGER_RULES.get(req.action or name)
        if rule and caller.role != 'manager':
            raise self._forbid(rule)
        if req.action in ('migrate', 'os-migrateLive'):
            arg = (req.body or {}).get(req.action) or {}
            if arg.get('host'):
                raise self._forbid(rule + ':host')
        if name == '_list_migrations':
            project = req.params.get('project_id')
            if not project or project != caller.project:
                raise self._forbid('os_compute_api:os-migrations:index:'
                                   'all_projects')
        if name == '_list_servers' and str(req.params.get(
                'all_tenants', '')).lower() in ('1', 'true', 'yes', 'on'):
            raise self._forbid('os_compute_api:servers:detail:'
                               'get_all_tenants')

    # -- documents -----------------------------------------------------------
    def _shows_hosts(self, req: Request) -> bool:
        """May this caller see host names? (Policy, or a hiding rule.)"""
        return req.caller.admin and not self.hide_hosts

    def _server_doc(self, s: dict, hosts: bool) -> dict:
        doc = {
            'id': s['id'], 'name': s['name'],
            'status': status_of(s['vm_state'], s['task_state']),
            'tenant_id': s['project_id'], 'user_id': s['user_id'],
            'OS-EXT-STS:task_state': s['task_state'],
            'OS-EXT-STS:vm_state': s['vm_state'],
            'OS-EXT-STS:power_state': 1 if s['vm_state'] in (
                'active', 'resized') else 4,
            'created': s['created'].strftime(SERVER_TIME),
            'updated': s['updated'].strftime(SERVER_TIME),
            'metadata': {}, 'addresses': {},
            'links': [{'rel': 'self',
                       'href': '%s/servers/%s' % (ENDPOINT, s['id'])}],
        }
        if hosts:
            doc['OS-EXT-SRV-ATTR:host'] = s['host']
            doc['OS-EXT-SRV-ATTR:hypervisor_hostname'] = s['host']
        # Nova shows the fault only of servers in ERROR or DELETED.
        if s['fault'] and doc['status'] in ('ERROR', 'DELETED'):
            doc['fault'] = dict(s['fault'],
                                created=s['fault']['created'].strftime(
                                    SERVER_TIME))
        return doc

    def _migration_doc(self, m: dict, hosts: bool) -> dict:
        doc = {
            'id': m['id'], 'uuid': m['uuid'],
            'instance_uuid': m['instance_uuid'],
            'migration_type': m['migration_type'], 'status': m['status'],
            'source_compute': m['source_compute'],
            'source_node': m['source_compute'],
            'dest_compute': m['dest_compute'],
            'dest_node': m['dest_compute'],
            'dest_host': ('192.0.2.%s' % m['dest_compute'][len('compute'):]
                          if m['dest_compute'] else None),
            'old_instance_type_id': 1, 'new_instance_type_id': 1,
            'project_id': m['project_id'], 'user_id': 'u1',
            'created_at': m['created_at'].strftime(MIGRATION_TIME),
            'updated_at': (m['updated_at'].strftime(MIGRATION_TIME)
                           if m['updated_at'] else None),
        }
        if not hosts:
            # os_compute_api:os-migrations:index:host says no: the keys
            # stay, their values go (migrations.py _output).
            for key in ('source_compute', 'source_node', 'dest_compute',
                        'dest_node', 'dest_host'):
                doc[key] = None
        if m['migration_type'] == 'live-migration' and \
                m['status'] in LIVE_IN_PROGRESS:
            doc['links'] = [{'rel': 'self', 'href': '%s/servers/%s/'
                             'migrations/%s' % (ENDPOINT, m['instance_uuid'],
                                                m['id'])}]
        return doc

    # -- reads -------------------------------------------------------------
    def _live_server(self, sid: str) -> dict:
        server = self._servers.get(sid)
        if server is None or server['deleted']:
            raise NovaFault(404, 'Instance %s could not be found.' % sid)
        return server

    def _show_server(self, req: Request, sid: str) -> ty.Tuple[int, dict]:
        doc = self._server_doc(self._live_server(sid), self._shows_hosts(req))
        return 200, {'server': doc}

    @staticmethod
    def _since(req: Request, key: str) -> ty.Optional[datetime.datetime]:
        text = req.params.get(key)
        if not text:
            return None
        try:
            value = datetime.datetime.fromisoformat(
                str(text).replace('Z', '+00:00'))
        except ValueError:
            raise NovaFault(400, 'Invalid filter field: %s.' % key)
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value

    def _page(self, req: Request, items: ty.List[dict], key: str,
              marker_key: str, collection: str) -> dict:
        """Nova's limit/marker paging, with a next link on a full page."""
        marker = req.params.get('marker')
        if marker:
            ids = [i[marker_key] for i in items]
            if marker not in ids:
                raise NovaFault(400, 'marker [%s] not found' % marker)
            items = items[ids.index(marker) + 1:]
        limit = self.max_limit
        if req.params.get('limit') is not None:
            limit = min(int(req.params['limit']), self.max_limit)
        page = items[:limit]
        body: dict = {key: page}
        if page and len(page) == limit:
            query = dict(req.params, limit=limit,
                         marker=page[-1][marker_key])
            body['%s_links' % key] = [{
                'rel': 'next', 'href': '%s/%s?%s' % (
                    ENDPOINT, collection, urllib.parse.urlencode(query))}]
        return body

    def _list_servers(self, req: Request) -> ty.Tuple[int, dict]:
        p = req.params
        since = self._since(req, 'changes-since')
        servers = list(self._servers.values())
        if not req.caller.admin:
            # Nova drops the filters its policy keeps for admins, silently.
            p = {k: v for k, v in p.items() if k not in ('host',
                                                         'project_id')}
        if str(p.get('all_tenants', '')).lower() not in (
                '1', 'true', 'yes', 'on'):
            servers = [s for s in servers
                       if s['project_id'] == req.caller.project]
        elif p.get('project_id'):
            servers = [s for s in servers
                       if s['project_id'] == p['project_id']]
        if since is None:
            servers = [s for s in servers if not s['deleted']]
        else:
            servers = [s for s in servers if s['updated'] >= since]
        if p.get('name'):
            try:
                # MySQL's REGEXP: a search, case-insensitive.
                pattern = re.compile(p['name'], re.IGNORECASE)
            except re.error:
                raise NovaFault(400, 'Invalid regex %s' % p['name'])
            servers = [s for s in servers if pattern.search(s['name'])]
        if p.get('host'):
            servers = [s for s in servers if s['host'] == p['host']]
        if p.get('status'):
            # Like Nova: a status names vm_states, and task_states only
            # when none of it is the vm_state's default.
            wanted = str(p['status']).upper()
            vm_states = {vm for vm, tasks in _STATUS.items()
                         for task, name in tasks.items() if name == wanted}
            tasks = {task for vm, t in _STATUS.items()
                     for task, name in t.items() if name == wanted}
            if not vm_states:
                raise NovaFault(400, 'Invalid status value')
            servers = [s for s in servers if s['vm_state'] in vm_states and
                       (None in tasks or s['task_state'] in tasks)]
        servers.sort(key=lambda s: (s['created'], s['id']), reverse=True)
        docs = [self._server_doc(s, self._shows_hosts(req))
                for s in servers]
        return 200, self._page(req, docs, 'servers', 'id', 'servers/detail')

    def _list_migrations(self, req: Request) -> ty.Tuple[int, dict]:
        since = self._since(req, 'changes-since')
        before = self._since(req, 'changes-before')
        found = [m for m in self._migrations if not m['deleted']]
        if req.params.get('instance_uuid'):
            found = [m for m in found
                     if m['instance_uuid'] == req.params['instance_uuid']]
        # migration_get_all_by_filters: ``host`` is the source or the
        # destination (and wins over ``source_compute``); ``status`` one
        # value, as the API passes it.
        p = req.params
        if p.get('host'):
            found = [m for m in found if p['host'] in (
                m['source_compute'], m['dest_compute'])]
        elif p.get('source_compute'):
            found = [m for m in found
                     if m['source_compute'] == p['source_compute']]
        for key in ('status', 'migration_type'):
            if p.get(key):
                found = [m for m in found if m[key] == p[key]]
        if req.params.get('project_id') and req.microversion >= (2, 80):
            # The project that *started* the migration, not the server's.
            found = [m for m in found
                     if m['project_id'] == req.params['project_id']]
        # _get_query_nova_resource_by_changes_time: updated_at >= since;
        # a record never updated (updated_at NULL) is not returned.
        if since is not None:
            found = [m for m in found
                     if m['updated_at'] is not None and
                     m['updated_at'] >= since]
        if before is not None:
            found = [m for m in found
                     if m['updated_at'] is not None and
                     m['updated_at'] <= before]
        docs = [self._migration_doc(m, self._shows_hosts(req))
                for m in _newest_first(found)]
        return 200, self._page(req, docs, 'migrations', 'uuid',
                               'os-migrations')

    def _record(self, sid: str, mid: str) -> dict:
        for m in self._migrations:
            if str(m['id']) == mid and m['instance_uuid'] == sid and \
                    not m['deleted']:
                return m
        raise NovaFault(404, 'Migration %s not found for instance %s'
                        % (mid, sid))

    def _show_live(self, req: Request, sid: str,
                   mid: str) -> ty.Tuple[int, dict]:
        self._live_server(sid)
        try:
            m = self._record(sid, mid)
        except NovaFault:
            raise NovaFault(404, 'In-progress live migration %s is not '
                            'found for server %s.' % (mid, sid))
        if m['migration_type'] != 'live-migration':
            raise NovaFault(404, 'Migration %s for server %s is not '
                            'live-migration.' % (mid, sid))
        if m['status'] not in LIVE_IN_PROGRESS:
            raise NovaFault(404, 'Live migration %s for server %s is not '
                            'in progress.' % (mid, sid))
        doc = self._migration_doc(m, self._shows_hosts(req))
        share = 0.0
        if m.get('running_since') is not None:
            share = min(1.0, (self.now - m['running_since']) /
                        max(self.timing['live_duration'], 0.001))
        stalls = m.get('stall') or {}
        share = min(share, stalls.get('at', 1.0))
        done = int(MEMORY_TOTAL * share)
        doc.update({'server_uuid': sid, 'memory_total_bytes': MEMORY_TOTAL,
                    'memory_processed_bytes': done,
                    'memory_remaining_bytes': MEMORY_TOTAL - done,
                    'disk_total_bytes': 0, 'disk_processed_bytes': 0,
                    'disk_remaining_bytes': 0})
        if not stalls.get('figures', True):
            # objects.Migration's figures, never set by the driver.
            for key in ('memory', 'disk'):
                for what in ('total', 'processed', 'remaining'):
                    doc['%s_%s_bytes' % (key, what)] = None
        for key in ('instance_uuid', 'migration_type', 'old_instance_type_id',
                    'new_instance_type_id', 'links'):
            doc.pop(key, None)
        return 200, {'migration': doc}

    def _list_live(self, req: Request, sid: str) -> ty.Tuple[int, dict]:
        """The server's live migrations in progress, with their figures."""
        self._live_server(sid)
        found = []
        for m in _newest_first(self._migrations):
            if m['instance_uuid'] == sid and not m['deleted'] and \
                    m['migration_type'] == 'live-migration' and \
                    m['status'] in LIVE_IN_PROGRESS:
                found.append(self._show_live(req, sid, str(m['id']))[1][
                    'migration'])
        return 200, {'migrations': found}

    def _list_actions(self, req: Request, sid: str) -> ty.Tuple[int, dict]:
        # 2.21: the actions of deleted servers are shown too.
        if sid not in self._servers:
            raise NovaFault(404, 'Instance %s could not be found.' % sid)
        actions = [self._action_doc(sid, a) for a in
                   reversed(self._actions[sid])]
        return 200, {'instanceActions': actions}

    def _show_action(self, req: Request, sid: str,
                     rid: str) -> ty.Tuple[int, dict]:
        if sid not in self._servers:
            raise NovaFault(404, 'Instance %s could not be found.' % sid)
        for action in self._actions[sid]:
            if action['request_id'] == rid:
                doc = self._action_doc(sid, action)
                doc['events'] = [self._event_doc(e, req)
                                 for e in reversed(action['events'])]
                return 200, {'instanceAction': doc}
        raise NovaFault(404, 'Action for request_id %s on instance %s not '
                        'found' % (rid, sid))

    def _action_doc(self, sid: str, a: dict) -> dict:
        return {'action': a['action'], 'instance_uuid': sid,
                'request_id': a['request_id'], 'message': a['message'],
                'project_id': self._servers[sid]['project_id'],
                'user_id': 'u1',
                'start_time': a['start_time'].strftime(MIGRATION_TIME),
                'updated_at': a['updated_at'].strftime(MIGRATION_TIME)}

    def _event_doc(self, e: dict, req: Request) -> dict:
        # instance_actions.py show: events, host, details and traceback for
        # admins; others get events (2.51) without them.
        mv, admin = req.microversion, req.caller.admin
        doc = {'event': e['event'], 'result': e['result'],
               'start_time': e['start_time'].strftime(MIGRATION_TIME),
               'finish_time': (e['finish_time'].strftime(MIGRATION_TIME)
                               if e['finish_time'] else None)}
        if admin:
            doc['traceback'] = ('Traceback (most recent call last): ...'
                                if e['result'] == 'Error' else None)
        if mv >= (2, 62):
            if admin:
                doc['host'] = None if self.hide_hosts else e['host']
            doc['hostId'] = 'h-%s' % e['host'] if e['host'] else ''
        if mv >= (2, 84) and admin:
            doc['details'] = e['details']
        return doc

    def _list_services(self, req: Request) -> ty.Tuple[int, dict]:
        found = [self._service_doc(s) for s in self.services.values()
                 if req.params.get('binary') in (None, s['binary'])
                 and req.params.get('host') in (None, s['host'])]
        return 200, {'services': found}

    def _list_hypervisors(self, req: Request) -> ty.Tuple[int, dict]:
        # Nova's key of a service's record: the node's name is its host's.
        found = [{'id': s['node_uuid'], 'hypervisor_hostname': s['host'],
                  'hypervisor_type': 'fake', 'state': s['state'],
                  'status': s['status'],
                  'service': {'host': s['host'], 'id': s['id'],
                              'disabled_reason': s['disabled_reason']}}
                 for s in self.services.values()
                 if s['binary'] == 'nova-compute']
        return 200, self._page(req, found, 'hypervisors', 'id',
                               'os-hypervisors/detail')

    def _list_aggregates(self, req: Request) -> ty.Tuple[int, dict]:
        return 200, {'aggregates': [
            {'id': n, 'name': name, 'availability_zone': None,
             'hosts': list(hosts), 'metadata': {}}
            for n, (name, hosts) in enumerate(
                sorted(self.aggregates.items()), 1)]}

    def _update_service(self, req: Request,
                        service_id: str) -> ty.Tuple[int, dict]:
        for service in self.services.values():
            if service['id'] == service_id:
                body = req.body or {}
                if body.get('status') in ('enabled', 'disabled'):
                    service['status'] = body['status']
                    service['disabled_reason'] = body.get(
                        'disabled_reason') if body['status'] == 'disabled' \
                        else None
                self._service_put[service['host']] = self.now
                return 200, {'service': self._service_doc(service)}
        raise NovaFault(404, 'Service %s not found.' % service_id)

    # -- actions -----------------------------------------------------------
    def _action(self, req: Request, sid: str) -> ty.Tuple[int, ty.Any]:
        server = self._live_server(sid)
        name = req.action
        arg = (req.body or {}).get(name)
        if name == 'migrate':
            host = arg.get('host') if arg and req.microversion >= (2, 56) \
                else None
            self._check_state(server, 'migrate', ('active', 'stopped'))
            if host is not None:
                if host == server['host']:
                    raise NovaFault(400, 'Cannot migrate to the host where '
                                    'the server exists.')
                if host not in self.services:
                    raise NovaFault(400, 'Compute host %s could not be '
                                    'found.' % host)
            self._cold_start(server, host, 'migration', req.caller.project)
            return 202, None
        if name == 'os-migrateLive':
            host = (arg or {}).get('host')
            self._check_state(server, 'os-migrateLive', ('active', 'paused'))
            if host is not None and host not in self.services:
                raise NovaFault(400, 'Compute host %s could not be found.'
                                % host)
            self._live_start(server, host, req.caller.project)
            return 202, None
        if name in ('confirmResize', 'revertResize'):
            self._check_state(server, name, ('resized',))
            record = next((m for m in _newest_first(self._migrations)
                           if m['instance_uuid'] == sid and
                           m['status'] == 'finished' and not m['deleted']),
                          None)
            if record is None:
                raise NovaFault(400, 'Instance has not been resized.')
            if name == 'confirmResize':
                self._confirm(server, record)
                return 204, None
            self._revert(server, record)
            return 202, None
        raise NovaFault(400, 'There is no such action: %s' % name)

    @staticmethod
    def _check_state(server: dict, action: str,
                     vm_states: ty.Tuple[str, ...]) -> None:
        # compute.api.check_instance_state: vm_state first, then task_state.
        if server['vm_state'] not in vm_states:
            attr, state = 'vm_state', server['vm_state']
        elif server['task_state'] is not None:
            attr, state = 'task_state', server['task_state']
        else:
            return
        raise NovaFault(409, "Cannot '%s' instance %s while it is in %s %s"
                        % (action, server['id'], attr, state))

    # -- Nova's processes ----------------------------------------------------
    def _save(self, obj: dict, **changes: ty.Any) -> None:
        obj.update(changes)
        key = 'updated' if 'task_state' in obj else 'updated_at'
        obj[key] = self.nova_time()

    @staticmethod
    def _request_id() -> str:
        return 'req-%s' % uuid.uuid4()

    def _action_start(self, server: dict, name: str) -> dict:
        now = self.nova_time()
        action = {'action': name, 'request_id': self._request_id(),
                  'message': None, 'start_time': now, 'updated_at': now,
                  'events': []}
        self._actions[server['id']].append(action)
        return action

    def _event(self, action: dict, name: str, host: ty.Optional[str],
               result: ty.Optional[str] = 'Success',
               details: ty.Optional[str] = None) -> dict:
        """An event started now; finished now unless ``result`` is None."""
        now = self.nova_time()
        event = {'event': name, 'host': host, 'start_time': now,
                 'finish_time': None, 'result': None, 'details': None}
        action['events'].append(event)
        if result is not None:
            self._finish_event(action, event, result, details)
        return event

    def _finish_event(self, action: dict, event: dict, result: str,
                      details: ty.Optional[str] = None) -> None:
        event.update(finish_time=self.nova_time(), result=result,
                     details=details)
        action['updated_at'] = self.nova_time()
        if result == 'Error':
            action['message'] = 'Error'  # db api action_event_finish

    def _pick_destination(self, server: dict,
                          host: ty.Optional[str] = None) -> ty.Optional[str]:
        """The scheduler: enabled hosts other than the source, in turn.

        With a FakePlacement attached, only hosts with room for the server
        (a target host too): None is NoValidHost.
        """
        def room(h: str) -> bool:
            return self.placement is None or \
                self.placement.has_room(h, server['id'])

        if host is not None:
            return host if room(host) else None
        # ComputeFilter: enabled, and up (by its heartbeat, or forced down).
        hosts = sorted(h for h, s in self.services.items()
                       if s['status'] == 'enabled' and s['state'] == 'up'
                       and h != server['host'] and room(h))
        if not hosts:
            return None
        self._rotation += 1
        return hosts[(self._rotation - 1) % len(hosts)]

    def _new_record(self, server: dict, kind: str,
                    dest: ty.Optional[str], status: str,
                    project: str) -> dict:
        record = {
            'id': next(self._mids), 'uuid': str(uuid.uuid4()),
            'instance_uuid': server['id'], 'migration_type': kind,
            'status': status, 'source_compute': server['host'],
            'dest_compute': dest, 'project_id': project,
            'created_at': self.nova_time(), 'updated_at': None,
            'deleted': False, 'alive': True,
            # Where the server goes back to (or on to, once confirmed).
            'prior_vm_state': server['vm_state'], 'running_since': None}
        self._migrations.append(record)
        return record

    def _failing(self, server: dict, record: dict) -> ty.Optional[dict]:
        for rule in self._fail_rules:
            if record['dest_compute'] in rule['to'] or \
                    record['source_compute'] in rule['from'] or \
                    server['id'] in rule['servers']:
                return rule
        return None

    def _alive(self, record: dict) -> bool:
        return record['alive'] and not record['deleted']

    def _step(self, record: dict, delay: float,
              work: ty.Callable[[], None]) -> None:
        """Run work later, unless the migration was aborted or deleted."""
        def step() -> None:
            if self._alive(record):
                work()
        self.after(delay, step)

    def _fail(self, server: dict, record: dict, action: dict,
              event: ty.Optional[dict], rule: dict) -> None:
        message = rule['message'] or 'migrations to %s are set to fail' % (
            record['dest_compute'])
        # Nova keeps the first 255 bytes of a failure's message, for the
        # fault and the event's details alike (nova/compute/utils.py
        # exception_to_dict, utils.safe_truncate).
        message = message.encode()[:255].decode('utf-8', 'ignore')
        record['alive'] = False
        self._save(record, status='error')
        if rule['error_state']:
            self._save(server, vm_state='error', task_state=None)
        else:
            self._save(server, vm_state=record['prior_vm_state'],
                       task_state=None, host=record['source_compute'])
        server['fault'] = {'code': 500, 'message': message,
                           'created': self.nova_time()}
        if event is not None:
            self._finish_event(action, event, 'Error', message)

    def _conductor_fails(self, server: dict, action: dict, name: str,
                         record: ty.Optional[dict] = None) -> None:
        if record is not None:
            record['alive'] = False
            self._save(record, status='error')
        self._save(server, task_state=None)
        server['fault'] = {'code': 500, 'message': NO_VALID_HOST,
                           'created': self.nova_time()}
        self._event(action, name, None, 'Error', NO_VALID_HOST)

    def _cold_start(self, server: dict, host: ty.Optional[str],
                    kind: str, project: str) -> None:
        self._save(server, task_state='resize_prep')
        action = self._action_start(
            server, 'migrate' if kind == 'migration' else 'resize')
        sid = server['id']

        def conductor() -> None:
            if server['deleted']:
                return
            if sid in self._before_record:
                self._before_record.discard(sid)
                self._conductor_fails(server, action,
                                      'conductor_migrate_server')
                return
            dest = self._pick_destination(server, host)
            # MigrationTask._preallocate_migration: before scheduling.
            record = self._new_record(server, kind, None, 'pre-migrating',
                                      project)
            # The scheduler claims the destination's resources at once.
            record['claimed'] = dest
            if dest is None:
                self._conductor_fails(server, action,
                                      'conductor_migrate_server', record)
                return
            self._event(action, 'conductor_migrate_server', None)
            self._step(record, self.timing['step'],
                       lambda: migrating(record, dest))

        def migrating(record: dict, dest: str) -> None:
            self._save(record, status='migrating', dest_compute=dest)
            self._save(server, task_state='resize_migrating')
            self._event(action, 'compute_prep_resize', dest)
            event = self._event(action, 'compute_resize_instance',
                                record['source_compute'], result=None)
            half = self._stretched(self.timing['cold_duration']) / 2
            self._step(record, half, lambda: halfway(record, event, half))

        def halfway(record: dict, event: dict, half: float) -> None:
            rule = self._failing(server, record)
            if rule is not None:
                self._fail(server, record, action, event, rule)
                return
            self._step(record, half, lambda: copied(record, event))

        def copied(record: dict, event: dict) -> None:
            self._save(record, status='post-migrating')
            self._save(server, task_state='resize_migrated')
            self._finish_event(action, event, 'Success')
            self._step(record, self.timing['lag'], lambda: finished(record))

        def finished(record: dict) -> None:
            # _finish_resize: host and task saved, then the record, then
            # (a moment later) the server.
            self._save(server, host=record['dest_compute'],
                       task_state='resize_finish')
            self._save(record, status='finished')
            self._step(record, self.timing['lag'], lambda: verify(record))

        def verify(record: dict) -> None:
            self._save(server, vm_state='resized', task_state=None)
            self._event(action, 'compute_finish_resize',
                        record['dest_compute'])

        self.after(self._stretched(self.timing['record_delay']), conductor)

    def _confirm(self, server: dict, record: dict) -> None:
        # The API leaves the server as it is (resized, no task).
        self._save(record, status='confirming', alive=True)
        action = self._action_start(server, 'confirmResize')

        def confirmed() -> None:
            self._save(record, status='confirmed')
            self._event(action, 'compute_confirm_resize',
                        record['source_compute'])
            self._step(record, self.timing['lag'], settled)

        def settled() -> None:
            record['alive'] = False
            self._save(server, vm_state=record['prior_vm_state'],
                       task_state=None)

        self._step(record, self._stretched(self.timing['confirm_delay']),
                   confirmed)

    def _revert(self, server: dict, record: dict) -> None:
        self._save(server, task_state='resize_reverting')
        self._save(record, status='reverting', alive=True)
        action = self._action_start(server, 'revertResize')

        def reverted() -> None:
            self._save(record, status='reverted')
            self._event(action, 'compute_revert_resize',
                        record['dest_compute'])
            self._step(record, self.timing['lag'], settled)

        def settled() -> None:
            record['alive'] = False
            self._save(server, vm_state=record['prior_vm_state'],
                       task_state=None, host=record['source_compute'])
            self._event(action, 'compute_finish_revert_resize',
                        record['source_compute'])

        self._step(record, self.timing['revert_delay'], reverted)

    def _live_start(self, server: dict, host: ty.Optional[str],
                    project: str) -> None:
        self._save(server, task_state='migrating')
        action = self._action_start(server, 'live-migration')
        sid = server['id']
        step = self.timing['step']

        def conductor() -> None:
            if server['deleted']:
                return
            if sid in self._before_record:
                self._before_record.discard(sid)
                self._conductor_fails(server, action,
                                      'conductor_live_migrate_instance')
                return
            record = self._new_record(server, 'live-migration', host,
                                      'accepted', project)
            dest = self._pick_destination(server, host)
            record['claimed'] = dest
            if dest is None or dest == server['host']:
                # The scheduler (or the conductor's self check) refuses;
                # with 2.34+ the API had already answered 202.
                self._step(record, step, lambda: self._conductor_fails(
                    server, action, 'conductor_live_migrate_instance',
                    record))
                return
            self._event(action, 'conductor_live_migrate_instance', None)
            self._step(record, step, lambda: queued(record, dest))

        def queued(record: dict, dest: str) -> None:
            self._save(record, status='queued', dest_compute=dest)
            self._event(action, 'compute_check_can_live_migrate_destination',
                        dest)
            self._step(record, step, lambda: preparing(record))

        def preparing(record: dict) -> None:
            self._save(record, status='preparing')
            self._step(record, step, lambda: running(record))

        def running(record: dict) -> None:
            self._save(record, status='running',
                       running_since=self.now)
            event = self._event(action, 'compute_live_migration',
                                record['source_compute'], result=None)
            rule = self._stalls.get(sid)
            if rule is not None:
                record['stall'] = dict(rule)
                if rule['stuck']:
                    # Copies until flat, then waits for force or abort.
                    if rule['force_works']:
                        record['on_force'] = lambda: moved(record, event)
                    return
            half = self._stretched(self.timing['live_duration']) / 2
            self._step(record, half, lambda: halfway(record, event, half))

        def halfway(record: dict, event: dict, half: float) -> None:
            rule = self._failing(server, record)
            if rule is not None:
                self._fail(server, record, action, event, rule)
                return
            self._step(record, half, lambda: moved(record, event))

        def moved(record: dict, event: dict) -> None:
            # The server is done on its destination; the record still says
            # running for a moment.
            self._save(server, host=record['dest_compute'], task_state=None)
            self._finish_event(action, event, 'Success')
            self._step(record, self.timing['live_record_lag'],
                       lambda: completed(record))

        def completed(record: dict) -> None:
            record['alive'] = False
            self._save(record, status='completed')

        self.after(self._stretched(self.timing['record_delay']), conductor)

    def _migration_action(self, req: Request, sid: str,
                          mid: str) -> ty.Tuple[int, None]:
        """force_complete (2.22): compute's live_migrate_force_complete."""
        if req.action != 'force_complete':
            raise NovaFault(400, "Invalid input for field/attribute "
                            "force_complete. Value: %s. Additional "
                            "properties are not allowed" % req.body)
        server = self._live_server(sid)
        # check_instance_state(vm_state=[ACTIVE], task_state=[MIGRATING])
        if server['vm_state'] != 'active':
            attr, state = 'vm_state', server['vm_state']
        elif server['task_state'] != 'migrating':
            attr, state = 'task_state', server['task_state']
        else:
            attr = state = None
        if attr is not None:
            raise NovaFault(409, "Cannot 'force_complete' instance %s while "
                            "it is in %s %s" % (sid, attr, state))
        try:
            record = self._record(sid, mid)
        except NovaFault:
            # MigrationNotFoundForInstance: a 400 on this route.
            raise NovaFault(400, 'Migration %s not found for instance %s'
                            % (mid, sid))
        if record['status'] != 'running':
            raise NovaFault(400, 'Migration %s state of instance %s is %s. '
                            'Cannot force complete while the migration is '
                            'in this state.' % (mid, sid, record['status']))
        self._action_start(server, 'live_migration_force_complete')
        record['forced'] = record.get('forced', 0) + 1
        on_force = record.pop('on_force', None)
        if on_force is not None:
            # A cast to the source compute: the driver pauses the guest
            # and the copy ends a moment later.
            self._step(record, self.timing['step'], on_force)
        return 202, None

    def _abort(self, req: Request, sid: str, mid: str) -> ty.Tuple[int, None]:
        server = self._live_server(sid)
        if server['task_state'] != 'migrating':
            raise NovaFault(409, "Cannot 'abort live migration' instance %s "
                            "while it is in task_state %s"
                            % (sid, server['task_state']))
        record = self._record(sid, mid)
        allowed = ('running',) + (('queued', 'preparing')
                                  if req.microversion >= (2, 65) else ())
        if record['migration_type'] != 'live-migration' or \
                record['status'] not in allowed:
            raise NovaFault(400, 'Migration %s state of instance %s is %s. '
                            'Cannot abort live migration while the '
                            'migration is in this state.'
                            % (mid, sid, record['status']))
        action = self._action_start(server, 'live_migration_abort')

        def cancelled() -> None:
            if not self._alive(record):
                return  # it ended first
            record['alive'] = False
            self._save(record, status='cancelled')
            self._save(server, task_state=None,
                       host=record['source_compute'])
            self._event(action, 'compute_live_migration_abort',
                        record['source_compute'])

        self.after(self.timing['abort_delay'], cancelled)
        return 202, None


def _newest_first(records: ty.Iterable[dict]) -> ty.List[dict]:
    return sorted(records, key=lambda m: (m['created_at'], m['id']),
                  reverse=True)


def _client_datetime(nova: FakeNova) -> types.SimpleNamespace:
    """A stand-in for the ``datetime`` module: now() on the client clock."""
    class ClientDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz: ty.Optional[datetime.tzinfo] = None
                ) -> datetime.datetime:
            value = nova.client_wall()
            if tz is None:
                return value.astimezone().replace(tzinfo=None)
            return value.astimezone(tz)

    return types.SimpleNamespace(datetime=ClientDatetime,
                                 timedelta=datetime.timedelta,
                                 timezone=datetime.timezone)


class ClientTime(fixtures.Fixture):
    """The client on the fake's clock.

    ``time.monotonic`` is sim time, ``time.sleep`` lets Nova work (and
    optionally really sleeps ``real_sleep`` so that a real subprocess gets
    CPU), ``time.time`` and the batch engine's ``datetime.now`` are the
    client's wall clock (the real one when the fake was made, plus sim
    time). The engine binds these when a Runner, Follower or NovaGateway is
    built: use it before running a command.
    """

    def __init__(self, nova: FakeNova, real_sleep: float = 0.0) -> None:
        super().__init__()
        self.nova = nova
        self.real_sleep = real_sleep

    def _setUp(self) -> None:
        nova = self.nova
        really_sleep = time.sleep
        epoch = nova.base.timestamp()

        def sleep(seconds: float) -> None:
            for hook in list(nova.sleep_hooks):
                hook()
            nova.advance(seconds)
            if self.real_sleep:
                really_sleep(self.real_sleep)

        self.useFixture(fixtures.MonkeyPatch('time.sleep', sleep))
        self.useFixture(fixtures.MonkeyPatch('time.monotonic',
                                             lambda: nova.now))
        self.useFixture(fixtures.MonkeyPatch('time.time',
                                             lambda: epoch + nova.now))
        # Today's batch engine reads the wall clock through its module's
        # ``datetime``; the rewrite drops it (MonkeyPatch then adds it and
        # removes it again).
        self.useFixture(fixtures.MonkeyPatch(
            'osc_migrate_plus.engine.batch.datetime', _client_datetime(nova)))
