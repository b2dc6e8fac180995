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

"""Both commands as a project manager, on a fake Nova with Nova 34's policy.

Nova's default policy from nova 32 lets the ``manager`` role of a project
migrate that project's servers without a host, and read the migrations its
project started, asked with ``project_id`` (2.80), with host names hidden.
Everything else that names hosts or other projects is admin-only.
"""

import os

from osc_lib import exceptions

from tests.unit import fakenova
from tests.unit.v1 import test_unkind_nova as base

MANAGER = fakenova.Caller('manager', 'p1')
MEMBER = fakenova.Caller('member', 'p1')


class ManagerTestCase(base.UnkindNovaTestCase):

    def cloud(self, real_sleep=0.0, **kwargs):
        kwargs.setdefault('caller', MANAGER)
        return super().cloud(real_sleep, **kwargs)

    def assertNothingSent(self, fake):  # noqa: N802
        self.assertEqual([], [r for r in fake.requests if r[1] != 'GET'])

    def migration_reads(self, fake):
        return [extra for _, method, path, extra in fake.requests
                if method == 'GET' and path == '/os-migrations']


class TestManagerMigrates(ManagerTestCase):

    def test_watch_start_confirm(self):
        """watch --start --confirm: migrations read for the project."""
        fake = self.cloud()
        sid = fake.add_server('vm1')
        rc, out = self.watch(sid, '--start', '--confirm')
        self.assertEqual(0, rc)
        self.assertEqual('confirmed', out['Result'])
        truth = fake.server(sid)
        self.assertEqual('ACTIVE', truth['status'])
        self.assertNotEqual('compute1', truth['OS-EXT-SRV-ATTR:host'])
        reads = self.migration_reads(fake)
        # The first read, unscoped, was refused; every one after asked for
        # the manager's project.
        self.assertNotIn('project_id', reads[0])
        self.assertTrue(all(r.get('project_id') == 'p1' for r in reads[1:]),
                        reads)
        # Hosts are hidden from a manager: none shown, none made up.
        self.assertIsNone(out['Source Host'])

    def test_watch_live(self):
        fake = self.cloud()
        sid = fake.add_server('vm1')
        rc, out = self.watch(sid, '--start', '--live-migration')
        self.assertEqual(0, rc, out)
        self.assertEqual('migrated', out['Result'])
        self.assertNotEqual('compute1',
                            fake.server(sid)['OS-EXT-SRV-ATTR:host'])

    def test_batch_by_name_and_project(self):
        """Names, --servers-from and --project of the manager's project."""
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % i) for i in range(3)]
        listed = os.path.join(self.tmp, 'servers.txt')
        with open(listed, 'w') as f:
            f.write('vm1\n')
        rc, rows = self.batch('vm0', '--servers-from', listed, '--confirm',
                              '--state-file', self.path)
        self.assertEqual(0, rc, rows)
        self.assertEqual({'confirmed'},
                         {rows[i]['Result'] for i in ids[:2]})
        rc, rows = self.batch('--project', 'p1', '--status', 'ACTIVE',
                              '--confirm', '--state-file', self.path + '2')
        self.assertEqual(0, rc, rows)
        self.assertEqual({'confirmed'}, {r['Result'] for r in rows.values()})
        self.assertEqual(set(ids), set(rows))
        for sid in ids:
            self.assertEqual('ACTIVE', fake.server(sid)['status'])

    def test_batch_resume_keeps_reading_the_project(self):
        """A resume learns the project from the journal, not from roles."""
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % i) for i in range(2)]
        self.kill_when(lambda: any(
            fake.server(i)['status'] == 'VERIFY_RESIZE' for i in ids))
        self.assertRaises(base.Kill, self.batch, *ids, '--confirm',
                          '--state-file', self.path)
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc, rows)
        self.assertEqual({'confirmed'}, {r['Result'] for r in rows.values()})
        for sid in ids:
            self.assertEqual('ACTIVE', fake.server(sid)['status'])
            self.assertEqual(1, len(fake.records(sid)))


class TestManagerRefused(ManagerTestCase):
    """What needs admin is refused before anything is sent."""

    def test_batch_source_host(self):
        fake = self.cloud()
        fake.add_server('vm1')
        error = self.assertRaises(
            exceptions.CommandError, self.batch, '--source-host', 'compute1',
            '--state-file', self.path)
        self.assertIn('--source-host compute1: Nova does not let you list '
                      'compute hosts', str(error))
        self.assertIn('needs admin', str(error))
        self.assertIn('Nothing was changed', str(error))
        self.assertNothingSent(fake)

    def test_batch_and_watch_target_host(self):
        fake = self.cloud()
        sid = fake.add_server('vm1')
        for run in (lambda: self.batch(sid, '--host', 'compute2',
                                       '--state-file', self.path),
                    lambda: self.watch(sid, '--start', '--host',
                                       'compute2')):
            error = self.assertRaises(exceptions.CommandError, run)
            self.assertIn('--host compute2', str(error))
            self.assertIn('needs admin', str(error))
        self.assertNothingSent(fake)
        self.assertEqual([], fake.records(sid))

    def test_batch_other_project(self):
        """Nova drops --project for a manager: the batch must notice."""
        fake = self.cloud()
        fake.add_server('mine')
        fake.add_server('theirs', project_id='p2')
        error = self.assertRaises(
            exceptions.CommandError, self.batch, '--project', 'p2',
            '--state-file', self.path)
        self.assertIn('--project p2: Nova lists only the servers of your '
                      'own project (p1)', str(error))
        self.assertNothingSent(fake)

    def test_another_projects_server_by_id(self):
        fake = self.cloud()
        theirs = fake.add_server('theirs', project_id='p2')
        error = self.assertRaises(
            exceptions.CommandError, self.batch, theirs,
            '--state-file', self.path)
        self.assertIn('No server with a name or ID', str(error))
        self.assertNothingSent(fake)


class TestMember(ManagerTestCase):

    def test_member_gets_403_before_anything_moves(self):
        fake = self.cloud(caller=MEMBER)
        sid = fake.add_server('vm1')
        for run in (lambda: self.batch(sid, '--state-file', self.path),
                    lambda: self.watch(sid, '--start')):
            error = self.assertRaises(exceptions.CommandError, run)
            self.assertIn("HTTP 403: Policy doesn't allow os_compute_api:"
                          "os-migrations:index to be performed",
                          str(error))
        self.assertNothingSent(fake)


class TestAdminStartedMigration(ManagerTestCase):

    def test_invisible_to_the_manager_said_so(self):
        """Nova's project_id filter is the project that started it.

        An admin migrated the manager's server: Nova lists that migration
        to the admin only. watch says why it sees none, not "never
        migrated".
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.start_elsewhere(sid)
        fake.settle()
        self.assertEqual('VERIFY_RESIZE', fake.server(sid)['status'])
        error = self.assertRaises(exceptions.CommandError, self.watch, sid)
        self.assertIn('started by another project', str(error))
        self.assertNotIn('never been migrated', str(error))
