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

"""Both commands as a project manager, through the real CLI, real Nova.

Nova's default policy from nova 32 lets the ``manager`` role of a project
migrate its servers (no host named) and list the migrations its project
started (``project_id``, 2.80), host names hidden. The harness's user
``manager`` has that role in project ``demo``, where ``member`` boots.
"""

import json
import os
import uuid

import fixtures

from tests.functional import base

BATCH = ('server', 'migrate', 'batch')
WATCH = ('server', 'migrate', 'watch')


class ProjectManagerTest(base.MiniCloudTestCase):

    def setUp(self):
        super().setUp()
        self.state = self.useFixture(fixtures.TempDir()).path

    def needs_manager_policy(self):
        if self.cloud.nova_major() < 32:
            self.skipTest('nova %s: its default policy gives the manager '
                          'role nothing of migrating (from nova 32)'
                          % self.cloud.nova_major())

    def seed(self, count):
        return [s['id'] for s in self.cloud.seed_servers(
            None, count, prefix='pm-%s' % uuid.uuid4().hex[:6],
            user='member')]

    def journal(self):
        return os.path.join(self.state, '%s.jsonl' % uuid.uuid4().hex[:8])

    def moved_once(self, server_id, before):
        """Nova's own view: on another host, ACTIVE, one record, done."""
        truth = self.cloud.truth(server_id)[server_id]
        self.assertEqual('ACTIVE', truth['status'])
        self.assertNotEqual(before, truth['host'])
        [record] = truth['migrations']
        self.assertEqual('confirmed', record['status'])

    def hosts_of(self, ids):
        truth = self.cloud.truth()
        return {i: truth[i]['host'] for i in ids}

    def test_watch_start_confirm(self):
        self.needs_manager_policy()
        [sid] = self.seed(1)
        before = self.hosts_of([sid])[sid]
        out = self.openstack_json(*(WATCH + (sid, '--start', '--confirm')),
                                  user='manager')
        self.assertEqual('confirmed', out['Result'])
        # Hidden from a manager: no host is shown, none is made up.
        self.assertIsNone(out['Source Host'])
        self.moved_once(sid, before)

    def test_watch_live(self):
        self.needs_manager_policy()
        [sid] = self.seed(1)
        before = self.hosts_of([sid])[sid]
        out = self.openstack_json(*(WATCH + (sid, '--start',
                                             '--live-migration')),
                                  user='manager')
        self.assertEqual('migrated', out['Result'], out['Message'])
        truth = self.cloud.truth(sid)[sid]
        self.assertNotEqual(before, truth['host'])
        self.assertEqual(['completed'],
                         [m['status'] for m in truth['migrations']])

    def test_batch_names_servers_from_and_project(self):
        self.needs_manager_policy()
        ids = self.seed(3)
        before = self.hosts_of(ids)
        listed = os.path.join(self.state, 'servers.txt')
        with open(listed, 'w') as f:
            f.write('%s\n' % ids[1])
        result = self.openstack(*(BATCH + (
            ids[0], '--servers-from', listed, '--confirm',
            '--state-file', self.journal(), '-f', 'json')), user='manager')
        rows = {r['Server ID']: r for r in json.loads(result.stdout)}
        self.assertEqual({ids[0], ids[1]}, set(rows))
        for sid in ids[:2]:
            self.assertEqual('confirmed', rows[sid]['Result'],
                             rows[sid]['Message'])
            self.moved_once(sid, before[sid])
        # --project alone: every server of the manager's own project that
        # is ACTIVE (the two moved ones too: each moves once more).
        dry = self.openstack_json(*(BATCH + ('--project', 'demo',
                                             '--dry-run')), user='manager')
        self.assertEqual(set(), set(ids) - {r['Server ID'] for r in dry})
        self.assertEqual({'planned'}, {r['Result'] for r in dry
                                       if r['Server ID'] in ids})

    def test_what_needs_admin_is_refused_and_nothing_moves(self):
        self.needs_manager_policy()
        [sid] = self.seed(1)
        before = self.cloud.truth(sid)[sid]
        cases = [
            (BATCH + ('--source-host', 'compute1', '--state-file',
                      self.journal()), '--source-host compute1'),
            (BATCH + (sid, '--host', 'compute2', '--state-file',
                      self.journal()), '--host compute2'),
            (WATCH + (sid, '--start', '--host', 'compute2'),
             '--host compute2'),
        ]
        for args, named in cases:
            result = self.openstack(*args, user='manager', expect_rc=1)
            self.assertIn('%s: Nova does not let you list compute hosts'
                          % named, result.stderr)
            self.assertIn('needs admin', result.stderr)
            self.assertEqual('', result.stdout)
        result = self.openstack(*(BATCH + ('--project', 'admin',
                                           '--state-file', self.journal())),
                                user='manager', expect_rc=1)
        self.assertIn('--project admin: Nova lists only the servers of '
                      'your own project', result.stderr)
        self.assertEqual(before, self.cloud.truth(sid)[sid])

    def test_migration_an_admin_started_is_explained(self):
        """Nova lists to a manager only what its project started."""
        self.needs_manager_policy()
        [sid] = self.seed(1)
        self.openstack('server', 'migrate', '--wait', sid)
        result = self.openstack(*(WATCH + (sid,)), user='manager',
                                expect_rc=1)
        self.assertIn('started by another project', result.stderr)
        # The admin ends what the admin started.
        out = self.openstack_json(*(WATCH + (sid, '--confirm')))
        self.assertEqual('confirmed', out['Result'])

    def assert_refused_nothing_moves(self, user):
        """Nova's 403 for ``batch`` and ``watch --start``; nothing moves."""
        [sid] = self.seed(1)
        before = self.cloud.truth(sid)[sid]
        result = self.openstack(*(BATCH + (sid, '--state-file',
                                           self.journal())),
                                user=user, expect_rc=1)
        self.assertIn("HTTP 403: Policy doesn't allow os_compute_api:"
                      "os-migrations:index", result.stderr)
        result = self.openstack(*(WATCH + (sid, '--start')),
                                user=user, expect_rc=1)
        self.assertIn('HTTP 403', result.stderr)
        self.assertEqual(before, self.cloud.truth(sid)[sid])

    def test_member_still_gets_403(self):
        self.assert_refused_nothing_moves('member')

    def test_before_nova_32_a_manager_is_refused_like_a_member(self):
        """Up to nova 31 migrating is admin-only, the manager role too."""
        if self.cloud.nova_major() >= 32:
            self.skipTest('nova %s: managers migrate (see the tests above)'
                          % self.cloud.nova_major())
        self.assert_refused_nothing_moves('manager')
