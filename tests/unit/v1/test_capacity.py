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

"""batch's capacity check: the command on the fake Nova and Placement."""

import io
import os
from unittest import mock

from osc_migrate_plus import model

from osc_migrate_plus.v1 import batch
from tests.unit import fakenova
from tests.unit import fakeplacement
from tests.unit.v1 import test_unkind_nova as base


class TestCapacity(base.UnkindNovaTestCase):

    def setUp(self):
        super().setUp()
        fake = self.cloud()
        self.placement = fakeplacement.FakePlacement(fake)
        self.sids = [fake.add_server('vm%d' % n) for n in range(3)]
        # compute2 and compute3 take one 2048 MB server each.
        for host in ('compute2', 'compute3'):
            self.placement.set_inventory(host, 'MEMORY_MB', total=2560,
                                         reserved=512)

    def run_batch(self, *args):
        stderr = io.StringIO()
        rc, rows = self._run(batch.BatchMigrate, args, stderr)
        return rc, {r['Server ID']: r for r in rows or []}, \
            stderr.getvalue()

    def nothing_changed(self):
        self.assertEqual(0, self.fake.count('POST', 'migrate'))
        self.assertEqual(0, self.fake.count('PUT', 'os-services'))
        for sid in self.sids:
            self.assertEqual([], self.fake.records(sid))

    def test_dry_run_that_does_not_fit_exits_1(self):
        rc, rows, err = self.run_batch('--source-host', 'compute1',
                                       '--dry-run')
        self.assertEqual(1, rc)
        messages = sorted(r['Message'] for r in rows.values())
        self.assertEqual(
            ['capacity: fits (needs VCPU 1, MEMORY_MB 2048, DISK_GB 20)'] * 2
            + ['capacity: no capacity: needs VCPU 1, MEMORY_MB 2048, '
               'DISK_GB 20; the most one candidate host has left: VCPU 16, '
               'MEMORY_MB 0, DISK_GB 980'], messages)
        self.assertEqual({'planned'}, {r['Result'] for r in rows.values()})
        last = err.strip().splitlines()[-1]
        self.assertIn(
            'capacity estimate from Placement: 3 planned server(s) need '
            'VCPU 3, MEMORY_MB 6144, DISK_GB 60; 2 candidate host(s) have '
            'VCPU 128, MEMORY_MB 4096, DISK_GB 2000 free, VCPU 126, '
            'MEMORY_MB 0, DISK_GB 1960 after the plan; 1 without room: vm',
            last)
        self.nothing_changed()
        # With room, the same dry run exits 0.
        self.placement.set_inventory('compute3', 'MEMORY_MB', total=8192)
        rc, rows, err = self.run_batch('--source-host', 'compute1',
                                       '--dry-run')
        self.assertEqual(0, rc)
        self.assertTrue(err.strip().endswith('all fit'), err)

    def test_dry_run_with_ignore_capacity_exits_0(self):
        rc, rows, err = self.run_batch('--source-host', 'compute1',
                                       '--dry-run', '--ignore-capacity')
        self.assertEqual(0, rc)
        self.assertIn('1 without room', err)

    def test_real_run_refused_before_changing_anything(self):
        rc, rows, err = self.run_batch('--source-host', 'compute1',
                                       '--disable-source', '--state-file',
                                       self.path)
        self.assertEqual(1, rc)
        self.nothing_changed()
        self.assertEqual('enabled',
                         self.fake.services['compute1']['status'])
        self.assertFalse(os.path.exists(self.path))  # no journal either
        self.assertEqual({'not-started'},
                         {r['Result'] for r in rows.values()})
        short = [r for r in rows.values()
                 if 'no capacity' in r['Message']]
        self.assertEqual(1, len(short))
        self.assertTrue(short[0]['Message'].startswith(
            'not started: the plan does not fit; capacity: no capacity: '))
        self.assertIn('not started: 1 of 3 planned servers would not fit on '
                      'the other compute hosts by the estimate from '
                      'Placement: vm', err)
        self.assertIn('Nothing was changed', err)
        self.assertIn('--ignore-capacity', err)

    def test_ignore_capacity_goes_and_nova_says_no_valid_host(self):
        rc, rows, err = self.run_batch('--source-host', 'compute1',
                                       '--confirm', '--ignore-capacity',
                                       '--state-file', self.path)
        self.assertEqual(1, rc)
        results = sorted(r['Result'] for r in rows.values())
        self.assertEqual(['confirmed', 'confirmed', 'failed'], results)
        [failed] = [r for r in rows.values() if r['Result'] == 'failed']
        self.assertIn('No valid host was found', failed['Message'])
        self.assertIn('going on all the same (--ignore-capacity)', err)
        hosts = sorted(self.fake.server(s)['OS-EXT-SRV-ATTR:host']
                       for s in self.sids)
        self.assertEqual(['compute1', 'compute2', 'compute3'], hosts)

    def test_fits_runs_as_before(self):
        self.placement.set_inventory('compute2', 'MEMORY_MB', total=65536)
        rc, rows, err = self.run_batch('--source-host', 'compute1',
                                       '--confirm', '--state-file',
                                       self.path)
        self.assertEqual(0, rc, err)
        self.assertEqual({'confirmed'}, {r['Result']
                                         for r in rows.values()})
        self.assertIn('all fit', err)

    def test_resume_does_not_check_again(self):
        """A resume continues a run that was let go: no new estimate."""
        self.placement.set_inventory('compute2', 'MEMORY_MB', total=65536)
        self.kill_when(lambda: self.fake.count('POST', 'migrate'))
        self.assertRaises(base.Kill, self.run_batch, '--source-host',
                          'compute1', '--confirm', '--state-file',
                          self.path)
        self.placement.set_inventory('compute2', 'MEMORY_MB', total=2560)
        sent = len(self.placement.requests)
        rc, rows, err = self.run_batch('--resume', self.path)
        # No inventory or usage read (the estimate's): only the end-of-run
        # host check reads the source's allocations.
        self.assertEqual([], [u for _, u in self.placement.requests[sent:]
                              if not u.endswith('/allocations')
                              and u != '/resource_providers'])
        self.assertNotIn('capacity estimate from Placement', err)
        rc, _, err = self.run_batch('--resume', self.path,
                                    '--ignore-capacity')
        self.assertEqual(2, rc)
        self.assertIn('--resume does not check capacity', err)

    def test_project_manager_is_not_checked_and_goes_on(self):
        """os-hypervisors and Placement are admin only by default."""
        self.fake.caller = fakenova.Caller('manager', 'p1')
        rc, rows, err = self.run_batch('vm0', '--dry-run')
        self.assertEqual(0, rc)
        [row] = rows.values()
        self.assertIn('capacity not checked: Nova refused to list the '
                      "compute hosts' resource providers", row['Message'])
        self.assertIn('the run goes on without the estimate', err)
        self.assertEqual([], self.placement.requests)

    def test_placement_refused_or_missing_goes_on(self):
        self.placement.fail_reads(403)
        rc, rows, err = self.run_batch('vm0', '--dry-run')
        self.assertEqual(0, rc)
        self.assertIn('capacity not checked: Placement refused to show '
                      'resource providers (HTTP 403', err)
        self.placement.in_catalog = False
        rc, rows, err = self.run_batch('vm0', '--confirm', '--state-file',
                                       self.path)
        self.assertEqual(0, rc, err)
        self.assertIn('capacity not checked: Placement is not in the '
                      'service catalog', err)
        self.assertEqual('confirmed', rows[self.sids[0]]['Result'])

    def test_placement_missing_at_attribute_access(self):
        """Older SDKs raise when the proxy is taken, not when it is used."""
        app = mock.Mock()
        type(app.client_manager.sdk_connection).placement = \
            mock.PropertyMock(side_effect=RuntimeError('no endpoint'))
        placement = batch.BatchMigrate(app, None)._placement()
        exc = self.assertRaises(model.PlacementUnavailable,
                                placement.provider, 'x')
        self.assertEqual('Placement is not in the service catalog: no '
                         'endpoint', str(exc))

    def test_scheduler_refuses_without_room(self):
        """The fake Nova's scheduler places only where there is room.

        Faithful to Nova, whose scheduler asks Placement: for a targeted
        migration too.
        """
        rc, rows, err = self.run_batch('vm0', '--host', 'compute2',
                                       '--ignore-capacity', '--confirm',
                                       '--state-file', self.path)
        self.assertEqual(0, rc, err)
        rc, rows, err = self.run_batch('vm1', '--host', 'compute2',
                                       '--confirm', '--state-file',
                                       self.path + '2')
        self.assertEqual(1, rc)
        self.assertIn('no capacity', rows[self.sids[1]]['Message'])
        rc, rows, err = self.run_batch('vm1', '--host', 'compute2',
                                       '--ignore-capacity', '--confirm',
                                       '--state-file', self.path + '3')
        self.assertEqual(1, rc)
        self.assertIn('No valid host was found',
                      rows[self.sids[1]]['Message'])


class TestNamedServersEverywhere(base.UnkindNovaTestCase):
    """Servers named one by one, on every host: no host is drained.

    Found by the reliability suite's load run (200 servers named from a
    file, over all five hosts): every host counted as a source, so none
    was a candidate and the run was refused for capacity.
    """

    def test_each_may_go_anywhere_but_its_own_host(self):
        fake = self.cloud()
        fakeplacement.FakePlacement(fake)
        sids = [fake.add_server('vm%d' % n, host='compute%d' % (n % 3 + 1))
                for n in range(6)]
        rc, rows = self.batch(*sids, '--dry-run')
        self.assertEqual(0, rc)
        for sid in sids:
            self.assertTrue(rows[sid]['Message'].startswith(
                'capacity: fits'), rows[sid]['Message'])

    def test_a_server_never_fits_on_its_own_host(self):
        fake = self.cloud(hosts=2)
        placement = fakeplacement.FakePlacement(fake)
        sid = fake.add_server('vm1')
        # Room on its own host only.
        placement.set_inventory('compute2', 'MEMORY_MB', total=1024)
        rc, rows = self.batch(sid, '--dry-run')
        self.assertEqual(1, rc)
        self.assertIn('capacity: no capacity', rows[sid]['Message'])
