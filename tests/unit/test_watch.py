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

from osc_migrate_plus.engine import verdict
from osc_migrate_plus import exit_codes
from osc_migrate_plus.v1 import watch
from tests.unit import fakes


class WatchTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.nova = fakes.FakeCompute()
        self.app = mock.Mock()
        self.app.stdout = io.StringIO()
        self.app.stderr = io.StringIO()
        self.app.options.verbose_level = 1
        self.app.client_manager.migrate_plus = self.nova.proxy
        self.cmd = watch.WatchMigration(self.app, None)
        self.sleep = self.useFixture_sleep()

    def useFixture_sleep(self):  # noqa: N802
        patcher = mock.patch('time.sleep')
        sleep = patcher.start()
        self.addCleanup(patcher.stop)
        return sleep

    def parse(self, *args):
        return self.cmd.get_parser('openstack server migrate watch'
                                   ).parse_args(list(args))

    def run_cmd(self, *args):
        return self.cmd.run(self.parse(*args))

    def script(self, server_docs, migration_docs, first_migration=None):
        """Polls see the server and newest-migration documents in order."""
        self.nova.route('GET', '/servers/detail', fakes.response(
            200, {'servers': [fakes.server_doc()]}))
        self.nova.route('GET', '/servers/s1', [
            fakes.response(200, {'server': d}) for d in server_docs])
        pages = [fakes.response(200, {'migrations': [d] if d else []})
                 for d in migration_docs]
        if first_migration is not None:
            pages.insert(0, fakes.response(
                200, {'migrations': [first_migration]}))
        self.nova.route('GET', '/os-migrations', pages)
        self.nova.route('POST', '/servers/s1/action', fakes.response(202))


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
        }
        for args, text in cases.items():
            self.app.stderr = io.StringIO()
            self.assertEqual(exit_codes.USAGE, self.run_cmd(*args), args)
            self.assertIn(text, self.app.stderr.getvalue())
        self.assertEqual([], self.nova.requests)


class TestRun(WatchTestCase):

    def test_start_confirm_cold(self):
        before = fakes.migration_doc(1, 'confirmed')  # an old one
        self.script(
            [fakes.server_doc(status='RESIZE',
                              task_state='resize_migrating'),
             fakes.server_doc(status='VERIFY_RESIZE', host='compute2'),
             fakes.server_doc(status='ACTIVE', host='compute2')],
            [fakes.migration_doc(2, 'migrating'),
             fakes.migration_doc(2, 'finished'),
             fakes.migration_doc(2, 'confirmed')],
            first_migration=before)
        rc = self.run_cmd('-f', 'json', 'vm', '--start', '--confirm')
        self.assertEqual(0, rc)
        out = json.loads(self.app.stdout.getvalue())
        self.assertEqual(list(watch.COLUMNS), list(out))
        self.assertEqual(('confirmed', 'ACTIVE', 'compute1', 'compute2', 2,
                          'migration', 'confirmed', 4.5),
                         (out['Result'], out['Status'], out['Source Host'],
                          out['Destination Host'], out['Migration ID'],
                          out['Migration Type'], out['Migration Status'],
                          out['Duration']))
        self.assertEqual([('POST', '/servers/s1/action', {'migrate': None}),
                          ('POST', '/servers/s1/action',
                           {'confirmResize': None})], self.nova.writes())
        # Progress went to stderr, nothing but the result to stdout.
        self.assertIn('verify_resize', self.app.stderr.getvalue())

    def test_value_column_prints_exactly_the_result(self):
        self.script([fakes.server_doc(status='VERIFY_RESIZE',
                                      host='compute2')],
                    [fakes.migration_doc(2, 'finished')])
        rc = self.run_cmd('-f', 'value', '-c', 'Result', 'vm')
        self.assertEqual(0, rc)
        self.assertEqual('migrated\n', self.app.stdout.getvalue())

    def test_failure_exit_1_with_reason(self):
        self.script([fakes.server_doc(status='ACTIVE')],
                    [fakes.migration_doc(2, 'pre-migrating'),
                     fakes.migration_doc(2, 'error')],
                    first_migration=fakes.migration_doc(1, 'confirmed'))
        self.nova.route('GET', '/servers/s1/os-instance-actions',
                        fakes.response(200, {'instanceActions': [
                            {'action': 'migrate', 'request_id': 'r',
                             'message': 'No valid host was found. '}]}))
        self.nova.route('GET', '/servers/s1/os-instance-actions/r',
                        fakes.response(200, {'instanceAction': {
                            'events': []}}))
        rc = self.run_cmd('-f', 'json', 'vm', '--start')
        self.assertEqual(exit_codes.FAILURE, rc)
        out = json.loads(self.app.stdout.getvalue())
        self.assertEqual('failed', out['Result'])
        self.assertIn('No valid host was found', out['Message'])

    def test_timeout_exit_3(self):
        self.script([fakes.server_doc(status='RESIZE',
                                      task_state='resize_migrating')],
                    [fakes.migration_doc(2, 'migrating')])
        clock = iter(range(0, 100000, 7))
        with mock.patch('time.monotonic', lambda: next(clock)):
            rc = self.run_cmd('-f', 'json', 'vm', '--timeout', '20')
        self.assertEqual(exit_codes.TIMEOUT, rc)
        self.assertEqual('timeout',
                         json.loads(self.app.stdout.getvalue())['Result'])

    def test_interrupt_exit_130_says_how_to_resume(self):
        self.script([fakes.server_doc(status='RESIZE',
                                      task_state='resize_migrating')],
                    [fakes.migration_doc(2, 'migrating')])
        self.sleep.side_effect = KeyboardInterrupt
        clock = iter(range(0, 100000, 5))
        with mock.patch('time.monotonic', lambda: next(clock)):
            rc = self.run_cmd('-f', 'json', 'vm', '--confirm')
        self.assertEqual(exit_codes.INTERRUPTED, rc)
        out = json.loads(self.app.stdout.getvalue())
        self.assertEqual('interrupted', out['Result'])
        self.assertGreater(out['Duration'], 0)
        self.assertIn('goes on in Nova', self.app.stderr.getvalue())
        self.assertIn('openstack server migrate watch s1 --migration 2 '
                      '--confirm', self.app.stderr.getvalue())

    def test_nothing_in_progress_names_the_newest(self):
        self.script([fakes.server_doc()], [fakes.migration_doc(
            9, 'confirmed')])
        e = self.assertRaises(exceptions.CommandError, self.run_cmd, 'vm')
        self.assertIn('no migration in progress', str(e))
        self.assertIn('--migration 9', str(e))
        self.assertEqual([], self.nova.writes())

    def test_migration_of_another_server(self):
        self.script([fakes.server_doc()], [fakes.migration_doc(3)])
        e = self.assertRaises(exceptions.CommandError, self.run_cmd, 'vm',
                              '--migration', '77')
        self.assertIn('does not belong to server s1', str(e))

    def test_unknown_target_host_changes_nothing(self):
        self.script([fakes.server_doc()], [None])
        self.nova.route('GET', '/os-services', fakes.response(200, {
            'services': [{'host': 'compute1'}, {'host': 'compute2'}]}))
        e = self.assertRaises(exceptions.CommandError, self.run_cmd, 'vm',
                              '--start', '--host', 'nosuch')
        self.assertIn('compute1, compute2', str(e))
        self.assertEqual([], self.nova.writes())

    def test_explicit_microversion_too_low(self):
        self.nova = fakes.FakeCompute(default_microversion='2.53')
        self.app.client_manager.migrate_plus = self.nova.proxy
        rc = self.run_cmd('vm', '--start', '--host', 'compute2')
        self.assertEqual(exit_codes.USAGE, rc)
        self.assertIn('2.59 or greater', self.app.stderr.getvalue())
        self.assertEqual([], self.nova.writes())

    def test_quiet_from_osc_global_option(self):
        self.app.options.verbose_level = 0
        self.script([fakes.server_doc(status='VERIFY_RESIZE',
                                      host='compute2')],
                    [fakes.migration_doc(2, 'finished')])
        self.assertEqual(0, self.run_cmd('vm'))
        self.assertEqual('', self.app.stderr.getvalue())


class TestExitCodes(testtools.TestCase):

    def test_every_result_has_a_code(self):
        expected = {'migrated': 0, 'confirmed': 0, 'reverted': 0,
                    'failed': 1, 'timeout': 3, 'aborted': 3,
                    'interrupted': 130}
        self.assertEqual(expected, {r.value: exit_codes.for_result(r)
                                    for r in verdict.Result})
