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

"""``openstack server migrate watch`` through the real CLI, real Nova."""

import json
import re
import time
import uuid

from tests.functional import base

WATCH = ('server', 'migrate', 'watch')
STAMPED = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ ', re.M)


class TestWatch(base.MiniCloudTestCase):

    def _one(self, host='compute1', stopped=0):
        prefix = 'w-%s' % uuid.uuid4().hex[:6]
        return self.cloud.seed_servers(host, 1, stopped=stopped,
                                       prefix=prefix)[0]

    def watch(self, *args, expect_rc=0, user='admin'):
        result = self.openstack(*(WATCH + args + ('-f', 'json')),
                                user=user, expect_rc=expect_rc)
        # stdout carries the result and nothing else.
        return json.loads(result.stdout), result

    def test_start_confirm_cold(self):
        server = self._one()
        out, result = self.watch(server['id'], '--start', '--confirm',
                                 '--interval', '1')
        self.assertEqual('confirmed', out['Result'])
        self.assertEqual('ACTIVE', out['Status'])
        self.assertEqual('compute1', out['Source Host'])
        view = self.server_view(server['id'])
        self.assertEqual(('ACTIVE', out['Destination Host']),
                         (view['status'], view['host']))
        self.assertNotEqual('compute1', view['host'])
        self.assertEqual('confirmed', out['Migration Status'])
        # Progress: timestamped lines on stderr (not a TTY here).
        self.assertTrue(STAMPED.search(result.stderr), result.stderr)
        self.assertIn('verify_resize', result.stderr)

    def test_start_confirm_keeps_shutoff(self):
        server = self._one(stopped=1)
        out, _ = self.watch(server['name'], '--start', '--confirm',
                            '--interval', '1')
        self.assertEqual(('confirmed', 'SHUTOFF'),
                         (out['Result'], out['Status']))
        self.assertEqual('SHUTOFF', self.server_view(server['id'])['status'])

    def test_start_revert(self):
        server = self._one()
        out, _ = self.watch(server['id'], '--start', '--revert',
                            '--interval', '1')
        self.assertEqual('reverted', out['Result'])
        self.assertEqual({'status': 'ACTIVE', 'host': 'compute1'},
                         self.server_view(server['id']))

    def test_start_live(self):
        server = self._one()
        out, _ = self.watch(server['id'], '--start', '--live-migration',
                            '--interval', '1')
        self.assertEqual(('migrated', 'live-migration', 'completed'),
                         (out['Result'], out['Migration Type'],
                          out['Migration Status']))
        view = self.server_view(server['id'])
        self.assertEqual('ACTIVE', view['status'])
        self.assertNotEqual('compute1', view['host'])

    def test_start_without_confirm_leaves_verify_resize(self):
        server = self._one()
        out, _ = self.watch(server['id'], '--start', '--interval', '1')
        self.assertEqual('migrated', out['Result'])
        self.assertEqual('VERIFY_RESIZE',
                         self.server_view(server['id'])['status'])
        # And watching it again with --confirm finishes the job.
        out, _ = self.watch(server['id'], '--confirm', '--interval', '1')
        self.assertEqual('confirmed', out['Result'])

    def test_attach_to_core_migration_and_poll_cost(self):
        server = self._one()
        # Long enough that watch, a new process, attaches mid-flight even
        # on a loaded machine.
        self.cloud.set_delay(8)
        self.openstack('server', 'migrate', server['id'])
        self.cloud.requests(reset=True)
        out, _ = self.watch(server['id'], '--confirm', '--interval', '1')
        self.assertEqual('confirmed', out['Result'])
        requests = self.cloud.requests()
        mine = [r for r in requests if server['id'] in r
                or r.startswith('GET /v2.1/os-migrations')]
        server_reads = [r for r in mine if r == 'GET /v2.1/servers/%s'
                        % server['id']]
        polls = [r for r in mine if r.startswith('GET /v2.1/os-migrations')]
        self.assertGreaterEqual(len(polls), 3)  # it really followed
        # A poll reads the server's newest record, and the server itself
        # only once the record has moved on (or every 30 s): while the
        # migration was under way, polls were one request.
        self.assertGreater(len(server_reads), 0)
        self.assertLess(len(server_reads), len(polls))
        self.assertEqual(1, len([r for r in requests
                                 if '/action ' in r]))  # the confirm

    def test_driver_failure_exit_1_with_novas_reason(self):
        server = self._one()
        self.cloud.fail_migrations(['compute2', 'compute3'], 'to')
        out, _ = self.watch(server['id'], '--start', '--confirm',
                            '--interval', '1', expect_rc=1)
        self.assertEqual('failed', out['Result'])
        self.assertEqual('error', out['Migration Status'])
        self.assertIn('are set to fail', out['Message'])
        self.assertIn('compute_resize_instance', out['Message'])
        self.assertEqual('compute1', self.server_view(server['id'])['host'])

    def test_timeout_exit_3(self):
        server = self._one()
        self.cloud.set_delay(8)
        started = time.monotonic()
        out, _ = self.watch(server['id'], '--start', '--timeout', '2',
                            '--interval', '1', expect_rc=3)
        self.assertEqual('timeout', out['Result'])
        self.assertIn('goes on in Nova', out['Message'])
        self.assertLess(time.monotonic() - started, 8 + 10)
        # It does go on: the migration finishes without us.
        self.cloud.wait_servers([server['id']], 'VERIFY_RESIZE', 60)

    def test_abort_live_on_timeout(self):
        server = self._one()
        self.cloud.set_delay(15)
        out, _ = self.watch(server['id'], '--start', '--live-migration',
                            '--timeout', '2', '--interval', '1',
                            '--abort-on-timeout', expect_rc=3)
        self.assertEqual(('aborted', 'cancelled'),
                         (out['Result'], out['Migration Status']))
        self.assertEqual({'status': 'ACTIVE', 'host': 'compute1'},
                         self.server_view(server['id']))

    def test_member_gets_403_and_nothing_moves(self):
        prefix = 'wm-%s' % uuid.uuid4().hex[:6]
        [server] = self.cloud.seed_servers(None, 1, prefix=prefix,
                                           user='member')
        result = self.openstack(*(WATCH + (server['name'], '--start')),
                                user='member', expect_rc=1)
        self.assertIn("HTTP 403: Policy doesn't allow", result.stderr)
        self.assertEqual('', result.stdout)
        migrations = self.openstack_json('server', 'migration', 'list',
                                         '--server', server['id'])
        self.assertEqual([], migrations)

    def test_value_column_and_no_progress_on_stdout(self):
        server = self._one()
        result = self.openstack(*(WATCH + (server['id'], '--start',
                                           '--confirm', '--interval', '1',
                                           '-f', 'value', '-c', 'Result')))
        self.assertEqual('confirmed\n', result.stdout)
        self.assertIn('confirm sent', result.stderr)
        quiet = self.openstack(*(WATCH + (server['id'], '--start',
                                          '--confirm', '--quiet', '-f',
                                          'value', '-c', 'Result')))
        self.assertEqual(('confirmed\n', ''), (quiet.stdout, quiet.stderr))

    def test_bad_input_changes_nothing(self):
        server = self._one()
        cases = [
            ((server['id'], '--host', 'compute2'), 2, 'with --start'),
            ((server['id'], '--start', '--block-migration'), 2,
             'need --live-migration'),
            ((server['id'], '--confirm', '--revert'), 2, 'not allowed'),
            ((server['id'], '--interval', '0'), 2, 'greater than 0'),
            ((server['id'], '--timeout', '-1'), 2, '0 (no limit)'),
            (('no-such-server',), 1, 'No server with a name or ID'),
            ((server['id'],), 1, 'never been migrated'),
            ((server['id'], '--start', '--host', 'compute9'), 1,
             '--host compute9: no such compute host'),
            ((server['id'], '--migration', '424242'), 1,
             'does not belong to server'),
        ]
        for args, rc, text in cases:
            result = self.openstack(*(WATCH + args), expect_rc=rc)
            self.assertIn(text, result.stderr, args)
            self.assertEqual('', result.stdout, args)
        result = self.openstack('--os-compute-api-version', '2.53',
                                *(WATCH + (server['id'], '--start')),
                                expect_rc=2)
        self.assertIn('--os-compute-api-version 2.59 or greater',
                      result.stderr)
        self.assertEqual([], self.openstack_json(
            'server', 'migration', 'list', '--server', server['id']))
        self.assertEqual({'status': 'ACTIVE', 'host': 'compute1'},
                         self.server_view(server['id']))

    def test_ambiguous_name_lists_the_ids(self):
        prefix = 'dup-%s' % uuid.uuid4().hex[:6]
        servers = self.cloud.seed_servers('compute2', 2, prefix=prefix)
        for server in servers:
            self.openstack('server', 'set', '--name', prefix, server['id'])
        result = self.openstack(*(WATCH + (prefix, '--start')), expect_rc=1)
        self.assertIn('More than one server is named', result.stderr)
        for server in servers:
            self.assertIn(server['id'], result.stderr)
            self.assertEqual([], self.openstack_json(
                'server', 'migration', 'list', '--server', server['id']))

    def test_conflict_names_the_state(self):
        server = self._one()
        self.openstack('server', 'pause', server['id'])
        self.cloud.wait_servers([server['id']], 'PAUSED', 30)
        result = self.openstack(*(WATCH + (server['id'], '--start')),
                                expect_rc=1)
        self.assertIn('HTTP 409', result.stderr)
        self.assertIn('paused', result.stderr)
