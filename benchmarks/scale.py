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

"""Client scale: a simulated batch of 100, 500 and 2,000 servers.

``tox -e bench-scale`` runs it; no cloud. Each size runs in a fresh
subprocess (so that its peak RSS is its own): the real ``batch`` command
(the cliff class, as OSC runs it) drains ``SOURCES`` compute hosts of a
fake Nova (``tests/unit/fakenova.py``) with realistic timings, onto
``DESTINATIONS`` others, with ``--confirm --disable-source --max-parallel
20``. The client runs on the fake's simulated clock, so an hour of Nova's
work takes a minute or two.

Both run in one process: the fake Nova's own CPU (its request handler, the
work it schedules, the fake Placement) is measured with
``time.process_time`` around each call into it and subtracted; what is left
is the client's. Then the journal that run wrote is read back as
``--resume`` (``Resumption``: replay and planning) and ``openstack server
migrate report`` (``report.build``) read it.

Results go to ``doc/source/benchmarks/scale.json`` and ``scale.md``.
"""

import argparse
import datetime
import gc
import io
import json
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import typing as ty
from unittest import mock

SIZES = (100, 500, 2000)
SOURCES = 10
DESTINATIONS = 10
MAX_PARALLEL = 20
# Seconds of Nova's simulated time: (low, high) is drawn for each use.
TIMING: ty.Dict[str, ty.Any] = {
    'record_delay': (0.5, 2.0),   # the 202 to the conductor's record
    'step': (0.2, 0.5),
    'lag': (0.1, 0.5),
    'cold_duration': (20.0, 40.0),  # migrating to finished
    'confirm_delay': (2.0, 5.0),
    'revert_delay': (2.0, 5.0),
}
LATENCY = 0.05  # each request's time on the wire, simulated
# The targets of issue 15.
RSS_LIMIT_MB = 150.0
REPLAY_LIMIT_S = 1.0
# Flat: the largest size's figure within this factor of the smallest's.
FLAT_FACTOR = 1.5
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC_DIR = os.path.join(REPO, 'doc', 'source', 'benchmarks')


def log(text: str) -> None:
    print('[bench-scale %s] %s' % (time.strftime('%H:%M:%S'), text),
          file=sys.stderr, flush=True)


class Drawn(dict):
    """Nova's timings, each (low, high) drawn anew at each use, seeded."""

    def __init__(self, values: ty.Dict[str, ty.Any], seed: int) -> None:
        super().__init__(values)
        self.rng = random.Random(seed)

    def __getitem__(self, key: str) -> ty.Any:
        value = super().__getitem__(key)
        if isinstance(value, tuple):
            return self.rng.uniform(*value)
        return value


class Meter:
    """CPU spent inside the fake (outermost calls only: they nest)."""

    def __init__(self) -> None:
        self.cpu = 0.0
        self._depth = 0

    def wrap(self, func: ty.Callable[..., ty.Any]) -> ty.Callable[..., ty.Any]:
        def metered(*args: ty.Any, **kwargs: ty.Any) -> ty.Any:
            if self._depth:
                return func(*args, **kwargs)
            self._depth += 1
            began = time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                self.cpu += time.process_time() - began
                self._depth -= 1
        return metered


class Terminal(io.TextIOBase):
    """stderr on a terminal (the live status line is drawn), discarded."""

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        return len(text)


def rss_mb() -> float:
    # Linux: kilobytes.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def kind(path: str, extra: ty.Any) -> str:
    if extra == 'migrate':
        return 'migrate'
    if extra == 'confirmResize':
        return 'confirm'
    if isinstance(extra, dict) and 'changes-since' in extra:
        return 'poll'
    return 'other'


def one(n: int, workdir: str) -> ty.Dict[str, ty.Any]:
    """A batch of ``n`` servers, measured (in its own process)."""
    # Imported here: the parent process needs none of it.
    from osc_migrate_plus.engine import batch as engine
    from osc_migrate_plus.engine import report as journal_report
    from osc_migrate_plus.engine import session
    from osc_migrate_plus import gateway as gw
    from osc_migrate_plus.v1 import batch as batch_cmd
    from osc_migrate_plus.v1 import batch_progress
    from tests.unit import fakenova
    from tests.unit import fakeplacement

    meter = Meter()
    nova = fakenova.FakeNova(hosts=SOURCES + DESTINATIONS, latency=LATENCY)
    nova.timing = Drawn(TIMING, seed=n)
    placement = fakeplacement.FakePlacement(nova)
    # Room for all of them (a capacity estimate is read once); the
    # scheduler places by turns, not by the fake's O(servers) usages.
    nova.placement = None
    for host in nova.services:
        placement.set_inventory(host, 'MEMORY_MB', total=10 ** 7)
        placement.set_inventory(host, 'VCPU', total=10 ** 5)
        placement.set_inventory(host, 'DISK_GB', total=10 ** 7)
    sources = ['compute%d' % h for h in range(1, SOURCES + 1)]
    for i in range(n):
        nova.add_server('vm%04d' % i, host=sources[i % SOURCES],
                        status='ACTIVE' if i % 4 else 'SHUTOFF')
    nova.proxy.request.side_effect = meter.wrap(nova._request)
    placement.proxy.request.side_effect = meter.wrap(placement._request)
    nova.advance = meter.wrap(nova.advance)  # type: ignore[method-assign]

    # The poll rounds and the client's CPU in the run loop.
    loop = {'rounds': 0, 'cpu': 0.0, 'fake': 0.0}
    real_poll = engine.Runner._poll
    real_run = engine.Runner.run

    def poll(runner: ty.Any, inflight: ty.Any) -> None:
        loop['rounds'] += 1
        real_poll(runner, inflight)

    def run(runner: ty.Any, *args: ty.Any, **kwargs: ty.Any) -> bool:
        cpu, fake = time.process_time(), meter.cpu
        try:
            return real_run(runner, *args, **kwargs)
        finally:
            loop['fake'] = meter.cpu - fake
            loop['cpu'] = time.process_time() - cpu - loop['fake']

    journal = os.path.join(workdir, 'journal-%d.jsonl' % n)
    app = mock.Mock()
    app.stdout = io.StringIO()
    app.stderr = Terminal()
    app.options.verbose_level = 1
    app.client_manager.migrate_plus = nova.proxy
    app.client_manager.sdk_connection.placement = placement.proxy
    cmd = batch_cmd.BatchMigrate(app, None)
    args = ['-f', 'json', '--confirm', '--disable-source',
            '--max-parallel', str(MAX_PARALLEL), '--state-file', journal]
    for host in sources:
        args += ['--source-host', host]
    parsed = cmd.get_parser('openstack server migrate').parse_args(args)
    rss_before = rss_mb()
    # The fake's cloud (n servers, built above) would not be in a client's
    # process: out of the collector's way, so that its full collections
    # do not walk it at the client's expense. What the run creates, the
    # client's and the fake's alike, is collected as usual.
    gc.collect()
    gc.freeze()
    with nova.client_time():
        with mock.patch.object(engine.Runner, '_poll', poll), \
                mock.patch.object(engine.Runner, 'run', run):
            wall, cpu = time.perf_counter(), time.process_time()
            rc = cmd.run(parsed)
            cpu = time.process_time() - cpu
        sim = nova.now
    wall = time.perf_counter() - wall
    rows = json.loads(app.stdout.getvalue())
    results: ty.Dict[str, int] = {}
    for row in rows:
        results[row['Result']] = results.get(row['Result'], 0) + 1
    requests: ty.Dict[str, int] = {}
    for _, _, path, extra in nova.requests:
        k = kind(path, extra)
        requests[k] = requests.get(k, 0) + 1
    requests['total'] = len(nova.requests)
    client = cpu - meter.cpu
    rounds = loop['rounds']
    figures = {
        'servers': n, 'exit_code': rc, 'results': results,
        'sim_seconds': round(sim, 1), 'real_seconds': round(wall, 2),
        'cpu_process': round(cpu, 3), 'cpu_fake': round(meter.cpu, 3),
        'cpu_client': round(client, 3),
        'cpu_client_per_server_ms': round(client / n * 1000, 3),
        'cpu_loop': round(loop['cpu'], 3),
        'poll_rounds': rounds,
        'cpu_loop_per_round_ms': round(loop['cpu'] / max(rounds, 1) * 1000,
                                       3),
        'requests': requests,
        'requests_per_server': round(requests['total'] / n, 2),
        'poll_requests_per_round': round(requests.get('poll', 0)
                                         / max(rounds, 1), 2),
        'peak_rss_mb': round(rss_mb(), 1),
        'rss_before_run_mb': round(rss_before, 1),
        'journal_bytes': os.path.getsize(journal),
    }
    figures['replay'] = replay(journal, nova, session, journal_report, gw,
                               batch_progress)
    return figures


def replay(path: str, nova: ty.Any, session: ty.Any, journal_report: ty.Any,
           gw: ty.Any, batch_progress: ty.Any) -> ty.Dict[str, float]:
    """Read the journal back, as --resume and the report do (best of 3).

    ``--resume``: ``Resumption`` (lock, replay) and its planning
    (``start``: every server finished, none read from Nova), on a copy so
    the journal stays as the run left it. The report: ``report.build`` and
    its rows.
    """
    from osc_migrate_plus.engine import batch as engine

    resume, build = [], []
    for attempt in range(3):
        copy = '%s.resume-%d' % (path, attempt)
        shutil.copy(path, copy)
        began = time.perf_counter()
        resumption = session.Resumption(copy)
        try:
            options = resumption.options(engine.Options(), ())
            resumption.start(gw.NovaGateway(nova.proxy),
                             batch_progress.BatchProgress(io.StringIO(),
                                                          quiet=True),
                             options)
        finally:
            resumption.close()
        resume.append(time.perf_counter() - began)
        os.unlink(copy)
        began = time.perf_counter()
        built = journal_report.build(path, running=False)
        [s.row() for s in built.servers]
        build.append(time.perf_counter() - began)
    return {'resume_s': round(min(resume), 3),
            'report_s': round(min(build), 3),
            'servers': len(built.servers)}


def best(tries: ty.List[dict]) -> dict:
    """The run with the least client CPU; the worst peak RSS of all.

    CPU only grows when others share the machine; memory does not shrink.
    """
    chosen = dict(min(tries, key=lambda r: r['cpu_client']))
    chosen['peak_rss_mb'] = max(r['peak_rss_mb'] for r in tries)
    chosen['replay'] = dict(chosen['replay'], **{
        k: min(r['replay'][k] for r in tries)
        for k in ('resume_s', 'report_s')})
    chosen['tries'] = [{k: r[k] for k in (
        'cpu_client', 'cpu_fake', 'cpu_client_per_server_ms',
        'cpu_loop_per_round_ms', 'peak_rss_mb', 'real_seconds')}
        for r in tries]
    return chosen


def flat(values: ty.List[float]) -> bool:
    return values[-1] <= values[0] * FLAT_FACTOR


def targets(runs: ty.List[dict]) -> ty.List[ty.Tuple[str, str, bool]]:
    per_server = [r['cpu_client_per_server_ms'] for r in runs]
    per_round = [r['cpu_loop_per_round_ms'] for r in runs]
    polls = [r['poll_requests_per_round'] for r in runs]
    rss = max(r['peak_rss_mb'] for r in runs)
    largest = runs[-1]
    slowest = max(largest['replay']['resume_s'],
                  largest['replay']['report_s'])
    sizes = '/'.join(str(r['servers']) for r in runs)
    return [
        ('client CPU per server flat (%s: %s ms; largest <= %.1fx '
         'smallest)' % (sizes, ' / '.join('%.2f' % v for v in per_server),
                        FLAT_FACTOR), '', flat(per_server)),
        ('client CPU per poll round flat (%s: %s ms)' % (
            sizes, ' / '.join('%.2f' % v for v in per_round)), '',
         flat(per_round)),
        # Two bulk reads at most whatever the batch (the servers only in
        # the rounds where one may tell more than its record).
        ('bulk poll requests per round at most 2 (%s)' % ' / '.join(
            '%.2f' % v for v in polls), '', max(polls) <= 2.0),
        ('peak RSS under %d MB (%.1f MB)' % (RSS_LIMIT_MB, rss), '',
         rss < RSS_LIMIT_MB),
        ('replay of the %d-server journal under %.0f s (resume %.3f s, '
         'report %.3f s)' % (largest['servers'], REPLAY_LIMIT_S,
                             largest['replay']['resume_s'],
                             largest['replay']['report_s']), '',
         slowest < REPLAY_LIMIT_S),
    ]


def markdown(results: dict) -> str:
    runs = results['runs']
    lines = ['Client scale, simulated (%s, %s, Python %s)' % (
        results['date'], results['machine'], results['python']), '',
        '| servers | exit | sim time | real time | client CPU | CPU/server '
        '| poll rounds | CPU/round | bulk reads/round | requests/server '
        '| fake Nova CPU | peak RSS | resume | report |',
        '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in runs:
        lines.append(
            '| %d | %d | %.0f s | %.1f s | %.2f s | %.2f ms | %d | %.2f ms '
            '| %.2f | %.2f | %.2f s | %.1f MB | %.3f s | %.3f s |' % (
                r['servers'], r['exit_code'], r['sim_seconds'],
                r['real_seconds'], r['cpu_client'],
                r['cpu_client_per_server_ms'], r['poll_rounds'],
                r['cpu_loop_per_round_ms'], r['poll_requests_per_round'],
                r['requests_per_server'], r['cpu_fake'], r['peak_rss_mb'],
                r['replay']['resume_s'], r['replay']['report_s']))
    lines += ['', '| target | met |', '|---|---|']
    for text, _, met in targets(runs):
        lines.append('| %s | %s |' % (text, 'met' if met else 'MISSED'))
    return '\n'.join(lines) + '\n'


def main(argv: ty.Optional[ty.List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=SIZES)
    parser.add_argument('--out', default=DOC_DIR,
                        help='where scale.json and scale.md go')
    parser.add_argument('--repeat', type=int, default=3,
                        help='runs per size; the least client CPU counts '
                             '(the machine may be shared)')
    parser.add_argument('--one', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--workdir', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        os.makedirs(args.workdir, exist_ok=True)
        json.dump(one(args.one, args.workdir), sys.stdout)
        return 0
    runs = []
    with tempfile.TemporaryDirectory(prefix='bench-scale-') as workdir:
        for n in args.sizes:
            tries = []
            for attempt in range(args.repeat):
                log('%d servers, run %d of %d: a fresh process'
                    % (n, attempt + 1, args.repeat))
                out = subprocess.run(
                    [sys.executable, '-m', 'benchmarks.scale', '--one',
                     str(n), '--workdir', os.path.join(
                         workdir, '%d-%d' % (n, attempt))],
                    cwd=REPO, check=True, stdout=subprocess.PIPE).stdout
                tries.append(json.loads(out))
                r = tries[-1]
                log('%d servers: %s, client CPU %.2f s (%.2f ms/server, '
                    '%.2f ms/round), fake Nova %.2f s, peak RSS %.1f MB'
                    % (n, r['results'], r['cpu_client'],
                       r['cpu_client_per_server_ms'],
                       r['cpu_loop_per_round_ms'], r['cpu_fake'],
                       r['peak_rss_mb']))
            runs.append(best(tries))
    results = {
        'date': datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%d %H:%M UTC'),
        'machine': '%s, %d CPUs' % (platform.machine(), os.cpu_count() or 0),
        'python': platform.python_version(),
        'repeat': args.repeat,
        'setup': {'sources': SOURCES, 'destinations': DESTINATIONS,
                  'max_parallel': MAX_PARALLEL, 'latency': LATENCY,
                  'timing': {k: list(v) if isinstance(v, tuple) else v
                             for k, v in TIMING.items()}},
        'runs': runs,
        'targets': [{'target': t, 'met': met}
                    for t, _, met in targets(runs)],
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, 'scale.json'), 'w') as f:
        json.dump(results, f, indent=1, sort_keys=True)
        f.write('\n')
    text = markdown(results)
    with open(os.path.join(args.out, 'scale.md'), 'w') as f:
        f.write(text)
    print(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
