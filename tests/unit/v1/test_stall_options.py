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

"""--on-stall and --stall-after through both commands."""

import io
import json
from unittest import mock

from osc_migrate_plus.engine import batch as engine_batch
from osc_migrate_plus import model
from osc_migrate_plus.v1 import batch
from osc_migrate_plus.v1 import exit_codes
from tests.unit.v1 import test_watch


class TestWatch(test_watch.WatchTestCase):

    def test_bad_stall_after_is_a_usage_error(self):
        for value in ('0', '-1', 'soon', 'nan', 'inf'):
            self.app.stderr = io.StringIO()
            rc = self.run_cmd('vm', '--start', '--live-migration',
                              '--on-stall', 'abort', '--stall-after', value)
            self.assertEqual(exit_codes.USAGE, rc, value)
            self.assertIn('--stall-after must be a positive number',
                          self.app.stderr.getvalue())
        self.assertEqual([], self.nova.requests)

    def test_unknown_policy_exits_2(self):
        with mock.patch('sys.stderr', io.StringIO()):
            e = self.assertRaises(SystemExit, self.parse, 'vm',
                                  '--on-stall', 'pray')
        self.assertEqual(2, e.code)

    def test_forced_to_complete(self):
        self.nova.stall_live(self.sid)
        rc = self.run_cmd('-f', 'json', 'vm', '--start', '--live-migration',
                          '--on-stall', 'force-complete', '--stall-after',
                          '3', '--interval', '1')
        out = json.loads(self.app.stdout.getvalue())
        self.assertEqual((0, 'migrated'), (rc, out['Result']))
        self.assertRegex(out['Message'],
                         r'^stalled [34] s at 91%: forced to complete$')
        self.assertIn('forcing it to complete', self.app.stderr.getvalue())

    def test_aborted_exits_3(self):
        self.nova.stall_live(self.sid)
        rc = self.run_cmd('-f', 'json', 'vm', '--start', '--live-migration',
                          '--on-stall', 'abort', '--stall-after', '3',
                          '--interval', '1')
        out = json.loads(self.app.stdout.getvalue())
        self.assertEqual((exit_codes.TIMEOUT, 'aborted', 'cancelled'),
                         (rc, out['Result'], out['Migration Status']))
        self.assertRegex(out['Message'], r'^stalled [34] s at 91%: '
                         r'aborted, the server stays on compute1$')

    def test_no_figures_said_once_on_stderr(self):
        self.nova.stall_live(self.sid, figures=False)
        rc = self.run_cmd('-f', 'json', 'vm', '--start', '--live-migration',
                          '--on-stall', 'abort', '--stall-after', '2',
                          '--interval', '1', '--timeout', '20')
        self.assertEqual(exit_codes.TIMEOUT, rc)
        self.assertEqual(1, self.app.stderr.getvalue().count(
            'no progress figures from Nova: stall detection off for this '
            'migration'))
        self.assertEqual(0, self.nova.count('DELETE', '/migrations/'))


class TestBatch(test_watch.WatchTestCase):

    def batch_cmd(self):
        return batch.BatchMigrate(self.app, None)

    def test_bad_stall_after_is_a_usage_error(self):
        cmd = self.batch_cmd()
        parser = cmd.get_parser('openstack server migrate batch')
        for value in ('0', '-3', 'x'):
            self.app.stderr = io.StringIO()
            rc = cmd.run(parser.parse_args(['vm', '--mode', 'live',
                                            '--stall-after', value]))
            self.assertEqual(exit_codes.USAGE, rc, value)
            self.assertIn('--stall-after', self.app.stderr.getvalue())
        self.assertEqual([], self.nova.requests)

    def test_help_says_live_only(self):
        text = batch.BatchMigrate(None, None).get_parser('b').format_help()
        self.assertIn('--on-stall', text)
        self.assertIn('with --mode cold it changes nothing', ' '.join(
            text.split()))

    def test_options_and_defaults(self):
        cmd = self.batch_cmd()
        parser = cmd.get_parser('b')
        options = cmd._options(parser.parse_args(['vm']))
        self.assertEqual(('wait', 120.0), (options.on_stall,
                                           options.stall_after))
        options = cmd._options(parser.parse_args(
            ['vm', '--on-stall', 'abort', '--stall-after', '2.5']))
        self.assertEqual(('abort', 2.5), (options.on_stall,
                                          options.stall_after))

    def test_aborted_exits_3_like_watch(self):
        def entry(result):
            e = mock.Mock(spec=engine_batch.Entry)
            e.result = result
            return e
        R = model.Result
        self.assertEqual(exit_codes.TIMEOUT, batch.batch_exit_code(
            [entry(R.MIGRATED), entry(R.ABORTED)], True))
        self.assertEqual(exit_codes.FAILURE, batch.batch_exit_code(
            [entry(R.FAILED), entry(R.ABORTED)], True))
        self.assertEqual(exit_codes.TIMEOUT,
                         exit_codes.for_result(R.ABORTED))
