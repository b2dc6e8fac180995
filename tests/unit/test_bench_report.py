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

"""The benchmark's floor, in-flight charts, history and issue 15's report."""

import argparse
import datetime
import json
import os
import stat
import sys
from xml.etree import ElementTree

import fixtures
import testtools

from benchmarks import counting
from benchmarks import floor
from benchmarks import history
from benchmarks import inflight
from benchmarks import report
from benchmarks import run as bench_run
from benchmarks import ways
from tests.unit import fakenova

T0 = datetime.datetime(2026, 11, 30, 12, 0, 0, tzinfo=datetime.timezone.utc)
A, B, C = 'a' * 8, 'b' * 8, 'c' * 8


def _record(sid, created, updated, status, uuid='m'):
    stamp = '%Y-%m-%dT%H:%M:%S.%f'
    return {'instance_uuid': sid, 'uuid': uuid + sid, 'status': status,
            'created_at': (T0 + datetime.timedelta(seconds=created)
                           ).strftime(stamp),
            'updated_at': (T0 + datetime.timedelta(seconds=updated)
                           ).strftime(stamp) if updated is not None
            else None}


class TestInflight(testtools.TestCase):

    def test_records_become_intervals_of_this_run(self):
        records = [
            _record(A, 1.0, 11.0, 'confirmed'),
            _record(B, 2.5, 7.0, 'completed'),
            # The put-back's record, before the run: not this run's.
            _record(B, -30.0, -20.0, 'completed', uuid='old'),
            # Still waiting for its confirm when the run ended.
            _record(C, 3.0, 4.0, 'finished'),
            # Another server's: not the benchmark's.
            _record('z' * 8, 1.0, 2.0, 'confirmed'),
        ]
        spans = inflight.intervals(records, [A, B, C], T0, wall=20.0)
        self.assertEqual([(1.0, 11.0), (2.5, 7.0), (3.0, 20.0)], spans)
        self.assertEqual(3, inflight.peak(spans))
        # 10 + 4.5 + 17 seconds in flight over 19 s.
        self.assertAlmostEqual(31.5 / 19, inflight.mean(spans))

    def test_steps_count_what_is_in_flight(self):
        spans = [(0.0, 4.0), (1.0, 2.0), (2.0, 3.0), (5.0, 6.0)]
        # At 2.0 one ends and one starts: the count stays 2, no step.
        self.assertEqual([(0.0, 1), (1.0, 2), (3.0, 1), (4.0, 0),
                          (5.0, 1), (6.0, 0)], inflight.steps(spans))
        self.assertEqual(0, inflight.peak([]))

    def test_nova_timestamps_with_or_without_zone(self):
        self.assertEqual(T0, inflight.parse_time('2026-11-30T12:00:00Z'))
        self.assertEqual(T0, inflight.parse_time('2026-11-30T12:00:00.000000'))

    def test_svg_is_plain_svg_one_strip_per_row(self):
        text = inflight.svg('Cold <&> title', [
            ('plugin batch (defaults)', [(1.0, 5.0), (2.0, 9.0)], 10.0),
            ('floor cold: 5 in flight, poll 1 s', [(0.5, 4.0)], 6.0)])
        root = ElementTree.fromstring(text)  # well-formed XML
        ns = '{http://www.w3.org/2000/svg}'
        self.assertEqual(2, len(root.findall(ns + 'polygon')))
        self.assertEqual([], root.findall('.//' + ns + 'script'))
        self.assertIn('Cold &lt;&amp;&gt; title', text)
        self.assertIn('2 max, 10 s', text)
        self.assertIn('No migration records',
                      inflight.svg('empty', []))


def _run(name, kind, wall, nova=60, total=70, family=False, batch=False,
         parallel=1, interval=0.0, delays=(), failures=(), spans=None,
         repeat=0):
    run = {'way': name, 'kind': kind, 'parallel': parallel, 'batch': batch,
           'family': family, 'interval': interval, 'wall': wall, 'cpu': 1.0,
           'processes': 1, 'peak_rss_mb': 90,
           'requests': {'total': total, 'nova_api': nova, 'poll': 10},
           'poll_rounds': 5 if batch else 0, 'confirm_delays': list(delays),
           'failures': list(failures), 'repeat': repeat}
    if spans is not None:
        run['inflight'] = spans
    return run


def _results(runs, date='2026-11-30 12:00 UTC'):
    return {'servers': 20, 'repeats': 1, 'interval': 2.0, 'date': date,
            'started': date.replace(' UTC', '').replace(' ', 'T') + ':00Z',
            'nova': '34.0.0 (series 2026.2)', 'runs': runs,
            'machine': {'cpus': 2, 'memory_gb': 24, 'python': '3.11',
                        'platform': 'Linux'}}


def _member(kind, n, poll, wall, **kw):
    return _run(ways.member(kind, n, poll).name, kind, wall, family=True,
                parallel=n, interval=poll, **kw)


class TestFloorReport(testtools.TestCase):

    def results(self, auto_failed=False):
        auto = dict(failures=['openstack server migrate batch exited 2: '
                              "argument --max-parallel: invalid int value: "
                              "'auto'"]) if auto_failed else {}
        return _results([
            _member('cold', 3, 1.0, 40.0, nova=45),
            _member('cold', 5, 1.0, 30.0, nova=44,
                    spans=[[0.5, 10.0], [0.6, 12.0]]),
            _member('cold', 20, 0.2, 20.0, failures=['x left ERROR']),
            _member('live', 5, 0.5, 20.0),
            _run(ways.DEFAULTS, 'cold', 32.0, nova=58, batch=True,
                 parallel=ways.DEFAULT, interval=2.0, delays=[0.5, 1.9],
                 spans=[[1.5, 20.0]]),
            _run(ways.BY_IDS, 'cold', 33.0, nova=66, batch=True,
                 parallel=2, interval=2.0, delays=[0.4, 2.6]),
            _run(ways.AUTO_COLD, 'cold', 31.0 if not auto_failed else 1.5,
                 batch=True, parallel=ways.AUTO, interval=2.0, **auto),
            _run(ways.LIVE_DEFAULTS, 'live', 23.0, batch=True, parallel=2,
                 interval=2.0),
            _run(ways.SEED, 'cold', 150.0),
        ])

    def test_the_floor_is_the_fastest_member_that_did_the_job(self):
        s = report.summarize(self.results())
        floors = report.floors(s)
        # 20 in flight was faster but failed: not the floor.
        self.assertEqual(ways.member('cold', 5, 1.0).name, floors['cold'][0])
        self.assertEqual(ways.member('live', 5, 0.5).name, floors['live'][0])
        self.assertAlmostEqual(32 / 30, report.floor_multiple(
            s, ways.DEFAULTS))
        self.assertAlmostEqual(23 / 20, report.floor_multiple(
            s, ways.LIVE_DEFAULTS))

    def test_targets_met_and_missed_with_their_figures(self):
        got = {t: (f, ok) for t, f, ok in report.targets(self.results())}
        figure, ok = got['batch with its defaults <= 1.10x the floor, cold']
        self.assertTrue(ok)
        self.assertIn('1.07x (32.0 s vs 30.0 s, floor cold: 5 in flight',
                      figure)
        self.assertFalse(
            got['batch with its defaults <= 1.10x the floor, live'][1])
        # 31 / 30 = 1.03.
        self.assertTrue(got['--max-parallel auto <= 1.05x the floor, '
                            'cold'][1])
        # No live auto way in this run: no target row.
        self.assertNotIn('--max-parallel auto <= 1.05x the floor, live', got)
        confirm = '%s: every confirm within one poll interval (2 s) of ' \
                  'VERIFY_RESIZE'
        self.assertEqual(('max 1.90 s, median 1.20 s', True),
                         got[confirm % ways.DEFAULTS])
        self.assertEqual(('max 2.60 s, median 1.50 s', False),
                         got[confirm % ways.BY_IDS])
        # Family members are not held to the batch's confirm target.
        self.assertFalse(any(t.startswith('floor') for t in got))
        self.assertEqual(
            ('2.90 (58 requests; 70 with identity and image)', True),
            got['requests per server on nova-api <= 3.0, 20 servers by '
                '--source-host'])
        self.assertEqual(
            ('3.30 (66 requests; 70 with identity and image)', False),
            got['requests per server on nova-api <= 3.0, 20 servers given '
                'as IDs'])

    def test_a_way_whose_cli_refuses_an_option_is_a_missed_target(self):
        results = self.results(auto_failed=True)
        s = report.summarize(results)
        self.assertTrue(s[ways.AUTO_COLD]['all_failed'])
        self.assertIsNone(report.floor_multiple(s, ways.AUTO_COLD))
        got = {t: (f, ok) for t, f, ok in report.targets(results)}
        figure, ok = got['--max-parallel auto <= 1.05x the floor, cold']
        self.assertFalse(ok)
        self.assertIn("failed: openstack server migrate batch exited 2",
                      figure)
        table = report.markdown(results)
        self.assertIn('| %s | failed |  |' % ways.AUTO_COLD, table)

    def test_page_shows_floor_multiples_and_the_family(self):
        table = report.markdown(self.results())
        self.assertIn('Real Nova 34.0.0 (series 2026.2)', table)
        self.assertIn('| %s | 32.0 | 1.07x | 4.7x |' % ways.DEFAULTS, table)
        self.assertIn('## The floor family, cold', table)
        self.assertIn('The floor is the fastest member: floor cold: 5 in '
                      'flight, poll 1 s, 30.0 s.', table)
        # Member rows: in flight, poll, wall (the floor's in bold), x floor,
        # CPU, nova-api requests, per server, in flight peak / mean.
        self.assertIn('| 5 | 1 | **30.0** (floor) | 1.00x | 1.00 | 44 | '
                      '2.20 | 2 / 1.8 |  |', table)
        self.assertIn('| 3 | 1 | 40.0 | 1.33x |', table)
        self.assertIn('| 20 | 0.2 | failed |', table)
        self.assertIn('| %s | default | 5 | 2.00 | 1 / 1.0 |'
                      % ways.DEFAULTS, table)
        self.assertIn('| %s | auto |' % ways.AUTO_COLD, table)
        self.assertIn('| batch with its defaults <= 1.10x the floor, live | '
                      '1.15x (23.0 s vs 20.0 s, floor live: 5 in flight, '
                      'poll 0.5 s) | **missed** |', table)
        self.assertNotIn('Change since', table)

    def test_change_since_the_previous_run(self):
        then = self.results()
        for r in then['runs']:
            r['wall'] *= 1.25
        then['date'] = '2026-11-29 10:00 UTC'
        del then['nova']
        then['runs'].append(_run('gone way', 'cold', 10.0))
        table = report.markdown(self.results(), then)
        self.assertIn('## Change since the previous run '
                      '(2026-11-29 10:00 UTC)', table)
        self.assertIn('Then: machine: 2 CPUs, 24 GiB, Python 3.11, Linux. '
                      'Real Nova (version not recorded)', table)
        # 40 s -> 32 s; the floor went from 37.5 to 30: 1.07x both times.
        self.assertIn('| %s | 40.0 | 32.0 | -20%% | 1.07x -> 1.07x | '
                      '2.90 -> 2.90 |' % ways.DEFAULTS, table)
        self.assertNotIn('| gone way |', table)

    def test_in_flight_charts_per_kind(self):
        svgs = report.inflight_svgs(self.results())
        self.assertEqual({'cold', 'live'}, set(svgs))
        self.assertIn(ways.DEFAULTS, svgs['cold'])
        self.assertIn('floor cold: 5 in flight, poll 1 s', svgs['cold'])
        # Ways without records (the seed way: not charted) stay out.
        self.assertNotIn(ways.SEED, svgs['cold'])
        ElementTree.fromstring(svgs['live'])


class TestCountingNovaApi(testtools.TestCase):

    def test_identity_and_image_are_not_nova_api(self):
        lines = ['GET /identity/v3/', 'GET /image/v2/images/x',
                 'GET /v2.1/servers/detail?all_tenants=1', 'GET /',
                 'POST /v2.1/servers/a/action migrate']
        t = counting.tally(lines)
        self.assertEqual(5, t['total'])
        self.assertEqual(3, t['nova_api'])


class TestHistory(testtools.TestCase):

    def test_runs_kept_beside_the_page_and_the_previous_found(self):
        d = self.useFixture(fixtures.TempDir()).path
        output = os.path.join(d, 'results.json')
        old = _results([], date='2026-11-26 00:08 UTC')
        del old['started']  # a run from before the history
        self.assertEqual('2026-11-26T00-08.json', history.run_name(old))
        self.assertIsNone(history.previous(output, old))
        history.save(old, output)
        new = _results([], date='2026-11-30 12:00 UTC')
        self.assertEqual('2026-11-30T12-00-00Z.json', history.run_name(new))
        self.assertEqual(old, history.previous(output, new))
        path = history.save(new, output)
        with open(output) as f:
            self.assertEqual(new, json.load(f))  # results.json: the latest
        with open(path) as f:
            self.assertEqual(new, json.load(f))
        self.assertEqual(['2026-11-26T00-08.json',
                          '2026-11-30T12-00-00Z.json'],
                         sorted(os.listdir(os.path.join(d, 'runs'))))
        # The newest run's previous is still the one before it.
        self.assertEqual(old, history.previous(output, new))


class TestWays(testtools.TestCase):

    def test_members(self):
        self.assertEqual([(5, 1.0), (10, 0.5)],
                         ways.parse_members('5x1.0, 10x0.5'))
        for bad in ('5', 'x1', '0x1', '5x0', 'fivex1'):
            self.assertRaises(ValueError, ways.parse_members, bad)
        family = ways.family()
        self.assertEqual(24, len(family))
        self.assertEqual(24, len({w.name for w in family}))
        m = ways.member('live', 10, 0.2)
        cmd = m.commands(['id1', 'id2'])[0]
        self.assertEqual([sys.executable, ways.FLOOR_SCRIPT, '--kind', 'live',
                          '--in-flight', '10', '--interval', '0.2',
                          '--source', ways.SOURCE, 'id1', 'id2'], cmd)
        self.assertTrue(m.family and not m.batch and m.interval == 0.2)

    def test_new_ways(self):
        by_name = {w.name: w for w in ways.WAYS}
        ids = ['id%d' % i for i in range(20)]
        cmd = by_name[ways.BY_IDS].commands(ids)[0]
        self.assertNotIn('--source-host', cmd)
        self.assertEqual(ids, cmd[-20:])
        self.assertIn('--confirm', cmd)
        cmd = by_name[ways.AUTO_LIVE].commands(ids)[0]
        # As an operator types it: per-host limits are off with auto.
        self.assertEqual(['--max-parallel', 'auto'],
                         cmd[cmd.index('--max-parallel'):][:2])
        self.assertNotIn('--max-per-source', cmd)
        defaults = by_name[ways.DEFAULTS].commands(ids)[0]
        self.assertNotIn('--max-parallel', defaults)
        self.assertEqual(2.0, by_name[ways.DEFAULTS].interval)

    def test_a_refused_option_is_a_failed_run_not_a_crash(self):
        d = self.useFixture(fixtures.TempDir()).path
        cli = os.path.join(d, 'openstack')
        with open(cli, 'w') as f:
            f.write('#!/bin/sh\necho "argument --max-parallel: invalid int '
                    'value: \'auto\'" >&2\nexit 2\n')
        os.chmod(cli, stat.S_IRWXU)
        way = {w.name: w for w in ways.WAYS}[ways.AUTO_COLD]
        cost = way.run(cli, dict(os.environ), ['id1'])
        self.assertEqual(1, len(cost.failures))
        self.assertIn("exited 2: argument --max-parallel: invalid int value",
                      cost.failures[0])


class TestRunControl(testtools.TestCase):

    def args(self, **kw):
        values = dict(ways=True, only=[], kind=None, family=True, members='')
        values.update(kw)
        return argparse.Namespace(**values)

    def test_choose(self):
        chosen, members = bench_run.choose(self.args())
        self.assertEqual(len(ways.WAYS), len(chosen))
        self.assertEqual(24, len(members))
        chosen, members = bench_run.choose(self.args(
            only=['batch (defaults)'], members='5x1.0', kind='cold'))
        self.assertEqual([ways.DEFAULTS], [w.name for w in chosen])
        self.assertEqual(['floor cold: 5 in flight, poll 1 s'],
                         [w.name for w in members])
        chosen, members = bench_run.choose(self.args(ways=False,
                                                     family=False))
        self.assertEqual(([], []), (chosen, members))

    def test_family_only_in_its_repeats(self):
        chosen, members = bench_run.choose(self.args(members='5x1.0'))
        self.assertEqual(len(chosen) + 2, len(bench_run.schedule(
            chosen, members, 0, 1)))
        self.assertEqual(len(chosen), len(bench_run.schedule(
            chosen, members, 1, 1)))


class _Now:
    """A pool that runs each request at once, on the fake's clock."""

    def submit(self, fn, *args):
        fn(*args)


class TestFloorClient(testtools.TestCase):
    """The floor client against the fake Nova: it does the job, fast."""

    def drive(self, kind, in_flight, interval, servers=12):
        nova = fakenova.FakeNova()
        ids = [nova.add_server('s%d' % i) for i in range(servers)]
        with nova.client_time():
            started = nova.client_wall()
            result = floor.Floor(nova.proxy, ids, kind, in_flight, interval,
                                 'compute1', pool=_Now()).run()
        return nova, ids, started, result

    def test_cold_every_server_moved_and_confirmed(self):
        nova, ids, started, result = self.drive('cold', 5, 0.5)
        self.assertEqual([], result['failures'])
        for sid in ids:
            s = nova.server(sid)
            self.assertEqual('ACTIVE', s['status'])
            self.assertNotEqual('compute1', s['OS-EXT-SRV-ATTR:host'])
        self.assertEqual(12, nova.count('POST', 'migrate'))
        self.assertEqual(12, nova.count('POST', 'confirmResize'))
        # One bulk read per poll, whatever is in flight.
        self.assertEqual(result['polls'],
                         nova.count('GET', '/servers/detail'))
        self.assertEqual(5, result['peak_in_flight'])
        # Confirms go out in the poll that sees VERIFY_RESIZE: within one
        # interval of the server showing it (Nova's lag after the event,
        # and this pool's confirms one after another, on top).
        for sid in ids:
            actions = nova._request('/servers/%s/os-instance-actions' % sid,
                                    'GET').json()['instanceActions']
            migrate = next(a for a in actions if a['action'] == 'migrate')
            confirm = next(a for a in actions
                           if a['action'] == 'confirmResize')
            events = nova._request('/servers/%s/os-instance-actions/%s' % (
                sid, migrate['request_id']), 'GET').json()[
                    'instanceAction']['events']
            done = next(e['finish_time'] for e in events
                        if e['event'] == 'compute_finish_resize')
            delay = (inflight.parse_time(confirm['start_time']) -
                     inflight.parse_time(done)).total_seconds()
            self.assertLessEqual(
                delay, 0.5 + nova.timing['lag'] + 6 * nova.latency, sid)

    def test_live_in_flight_never_over_its_limit(self):
        nova, ids, started, result = self.drive('live', 3, 0.2)
        self.assertEqual([], result['failures'])
        self.assertEqual({'ACTIVE'}, {nova.server(s)['status'] for s in ids})
        self.assertNotIn('compute1', {nova.server(s)['OS-EXT-SRV-ATTR:host']
                                      for s in ids})
        self.assertEqual(0, nova.count('POST', 'confirmResize'))
        records = nova._request('/os-migrations', 'GET',
                                microversion='2.59').json()['migrations']
        spans = inflight.intervals(records, ids, started, result['wall'])
        self.assertEqual(12, len(spans))
        # Nova's records agree with the client: never more than 3 at once.
        self.assertEqual(3, inflight.peak(spans))

    def test_a_refused_migration_frees_its_slot(self):
        nova = fakenova.FakeNova()
        ids = [nova.add_server('s%d' % i) for i in range(4)]
        nova.fail_request('migrate', path=ids[0], status=400)
        with nova.client_time():
            result = floor.Floor(nova.proxy, ids, 'cold', 1, 0.5,
                                 'compute1', pool=_Now()).run()
        self.assertEqual(1, len(result['failures']))
        self.assertIn(ids[0], result['failures'][0])
        for sid in ids[1:]:
            self.assertEqual('ACTIVE', nova.server(sid)['status'])
            self.assertNotEqual('compute1',
                                nova.server(sid)['OS-EXT-SRV-ATTR:host'])


class TestBrief(testtools.TestCase):

    def test_a_usage_error_in_one_line(self):
        failure = ('/x/openstack server migrate batch --source-host c1 '
                   'exited 2:            [--max-hosts <n>]\n'
                   '                [<server> ...]\n'
                   'openstack server migrate batch: error: argument '
                   "--max-parallel: invalid positive_int value: 'auto'")
        self.assertEqual(
            'openstack server migrate batch --source-host c1 exited 2: '
            'openstack server migrate batch: error: argument '
            "--max-parallel: invalid positive_int value: 'auto'",
            report.brief(failure))
        self.assertEqual('x left ERROR', report.brief('x left ERROR'))
