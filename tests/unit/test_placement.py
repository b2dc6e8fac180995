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

"""The Placement gateway on the fake Placement, and hypervisors on Nova."""

import testtools

from osc_migrate_plus import gateway as gw
from osc_migrate_plus import model
from osc_migrate_plus import placement as pl
from tests.unit import fakenova
from tests.unit import fakeplacement


class PlacementGatewayTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.nova = fakenova.FakeNova(hosts=3)
        self.useFixture(self.nova.client_time())
        self.fake = fakeplacement.FakePlacement(self.nova)
        self.placement = pl.PlacementGateway(self.fake.proxy,
                                             sleep=lambda s: None)
        self.gateway = gw.NovaGateway(self.nova.proxy, sleep=lambda s: None)

    def node(self, host):
        return self.nova.services[host]['node_uuid']

    def test_hypervisors_name_each_hosts_provider(self):
        self.nova.services['compute2']['status'] = 'disabled'
        self.nova.services['compute3']['state'] = 'down'
        found = {h.host: h for h in self.gateway.hypervisors()}
        self.assertEqual(['compute1', 'compute2', 'compute3'], sorted(found))
        self.assertEqual(self.node('compute1'), found['compute1'].uuid)
        self.assertTrue(found['compute1'].enabled and found['compute1'].up)
        self.assertFalse(found['compute2'].enabled)
        self.assertFalse(found['compute3'].up)

    def test_provider_capacity_from_inventory_and_usage(self):
        self.nova.add_server('a', host='compute1')
        self.nova.add_server('b', host='compute1')
        provider = self.placement.provider(self.node('compute1'))
        # (16 - 0) x 4.0 - 2 used.
        self.assertEqual(62, provider.free()['VCPU'])
        # (65536 - 512) x 1.0 - 2 x 2048.
        self.assertEqual(65024 - 4096, provider.free()['MEMORY_MB'])
        # The provider trees (one listing), inventories, usages.
        self.assertEqual(3, len(self.fake.requests))

    def test_allocations_follow_a_migration(self):
        sid = self.nova.add_server('a', host='compute1')
        self.fake.leak('compute1', 'c0ffee', {'VCPU': 2})
        held = self.placement.provider_allocations(self.node('compute1'))
        self.assertEqual({sid: fakeplacement.FLAVOR, 'c0ffee': {'VCPU': 2}},
                         held)
        self.gateway.start_migration(sid, live=False)
        self.nova.advance(2.0)
        record = self.nova.records(sid)[0]
        held = self.placement.provider_allocations(self.node('compute1'))
        self.assertIn(record['uuid'], held)
        self.assertNotIn(sid, held)

    def test_missing_provider_is_none(self):
        self.assertIsNone(self.placement.provider('not-a-provider'))
        self.assertEqual({}, self.placement.provider_allocations('nope'))

    def test_policy_refusal_is_unavailable_with_the_reason(self):
        self.nova.caller = fakenova.Caller('member', 'p1')
        exc = self.assertRaises(model.PlacementUnavailable,
                                self.placement.provider,
                                self.node('compute1'))
        self.assertIn('HTTP 403', str(exc))
        self.assertIn('admins only', str(exc))
        self.assertEqual(1, len(self.fake.requests))  # never retried

    def test_not_in_catalog(self):
        self.fake.in_catalog = False
        exc = self.assertRaises(model.PlacementUnavailable,
                                self.placement.provider_allocations, 'x')
        self.assertIn('not in the service catalog', str(exc))

    def test_transient_errors_retried_then_unavailable(self):
        self.fake.fail_reads(503, 502)
        provider = self.placement.provider(self.node('compute1'))
        self.assertIn('VCPU', provider.inventories)
        self.fake.fail_reads(503, 503, 503, 503)
        self.assertRaises(model.PlacementUnavailable,
                          self.placement.provider, self.node('compute1'))
