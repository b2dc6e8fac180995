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

"""One batch over several hosts: repeated --source-host, --aggregate."""

import uuid

from tests.functional import test_batch


class TestSeveralHosts(test_batch.BatchTestCase):
    COMPUTES = 4

    def enable_again(self, *hosts):
        for host in hosts:
            self.addCleanup(self.openstack, 'compute', 'service', 'set',
                            '--enable', host, 'nova-compute')

    def test_two_source_hosts_drained_by_one_batch(self):
        on1 = self.seed('compute1', 2)
        on2 = self.seed('compute2', 2)
        [other] = self.seed('compute3', 1)
        self.enable_again('compute1', 'compute2')
        # Whatever earlier tests of this cloud left on the two hosts is
        # drained too: what was there before the batch is what it takes.
        moved = [s['ID'] for host in ('compute1', 'compute2')
                 for s in self.openstack_json('server', 'list',
                                              '--all-projects', '--host',
                                              host)]
        self.assertLessEqual({s['id'] for s in on1 + on2}, set(moved))
        rows, result = self.batch('--source-host', 'compute1',
                                  '--source-host', 'compute2', '--confirm',
                                  '--disable-source', '--interval', '1',
                                  '--state-file', self.journal())
        self.assertEqual(sorted(moved), sorted(rows))
        for sid in moved:
            self.assertEqual('confirmed', rows[sid]['Result'],
                             rows[sid]['Message'])
            # Neither source took the other's servers (both disabled).
            self.assertIn(self.server_view(sid)['host'],
                          ('compute3', 'compute4'))
        self.assertEqual('compute3', self.server_view(other['id'])['host'])
        self.assertEqual([], self.records(other['id']))
        self.assertIn('disabled nova-compute on compute1', result.stderr)
        self.assertIn('disabled nova-compute on compute2', result.stderr)

    def test_aggregate_selects_its_hosts_servers(self):
        name = 'rack-%s' % uuid.uuid4().hex[:6]
        self.openstack('aggregate', 'create', name)
        self.addCleanup(self.openstack, 'aggregate', 'delete', name)
        self.openstack('aggregate', 'add', 'host', name, 'compute4')
        self.addCleanup(self.openstack, 'aggregate', 'remove', 'host', name,
                        'compute4')
        [inside] = self.seed('compute4', 1)
        [outside] = self.seed('compute1', 1)
        rows, _ = self.batch('--aggregate', name, '--dry-run')
        self.assertEqual([inside['id']], list(rows))
        self.assertEqual('planned', rows[inside['id']]['Result'])
        rows, _ = self.batch('--aggregate', name, '--confirm',
                             '--interval', '1', '--state-file',
                             self.journal())
        self.assertEqual('confirmed', rows[inside['id']]['Result'])
        self.assertNotEqual('compute4', self.server_view(inside['id'])['host'])
        self.assertEqual([], self.records(outside['id']))
        result = self.openstack('server', 'migrate', 'batch', '--aggregate',
                                'no-such-aggregate', expect_rc=1)
        self.assertIn('--aggregate no-such-aggregate: no such host '
                      'aggregate', result.stderr)
