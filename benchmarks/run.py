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

"""The benchmark: every way of moving N servers, side by side, in one run.

``tox -e bench`` runs it. It starts the real-Nova minicloud, boots N servers
on compute1 and, for each repeat, puts them back on compute1 and moves them
off with each way of ``ways.WAYS``, counting the client's wall time, CPU and
requests (at the cloud's side). Then the plugin's cost on every
``openstack`` call (paired runs with and without it) and a dry run planned
over 500 servers. Results go to a JSON file and a Markdown table
(``report.py``).
"""

import argparse
import datetime
import json
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import typing as ty
import urllib.parse

from benchmarks import counting
from benchmarks import history
from benchmarks import inflight
from benchmarks import measure
from benchmarks import report
from benchmarks import ways as ways_mod
from tests.minicloud import fixture

DOC_DIR = os.path.join(fixture.REPO, 'doc', 'source', 'benchmarks')
SOURCE = ways_mod.SOURCE


def log(text: str) -> None:
    print('[bench %s] %s' % (time.strftime('%H:%M:%S'), text),
          file=sys.stderr, flush=True)


class Bench:
    def __init__(self, cloud: fixture.MiniCloud, servers: int) -> None:
        self.cloud = cloud
        self.compute = cloud.connection().compute
        self.openstack = fixture.openstack_cli()
        self.env = cloud.cli_env()
        self.env['OS_CLOUD'] = 'minicloud-admin'
        # The seed script calls plain `openstack`: this venv's.
        self.env['PATH'] = '%s:%s' % (os.path.dirname(self.openstack),
                                      self.env.get('PATH', ''))
        self.ids = [s['id'] for s in cloud.seed_servers(
            SOURCE, servers, prefix='bench')]

    # -- one way, measured -------------------------------------------------
    def measure_way(self, way: ways_mod.Way) -> dict:
        self.put_back()
        self.cloud.requests(reset=True)
        started = datetime.datetime.now(datetime.timezone.utc)
        cost = way.run(self.openstack, self.env, self.ids)
        lines = self.cloud.requests()
        failures = cost.failures + self.check_moved()
        delays = self.confirm_delays(started) \
            if way.kind == ways_mod.COLD else []
        spans = inflight.intervals(self.migrations(started, way.kind),
                                   self.ids, started, cost.wall)
        return {'way': way.name, 'kind': way.kind, 'parallel': way.parallel,
                'batch': way.batch, 'family': way.family,
                'interval': way.interval, 'wall': cost.wall, 'cpu': cost.cpu,
                'processes': cost.processes,
                'peak_rss_mb': cost.peak_rss_mb,
                'requests': counting.tally(lines),
                'poll_rounds': counting.poll_rounds(lines),
                'confirm_delays': delays, 'failures': failures,
                'started': started.isoformat(), 'inflight': spans}

    def check_moved(self) -> ty.List[str]:
        """Every server ACTIVE and off the source: the job was done."""
        wrong = []
        for s in self._servers():
            if s['status'] != 'ACTIVE' or \
                    s['OS-EXT-SRV-ATTR:host'] == SOURCE:
                wrong.append('%s left %s on %s' % (
                    s['id'], s['status'], s['OS-EXT-SRV-ATTR:host']))
        return wrong

    def confirm_delays(self, since: datetime.datetime) -> ty.List[float]:
        """Seconds from VERIFY_RESIZE to the confirm request, per server.

        From Nova's own instance actions: the end of the migration's
        ``compute_finish_resize`` event (the server is in VERIFY_RESIZE)
        and the start of the ``confirmResize`` action (the request). Nova
        has no bulk read of actions: two reads per server, after the
        measured run. Only this run's: a migration started since ``since``.
        """
        delays = []
        for sid in self.ids:
            actions = self._get('/servers/%s/os-instance-actions' % sid,
                                'instanceActions')  # newest first
            migrate = next((a for a in actions if a['action'] == 'migrate'),
                           None)
            confirm = next((a for a in actions
                            if a['action'] == 'confirmResize'), None)
            if migrate is None or confirm is None or \
                    confirm['start_time'] < migrate['start_time'] or \
                    _time(migrate['start_time']) < since:
                continue  # not confirmed by this way: check_moved says so
            events = self._get('/servers/%s/os-instance-actions/%s' % (
                sid, migrate['request_id']), 'instanceAction')['events']
            finished = next((e['finish_time'] for e in events
                             if e['event'] == 'compute_finish_resize'
                             and e['finish_time']), None)
            if finished:
                delays.append((_time(confirm['start_time']) -
                               _time(finished)).total_seconds())
        return delays

    def migrations(self, since: datetime.datetime, kind: str
                   ) -> ty.List[dict]:
        """Migration records of this kind updated since the run started.

        Microversion 2.59: ``uuid``, ``created_at``, ``updated_at`` and
        paging; the bench's servers are all on the cloud, filtered later.
        """
        stamp = (since - datetime.timedelta(seconds=2)).strftime(
            '%Y-%m-%dT%H:%M:%SZ')
        kind_filter = 'migration' if kind == ways_mod.COLD else \
            'live-migration'
        records: ty.List[dict] = []
        marker = ''
        while True:
            page = self._get(
                '/os-migrations?changes-since=%s&migration_type=%s&limit=%d'
                '%s' % (urllib.parse.quote(stamp), kind_filter,
                        self.cloud.max_limit,
                        '&marker=' + marker if marker else ''),
                'migrations', microversion='2.59')
            records += page
            if len(page) < self.cloud.max_limit:
                return records
            marker = page[-1]['uuid']

    def put_back(self) -> None:
        """All N servers ACTIVE on the source again (not measured)."""
        away = [s['id'] for s in self._servers()
                if s['OS-EXT-SRV-ATTR:host'] != SOURCE]
        for sid in away:
            body = {'os-migrateLive': {'host': SOURCE,
                                       'block_migration': 'auto'}}
            r = self.compute.post('/servers/%s/action' % sid, json=body,
                                  microversion='2.30')
            if r.status_code != 202:
                raise RuntimeError('put back %s: %s %s' % (
                    sid, r.status_code, r.text))
        deadline = time.monotonic() + 300
        while away:
            time.sleep(0.5)
            away = [s['id'] for s in self._servers()
                    if s['OS-EXT-SRV-ATTR:host'] != SOURCE
                    or s['status'] != 'ACTIVE']
            if away and time.monotonic() > deadline:
                raise RuntimeError('not back on %s: %s' % (SOURCE, away))
        time.sleep(1)  # live-migration records may still read "running"

    def _servers(self) -> ty.List[dict]:
        """The bench's servers, read in bulk: one paged listing."""
        wanted = set(self.ids)
        found: ty.Dict[str, dict] = {}
        marker = ''
        while True:
            page = self._get('/servers/detail?all_tenants=1&limit=%d%s' % (
                self.cloud.max_limit, '&marker=' + marker if marker else ''),
                'servers')
            found.update((s['id'], s) for s in page if s['id'] in wanted)
            if len(page) < self.cloud.max_limit or len(found) == len(wanted):
                break
            marker = page[-1]['id']
        missing = wanted - set(found)
        if missing:
            raise RuntimeError('servers gone: %s' % sorted(missing))
        return [found[sid] for sid in self.ids]

    def _count_on(self, host: str) -> int:
        """Servers on ``host``, all projects, page by page."""
        count, marker = 0, ''
        while True:
            page = self._get('/servers?all_tenants=1&host=%s%s' % (
                host, '&marker=' + marker if marker else ''), 'servers')
            count += len(page)
            if not page:
                return count
            marker = page[-1]['id']

    def _get(self, url: str, key: str, microversion: str = '2.74'
             ) -> ty.Any:
        r = self.compute.get(url, microversion=microversion)
        if r.status_code != 200:
            raise RuntimeError('GET %s: %s %s' % (url, r.status_code, r.text))
        return r.json()[key]

    # -- the plugin's cost on every openstack call --------------------------
    def overhead(self, pairs: int) -> dict:
        """Paired, alternating runs with the plugin installed and not.

        "Not" is a copy of this venv with the plugin uninstalled: the same
        packages otherwise.
        """
        bare = tempfile.mkdtemp(prefix='bench-noplugin-')
        try:
            without = _venv_without_plugin(bare)
            results = {}
            for args in (['--version'], ['server', 'list', '--help']):
                walls: ty.Dict[str, ty.List[float]] = {'with': [],
                                                       'without': []}
                for i in range(pairs + 1):
                    order = [('with', self.openstack), ('without', without)]
                    if i % 2:
                        order.reverse()
                    for label, exe in order:
                        cost, _ = measure.run([exe] + args, self.env)
                        if cost.failures:
                            raise RuntimeError(cost.failures[0])
                        if i:  # the first pair warms caches
                            walls[label].append(cost.wall)
                results[' '.join(args)] = walls
            return results
        finally:
            shutil.rmtree(bare, ignore_errors=True)

    # -- planning at scale --------------------------------------------------
    def plan(self, servers: int, repeats: int) -> dict:
        """Dry runs of ``--source-host`` over a host holding ``servers``.

        ``batch`` selects by host (``--project`` alone is refused), so all
        of them are booted on ``compute1``; the dry run plans every server
        there, the benchmark's own included if the last way left any.
        """
        host = 'compute1'
        log('booting %d servers on %s for the dry run' % (servers, host))
        started = time.monotonic()
        for first in range(0, servers, 50):  # progress shows in the log
            self.cloud.seed_servers(host, min(50, servers - first),
                                    prefix='plan%d' % first, timeout=3600)
            log('booted %d in %.0fs' % (min(first + 50, servers),
                                        time.monotonic() - started))
        on_host = self._count_on(host)
        command = ['server', 'migrate', 'batch', '--source-host', host,
                   '--dry-run', '-f', 'json']
        runs = []
        for _ in range(repeats):
            self.cloud.requests(reset=True)
            cost, out = measure.run([self.openstack] + command, self.env)
            lines = self.cloud.requests()
            planned = len(json.loads(out)) if not cost.failures else 0
            runs.append({'wall': cost.wall, 'cpu': cost.cpu,
                         'peak_rss_mb': cost.peak_rss_mb,
                         'planned': planned,
                         'requests': counting.tally(lines),
                         'server_pages': sum(
                             1 for line in lines
                             if line.startswith('GET /v2.1/servers/detail')),
                         'failures': cost.failures})
        return {'servers': on_host, 'page_size': self.cloud.max_limit,
                'command': 'openstack ' + ' '.join(command[:-2]),
                'runs': runs}


def _venv_without_plugin(target: str) -> str:
    """Copy this venv to ``target``, uninstall the plugin, return its CLI."""
    shutil.copytree(sys.prefix, target, symlinks=True, dirs_exist_ok=True)
    python = os.path.join(target, 'bin', 'python')
    subprocess.run([python, '-m', 'pip', 'uninstall', '-q', '-y',
                    'osc-migrate-plus'], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    script = os.path.join(target, 'bin', 'openstack')
    with open(script) as f:
        text = f.read().split('\n', 1)[1]
    with open(script, 'w') as f:  # its shebang named the original venv
        f.write('#!%s\n%s' % (python, text))
    check = subprocess.run([python, '-c', 'import osc_migrate_plus'],
                           capture_output=True, cwd=target)
    if check.returncode == 0:
        raise RuntimeError('the plugin is still importable in %s' % target)
    return script


def _time(text: str) -> datetime.datetime:
    return inflight.parse_time(text)  # aware, UTC: Nova's are UTC


def machine() -> dict:
    with open('/proc/meminfo') as f:
        mem_kb = int(f.readline().split()[1])
    return {'cpus': os.cpu_count(), 'memory_gb': round(mem_kb / 2 ** 20),
            'python': platform.python_version(),
            'platform': platform.platform()}


def choose(args: argparse.Namespace
           ) -> ty.Tuple[ty.List[ways_mod.Way], ty.List[ways_mod.Way]]:
    """The ways and the floor members this run measures."""
    chosen = [] if not args.ways else [
        w for w in ways_mod.WAYS
        if not args.only or any(o in w.name for o in args.only)]
    kinds = [k for k in (ways_mod.COLD, ways_mod.LIVE)
             if args.kind in (None, k)]
    chosen = [w for w in chosen if w.kind in kinds]
    members = [] if not args.family else ways_mod.family(
        ways_mod.parse_members(args.members) if args.members else None,
        kinds)
    return chosen, members


def schedule(chosen: ty.Sequence[ways_mod.Way],
             members: ty.Sequence[ways_mod.Way], repeat: int,
             family_repeats: int) -> ty.List[ways_mod.Way]:
    """One repeat's order: ways and members shuffled together."""
    order = list(chosen) + (list(members) if repeat < family_repeats
                            else [])
    random.shuffle(order)  # nothing always runs on a warm cloud
    return order


def nova_series() -> str:
    from tests.minicloud import venv
    return venv.series()


def main(argv: ty.Optional[ty.List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--servers', type=int, default=20)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--plan-servers', type=int, default=500)
    parser.add_argument('--pairs', type=int, default=15,
                        help='paired runs for the plugin overhead')
    parser.add_argument('--only', action='append', default=[],
                        help='run only the ways whose name contains this')
    parser.add_argument('--no-ways', dest='ways', action='store_false',
                        help='no way, only the floor family (and the rest)')
    parser.add_argument('--kind', choices=(ways_mod.COLD, ways_mod.LIVE),
                        help='only the ways and members of this kind')
    parser.add_argument('--family', action=argparse.BooleanOptionalAction,
                        default=True, help='measure the floor family')
    parser.add_argument('--members', default='',
                        help='these members only, IN_FLIGHTxINTERVAL, comma '
                        'separated (e.g. 5x1.0,10x0.5; default: %s x %s)' % (
                            ways_mod.IN_FLIGHT, ways_mod.POLLS))
    parser.add_argument('--family-repeats', type=int, default=None,
                        help='repeats of the family (default: --repeats)')
    parser.add_argument('--append', action='store_true',
                        help='add to the run in --output (a run in parts) '
                        'instead of starting a new one')
    parser.add_argument('--output', default=os.path.join(DOC_DIR,
                                                         'results.json'))
    parser.add_argument('--page-only', action='store_true',
                        help='measure nothing: write results.md and the '
                        'charts again from --output and the run before it')
    args = parser.parse_args(argv)
    if args.page_only:
        with open(args.output) as f:
            done = json.load(f)
        write_page(done, history.previous(args.output, done), args.output)
        return 0
    try:
        chosen, members = choose(args)
    except ValueError as e:
        parser.error(str(e))
    family_repeats = args.repeats if args.family_repeats is None \
        else args.family_repeats
    now = datetime.datetime.now(datetime.timezone.utc)
    part = now.strftime('%Y-%m-%d %H:%M UTC')
    results: dict = {
        'date': part, 'started': now.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'machine': machine(), 'servers': args.servers,
        'repeats': args.repeats, 'interval': ways_mod.BATCH_INTERVAL,
        'args': shlex.join(sys.argv[1:] if argv is None else argv),
        'runs': []}
    if args.append and os.path.exists(args.output):
        with open(args.output) as f:
            earlier = json.load(f)
        if earlier['servers'] != args.servers:
            parser.error('--append to a run of %d servers: give --servers %d'
                         % (earlier['servers'], earlier['servers']))
        earlier.setdefault('parts', [earlier['date']])
        earlier['parts'].append(part)
        earlier['args'] = '%s; %s' % (earlier.get('args', ''),
                                      results['args'])
        results = earlier
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    previous = history.previous(args.output, results)
    started = time.monotonic()
    seconds = results.get('seconds', 0)
    log('%d ways, %d floor members (%d repeats of the family), %d repeats'
        % (len(chosen), len(members), family_repeats if members else 0,
           args.repeats))

    def save() -> None:
        # After every phase: a late failure must not cost the figures so far.
        results['seconds'] = seconds + round(time.monotonic() - started)
        history.save(results, args.output)

    with fixture.MiniCloud(computes=3, max_limit=100) as cloud:
        log('minicloud ready in %.1fs' % cloud.start_seconds)
        results['nova'] = '%s (series %s)' % (cloud.nova_version,
                                              nova_series())
        bench = Bench(cloud, args.servers)
        for repeat in range(args.repeats):
            order = schedule(chosen, members, repeat, family_repeats)
            for i, way in enumerate(order):
                log('repeat %d/%d, %d/%d: %s' % (
                    repeat + 1, args.repeats, i + 1, len(order), way.name))
                run = bench.measure_way(way)
                run['repeat'] = repeat
                results['runs'].append(run)
                log('%-40s %6.1fs wall %6.1fs CPU %4d requests (%d nova-api)'
                    '%s' % (way.name, run['wall'], run['cpu'],
                            run['requests']['total'],
                            run['requests']['nova_api'],
                            ' FAILED: %s' % run['failures'][:2]
                            if run['failures'] else ''))
                save()
        if args.pairs:
            log('the plugin on every openstack call: %d pairs' % args.pairs)
            results['overhead'] = bench.overhead(args.pairs)
            save()
        if args.plan_servers:
            results['plan'] = bench.plan(args.plan_servers, args.repeats)
    save()
    write_page(results, previous, args.output)
    log('results in %s (%ds)' % (args.output, results['seconds']))
    return 1 if any(r['failures'] for r in results['runs']) else 0


def write_page(results: dict, previous: ty.Optional[dict],
               output: str) -> None:
    """results.md and the in-flight charts, beside ``output``."""
    table = report.markdown(results, previous)
    with open(os.path.splitext(output)[0] + '.md', 'w') as f:
        f.write(table)
    for kind, svg in report.inflight_svgs(results).items():
        with open(os.path.join(os.path.dirname(os.path.abspath(output)),
                               'inflight-%s.svg' % kind), 'w') as f:
            f.write(svg)
    print(table)


if __name__ == '__main__':
    sys.exit(main())
