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

"""--max-parallel auto through the command: parsing, journal, resume."""

import io
import json

from osc_migrate_plus.engine import batch as engine_batch
from osc_migrate_plus.engine import pace as pacing
from osc_migrate_plus.v1 import batch
from osc_migrate_plus.v1 import batch_progress
from tests.unit.v1 import test_unkind_nova as unkind


class TestParse(unkind.UnkindNovaTestCase):

    def parse(self, *args):
        cmd = batch.BatchMigrate(None, None)
        return cmd.get_parser('batch').parse_args(list(args))

    def test_auto_or_a_number(self):
        self.assertEqual('auto', self.parse('vm', '--max-parallel',
                                            'auto').max_parallel)
        self.assertEqual('auto', self.parse('vm', '--max-parallel',
                                            'AUTO').max_parallel)
        self.assertEqual(7, self.parse('vm', '--max-parallel',
                                       '7').max_parallel)

    def test_bad_values_are_usage_errors(self):
        for bad in ('0', '-1', 'fast', '2.5', ''):
            stderr = io.StringIO()
            with unkind.mock.patch('sys.stderr', stderr):
                e = self.assertRaises(SystemExit, self.parse, 'vm',
                                      '--max-parallel', bad)
            self.assertEqual(2, e.code, bad)
            self.assertIn('--max-parallel', stderr.getvalue())

    def test_the_status_line_shows_the_limit(self):
        self.assertEqual('4', batch_progress.in_flight(4, None))
        pace = pacing.Pace()
        self.assertEqual('2/auto:3', batch_progress.in_flight(2, pace))


class TestRun(unkind.UnkindNovaTestCase):

    def test_journal_records_auto_and_resume_keeps_it(self):
        fake = self.cloud()
        fake.timing['cold_duration'] = 30
        sids = [fake.add_server('vm%d' % n) for n in range(4)]
        self.kill_when(lambda: self.journal_count('"event":"submitted"'))
        self.assertRaises(unkind.Kill, self.batch, 'vm0', 'vm1', 'vm2',
                          'vm3', '--confirm', '--max-parallel', 'auto',
                          '--state-file', self.path)
        with open(self.path) as f:
            header = json.loads(f.readline())
        self.assertEqual('auto', header['limits']['max_parallel'])
        seen = []
        real = engine_batch.Runner.run

        def run(runner, *args, **kwargs):
            seen.append(runner.pace)
            return real(runner, *args, **kwargs)

        with unkind.mock.patch.object(engine_batch.Runner, 'run', run):
            rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        self.assertIsInstance(seen[0], pacing.Pace)
        for sid in sids:
            self.assertResult('confirmed', rows[sid])
            self.assertEqual(1, len(fake.records(sid)))

    def test_per_host_limits_are_off_with_auto_unless_given(self):
        fake = self.cloud()
        for n in range(3):
            fake.add_server('vm%d' % n)
        rc, rows = self.batch('vm0', 'vm1', 'vm2', '--confirm',
                              '--max-parallel', 'auto', '--max-per-source',
                              '3', '--state-file', self.path)
        self.assertEqual(0, rc)
        with open(self.path) as f:
            limits = json.loads(f.readline())['limits']
        self.assertEqual(('auto', 3, 0), (limits['max_parallel'],
                                          limits['max_per_source'],
                                          limits['max_per_destination']))

    def test_a_number_on_resume_replaces_auto(self):
        fake = self.cloud()
        fake.timing['cold_duration'] = 30
        [fake.add_server('vm%d' % n) for n in range(2)]
        self.kill_when(lambda: self.journal_count('"event":"submitted"'))
        self.assertRaises(unkind.Kill, self.batch, 'vm0', 'vm1',
                          '--confirm', '--max-parallel', 'auto',
                          '--state-file', self.path)
        seen = []
        real = engine_batch.Runner.run

        def run(runner, *args, **kwargs):
            seen.append((runner.pace, runner.limit()))
            return real(runner, *args, **kwargs)

        with unkind.mock.patch.object(engine_batch.Runner, 'run', run):
            rc, rows = self.batch('--resume', self.path, '--max-parallel',
                                  '1')
        self.assertEqual(0, rc)
        self.assertEqual([(None, 1)], seen)

    def test_dry_run_says_auto(self):
        fake = self.cloud()
        fake.add_server('vm0')
        stderr = io.StringIO()
        rc, rows = self._run(batch.BatchMigrate,
                             ['vm0', '--dry-run', '--max-parallel', 'auto'],
                             stderr)
        self.assertEqual(0, rc)
        self.assertIn('--max-parallel auto: would start with 3 in flight',
                      stderr.getvalue())
