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

"""The watch command: options, exit codes, output, through cliff."""

import io
import json
from unittest import mock

from osc_lib import exceptions
import testtools

from osc_migrate_plus import model
from osc_migrate_plus.v1 import exit_codes
from osc_migrate_plus.v1 import watch
from tests.unit import fakenova


class WatchTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.nova = fakenova.FakeNova()
        self.useFixture(self.nova.client_time())
        self.app = mock.Mock()
        self.app.stdout = io.StringIO()
        self.app.stderr = io.StringIO()
        self.app.options.verbose_level = 1
        self.app.client_manager.migrate_plus = self.nova.proxy
        self.cmd = watch.WatchMigration(self.app, None)
        self.sid = self.nova.add_server('vm')

    def parse(self, *args):
        return self.cmd.get_parser('openstack server migrate watch'
                                   ).parse_args(list(args))

    def run_cmd(self, *args):
        return self.cmd.run(self.parse(*args))

    def result(self):
        return json.loads(self.app.stdout.getvalue())

    def writes(self):
        return [(m, extra) for _, m, _, extra in self.nova.requests
                if m != 'GET']


class TestParser(WatchTestCase):

    def test_defaults(self):
        args = self.parse('vm')
        self.assertEqual((3600, 2.0, False, False, False, None),
                         (args.timeout, args.interval, args.start,
                          args.confirm, args.revert, args.migration))

    def test_parser_without_app(self):
        # cliff's Sphinx extension builds commands with app=None.
        parser = watch.WatchMigration(None, None).get_parser('watch')
        self.assertIn('--abort-on-timeout', parser.format_help())

    def test_argparse_rejections_exit_2(self):
        for args in (['vm', '--confirm', '--revert'],
                     ['vm', '--block-migration', '--shared-migration'],
                     ['vm', '--interval', '0'], ['vm', '--interval', '-1'],
                     ['vm', '--timeout', '-5'], ['vm', '--timeout', 'soon'],
                     []):
            with mock.patch('sys.stderr', io.StringIO()):
                e = self.assertRaises(SystemExit, self.parse, *args)
            self.assertEqual(2, e.code, args)

    def test_usage_errors_exit_2_and_send_nothing(self):
        cases = {
            ('vm', '--host', 'c2'): '--host only makes sense with --start',
            ('vm', '--live-migration'): 'with --start',
            ('vm', '--start', '--block-migration'): 'need --live-migration',
            ('vm', '--start', '--live-migration', '--revert'):
                'cannot be reverted',
            ('vm', '--start', '--migration', '4'): 'cannot be combined',
            ('vm', '--migration', 'abc'): 'takes a migration ID',
        }
        for args, text in cases.items():
            self.app.stderr = io.StringIO()
            self.assertEqual(exit_codes.USAGE, self.run_cmd(*args), args)
            self.assertIn(text, self.app.stderr.getvalue())
        self.assertEqual([], self.nova.requests)


class TestRun(WatchTestCase):

    def test_start_confirm_cold(self):
        # An old migration first: never taken for the new one.
        self.nova.start_elsewhere(self.sid)
        self.nova.settle()
        self.nova.auto_confirm(self.sid)
        self.nova.settle()
        source = self.nova.server(self.sid)['OS-EXT-SRV-ATTR:host']
        rc = self.run_cmd('-f', 'json', 'vm', '--start', '--confirm')
        self.assertEqual(0, rc)
        out = self.result()
        self.assertEqual(list(watch.COLUMNS), list(out))
        new = self.nova.records(self.sid)[0]
        self.assertNotEqual(source, new['dest_compute'])
        self.assertEqual(('confirmed', 'ACTIVE', source,
                          new['dest_compute'], new['id'], 'migration',
                          'confirmed'),
                         (out['Result'], out['Status'], out['Source Host'],
                          out['Destination Host'], out['Migration ID'],
                          out['Migration Type'], out['Migration Status']))
        self.assertEqual(2, new['id'])
        self.assertGreater(out['Duration'], 0)
        self.assertEqual([('POST', 'migrate'), ('POST', 'confirmResize')],
                         self.writes())
        # Progress went to stderr, nothing but the result to stdout.
        self.assertIn('verify_resize', self.app.stderr.getvalue())

    def test_value_column_prints_exactly_the_result(self):
        self.nova.start_elsewhere(self.sid)
        self.nova.settle()
        rc = self.run_cmd('-f', 'value', '-c', 'Result', 'vm')
        self.assertEqual(0, rc)
        self.assertEqual('migrated\n', self.app.stdout.getvalue())

    def test_failure_exit_1_with_reason(self):
        self.nova.fail_migrations(servers=[self.sid],
                                  message='No valid host was found. ')
        rc = self.run_cmd('-f', 'json', 'vm', '--start')
        self.assertEqual(exit_codes.FAILURE, rc)
        out = self.result()
        self.assertEqual('failed', out['Result'])
        self.assertIn('No valid host was found', out['Message'])

    def test_timeout_exit_3(self):
        self.nova.timing['cold_duration'] = 1000
        rc = self.run_cmd('-f', 'json', 'vm', '--start', '--timeout', '20')
        self.assertEqual(exit_codes.TIMEOUT, rc)
        self.assertEqual('timeout', self.result()['Result'])

    def test_interrupt_exit_130_says_how_to_resume(self):
        self.nova.timing['cold_duration'] = 1000

        def interrupt():
            if self.nova.records(self.sid):
                raise KeyboardInterrupt()
        self.nova.sleep_hooks.append(interrupt)
        rc = self.run_cmd('-f', 'json', 'vm', '--start', '--confirm')
        self.assertEqual(exit_codes.INTERRUPTED, rc)
        out = self.result()
        self.assertEqual('interrupted', out['Result'])
        self.assertGreater(out['Duration'], 0)
        self.assertIn('goes on in Nova', self.app.stderr.getvalue())
        self.assertIn('openstack server migrate watch %s --migration 1 '
                      '--confirm' % self.sid, self.app.stderr.getvalue())

    def test_nothing_in_progress_names_the_newest(self):
        self.nova.start_elsewhere(self.sid, live=True)
        self.nova.settle()
        e = self.assertRaises(exceptions.CommandError, self.run_cmd, 'vm')
        self.assertIn('no migration in progress', str(e))
        self.assertIn('--migration 1', str(e))
        self.assertEqual([], self.writes())

    def test_reporting_on_a_named_older_migration(self):
        self.nova.start_elsewhere(self.sid, live=True)
        self.nova.settle()
        rc = self.run_cmd('-f', 'json', 'vm', '--migration', '1')
        self.assertEqual(0, rc)
        self.assertEqual(('migrated', 1), (self.result()['Result'],
                                           self.result()['Migration ID']))

    def test_a_resize_is_not_a_migration(self):
        self.nova.resize(self.sid)
        self.nova.settle()
        e = self.assertRaises(exceptions.CommandError, self.run_cmd, 'vm',
                              '--confirm')
        self.assertIn('has a resize in progress', str(e))
        self.assertEqual([], self.writes())

    def test_migration_of_another_server(self):
        e = self.assertRaises(exceptions.CommandError, self.run_cmd, 'vm',
                              '--migration', '77')
        self.assertIn('does not belong to server %s' % self.sid, str(e))

    def test_unknown_target_host_changes_nothing(self):
        e = self.assertRaises(exceptions.CommandError, self.run_cmd, 'vm',
                              '--start', '--host', 'nosuch')
        self.assertIn('compute1, compute2, compute3', str(e))
        self.assertEqual([], self.writes())

    def test_explicit_microversion_too_low(self):
        self.nova.proxy.default_microversion = '2.53'
        rc = self.run_cmd('vm', '--start', '--host', 'compute2')
        self.assertEqual(exit_codes.USAGE, rc)
        self.assertIn('2.59 or greater', self.app.stderr.getvalue())
        self.assertEqual([], self.writes())

    def test_cloud_too_old_is_not_a_usage_error(self):
        self.nova = fakenova.FakeNova(max_microversion='2.53')
        self.app.client_manager.migrate_plus = self.nova.proxy
        rc = self.run_cmd('vm', '--start')
        self.assertEqual(exit_codes.FAILURE, rc)
        self.assertIn('up to 2.53', self.app.stderr.getvalue())

    def test_quiet_from_osc_global_option(self):
        self.app.options.verbose_level = 0
        self.nova.start_elsewhere(self.sid)
        self.nova.settle()
        self.assertEqual(0, self.run_cmd('vm'))
        self.assertEqual('', self.app.stderr.getvalue())


class TestExitCodes(testtools.TestCase):

    def test_every_result_has_a_code(self):
        expected = {'migrated': 0, 'confirmed': 0, 'reverted': 0,
                    'failed': 1, 'timeout': 3, 'aborted': 3,
                    'interrupted': 130, 'deleted': 1, 'skipped': 1}
        self.assertEqual(expected, {r.value: exit_codes.for_result(r)
                                    for r in model.Result
                                    if r.value in expected})
        # Batch-only results never reach watch's table.
        for r in (model.Result.PLANNED, model.Result.NOT_STARTED):
            self.assertRaises(KeyError, exit_codes.for_result, r)
