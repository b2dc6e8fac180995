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

"""batch's capacity estimate through the real CLI, real Placement.

The harness makes compute2 and compute3 small (their driver reports less
memory, and the resource tracker puts it in Placement) so that each takes
one more server: three servers of compute1 do not all fit.
"""

import json

from osc_migrate_plus import gateway as gw
from osc_migrate_plus import placement as pl
from tests.functional import test_batch

BATCH = test_batch.BATCH


class TestCapacity(test_batch.BatchTestCase):

    def setUp(self):
        super().setUp()
        # The next class's cloud is its own, but leave this one whole.
        self.addCleanup(self.cloud.reset)

    def make_room(self, hosts, servers):
        """Each of ``hosts`` has room for ``servers`` more (by memory)."""
        conn = self.cloud.connection()
        nodes = {h.host: h for h in
                 gw.NovaGateway(conn.compute).hypervisors()}
        placement = pl.PlacementGateway(conn.placement)
        ram = self.openstack_json('flavor', 'show',
                                  self.cloud.flavor_id)['ram']
        for host in hosts:
            provider = placement.provider(nodes[host].uuid)
            inv = provider.inventories['MEMORY_MB']
            used = provider.usages.get('MEMORY_MB', 0)
            total = inv.reserved + int((used + servers * ram)
                                       / inv.allocation_ratio)
            self.cloud.set_resources(host, memory_mb=total)
            free = placement.provider(nodes[host].uuid).free()
            self.assertEqual(servers * ram, free['MEMORY_MB'], host)

    def nothing_moved(self, ids):
        truth = self.cloud.truth()
        for sid in ids:
            self.assertEqual('compute1', truth[sid]['host'])
            self.assertEqual([], truth[sid]['migrations'])

    def test_dry_run_that_does_not_fit(self):
        ids = [s['id'] for s in self.seed('compute1', 3)]
        self.make_room(['compute2', 'compute3'], 1)
        result = self.openstack(*(BATCH + tuple(ids) + (
            '--source-host', 'compute1', '--dry-run', '-f', 'json')),
            expect_rc=1)
        rows = {r['Server ID']: r for r in json.loads(result.stdout)}
        self.assertEqual(set(ids), set(rows))
        self.assertEqual({'planned'}, {r['Result'] for r in rows.values()})
        messages = sorted(r['Message'] for r in rows.values())
        self.assertEqual(2, len([m for m in messages
                                 if m.startswith('capacity: fits (needs ')]),
                         messages)
        [short] = [m for m in messages if 'no capacity' in m]
        self.assertRegex(short, r'^capacity: no capacity: needs VCPU 1, '
                                r'MEMORY_MB \d+, DISK_GB \d+; the most one '
                                r'candidate host has left: VCPU \d+, '
                                r'MEMORY_MB 0, DISK_GB \d+$')
        last = result.stderr.strip().splitlines()[-1]
        self.assertIn('capacity estimate from Placement: 3 planned '
                      'server(s) need VCPU 3, MEMORY_MB ', last)
        self.assertIn('2 candidate host(s) have', last)
        self.assertRegex(last, r'; 1 without room: b-\w+-\d$')
        self.nothing_moved(ids)
        # Room again (the harness's sizes back): the same dry run exits 0.
        self.cloud.reset()
        result = self.openstack(*(BATCH + tuple(ids) + (
            '--dry-run', '-f', 'json')))
        self.assertTrue(result.stderr.strip().endswith('all fit'),
                        result.stderr)

    def test_refused_then_ignore_capacity(self):
        ids = [s['id'] for s in self.seed('compute1', 3)]
        self.make_room(['compute2', 'compute3'], 1)
        rows, result = self.batch(*ids, '--disable-source', '--confirm',
                                  '--state-file', self.journal(),
                                  expect_rc=1)
        self.assertEqual({'not-started'},
                         {r['Result'] for r in rows.values()})
        self.assertEqual(1, len([r for r in rows.values()
                                 if 'no capacity' in r['Message']]))
        self.assertIn('not started: 1 of 3 planned servers would not fit',
                      result.stderr)
        self.assertIn('Nothing was changed', result.stderr)
        self.assertIn('--ignore-capacity', result.stderr)
        self.nothing_moved(ids)
        [service] = self.openstack_json('compute', 'service', 'list',
                                        '--service', 'nova-compute',
                                        '--host', 'compute1')
        self.assertEqual('enabled', service['Status'])

        rows, result = self.batch(*ids, '--confirm', '--ignore-capacity',
                                  '--state-file', self.journal(),
                                  expect_rc=1)
        self.assertIn('going on all the same (--ignore-capacity)',
                      result.stderr)
        self.assertEqual(['confirmed', 'confirmed', 'failed'],
                         sorted(r['Result'] for r in rows.values()))
        [failed] = [r for r in rows.values() if r['Result'] == 'failed']
        self.assertIn('No valid host was found', failed['Message'])
        truth = self.cloud.truth()
        self.assertEqual(['compute1', 'compute2', 'compute3'],
                         sorted(truth[sid]['host'] for sid in ids))
