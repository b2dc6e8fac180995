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

"""The benchmark's own arithmetic: counting, measuring, reporting."""

import os
import sys

import testtools

from benchmarks import counting
from benchmarks import measure
from benchmarks import report
from benchmarks import ways

SID = '0b5e6a3c-3a4e-4c4e-9d55-8f0c1e1f2a3b'


class TestCounting(testtools.TestCase):

    def test_kinds(self):
        self.assertEqual(counting.MIGRATE, counting.kind(
            'POST /v2.1/servers/%s/action migrate' % SID))
        self.assertEqual(counting.MIGRATE, counting.kind(
            'POST /v2.1/servers/%s/action os-migrateLive' % SID))
        self.assertEqual(counting.CONFIRM, counting.kind(
            'POST /v2.1/servers/%s/action confirmResize' % SID))
        self.assertEqual(counting.WRITE, counting.kind(
            'POST /v2.1/servers/%s/action os-stop' % SID))
        self.assertEqual(counting.POLL, counting.kind(
            'GET /v2.1/os-migrations?changes-since=2026-11-25T10%3A00%3A00Z'))
        self.assertEqual(counting.READ, counting.kind(
            'GET /v2.1/servers/%s' % SID))
        self.assertEqual(counting.READ, counting.kind('GET /identity/v3/'))
        self.assertEqual(counting.WRITE, counting.kind(
            'PUT /v2.1/os-services/x'))

    def test_tally_counts_every_line_once(self):
        lines = ['POST /v2.1/servers/a/action migrate',
                 'GET /v2.1/os-migrations?changes-since=x',
                 'GET /v2.1/servers/detail?all_tenants=1&changes-since=x',
                 'GET /v2.1/servers/a',
                 'POST /v2.1/servers/a/action confirmResize',
                 'PUT /v2.1/os-services/x']
        t = counting.tally(lines)
        self.assertEqual({'migrate': 1, 'confirm': 1, 'poll': 2, 'read': 1,
                          'write': 1, 'total': 6, 'nova_api': 6}, t)
        self.assertEqual(1, counting.poll_rounds(lines))
        self.assertEqual(4, counting.first_index(lines, counting.CONFIRM))
        self.assertEqual(6, counting.first_index(lines[:4],
                                                 counting.CONFIRM) + 2)


class TestMeasure(testtools.TestCase):

    def test_cpu_of_grandchildren_is_counted(self):
        # A shell that runs a python that burns 0.3 s of CPU: the shell's
        # own figure must include it (that is what the seed loop needs).
        burn = ('import time\nt = time.process_time()\n'
                'while time.process_time() - t < 0.3: pass\n')
        cost, out = measure.run(
            ['bash', '-c', '"$0" -c "$1"; echo done', sys.executable, burn],
            dict(os.environ))
        self.assertEqual([], cost.failures)
        self.assertEqual('done\n', out)
        self.assertGreaterEqual(cost.cpu, 0.3)
        self.assertEqual(1, cost.processes)

    def test_wrong_exit_code_is_a_failure_not_an_exception(self):
        cost, _ = measure.run(['bash', '-c', 'echo oops >&2; exit 3'],
                              dict(os.environ))
        self.assertEqual(1, len(cost.failures))
        self.assertIn('exited 3: oops', cost.failures[0])


def _run(way, wall, cpu, total, poll=0, rounds=0, delays=(), repeat=0):
    w = next(w for w in ways.WAYS if w.name == way)
    return {'way': way, 'kind': w.kind, 'parallel': w.parallel,
            'batch': w.batch, 'wall': wall, 'cpu': cpu, 'processes': 1,
            'peak_rss_mb': 90, 'requests': {'total': total, 'poll': poll},
            'poll_rounds': rounds, 'confirm_delays': list(delays),
            'failures': [], 'repeat': repeat}


class TestReport(testtools.TestCase):

    def results(self):
        runs = []
        for r, k in enumerate((1.0, 1.2, 0.8)):  # three repeats
            runs += [_run(ways.SEED, 200 * k, 100 * k, 500, repeat=r),
                     _run(report.P1, 60 * k, 2 * k, 100, 40, 20,
                          [0.5, 1.5], r),
                     _run(report.P10, 20 * k, 1.5 * k, 80, 14, 7,
                          [0.2, 1.0], r)]
        return {'servers': 20, 'repeats': 3, 'interval': 2.0,
                'date': 'today', 'runs': runs,
                'machine': {'cpus': 2, 'memory_gb': 24, 'python': '3.11',
                            'platform': 'Linux'},
                'overhead': {'--version': {'with': [1.01, 1.02, 1.0],
                                           'without': [1.0, 1.0, 1.0]}},
                'plan': {'servers': 500, 'page_size': 100,
                         'command': 'openstack server migrate batch '
                                    '--source-host c1 --dry-run',
                         'runs': [{'wall': 2.0, 'cpu': 1.5,
                                   'peak_rss_mb': 100, 'planned': 500,
                                   'server_pages': 6,
                                   'requests': {'total': 9},
                                   'failures': []}]}}

    def test_medians_over_repeats(self):
        s = report.summarize(self.results())
        self.assertEqual(200, s[ways.SEED]['wall'])
        self.assertEqual(100 / 20, s[ways.SEED]['cpu_per_server'])
        self.assertEqual(4.0, s[report.P10]['requests_per_server'])
        self.assertEqual(2.0, s[report.P10]['poll_requests_per_round'])
        self.assertEqual(1.5, s[report.P1]['confirm_delay_max'])

    def test_targets(self):
        met = {t: ok for t, _, ok in report.targets(self.results())}
        # One confirm target per cold batch way: --max-parallel 1 and 10.
        self.assertEqual(9, len(met))
        # 1.5 s vs 100 s of CPU: 1/67; 200 s vs 20 s: 10x; 80/20 = 4.
        self.assertTrue(all(met.values()), met)

    def test_a_missed_target_says_no(self):
        results = self.results()
        for run in results['runs']:
            if run['way'] == report.P10:
                run['requests']['total'] = 120  # 6 per server
                run['confirm_delays'] = [2.5]
        table = report.markdown(results)
        self.assertIn('| batch requests per migrated server <= 4 | 6.00 '
                      '(--max-parallel 10), 5.00 (1) | **missed** |', table)
        self.assertIn('max 2.50 s', table)
        missed = [t for t, _, ok in report.targets(results) if not ok]
        self.assertEqual(2, len(missed))
