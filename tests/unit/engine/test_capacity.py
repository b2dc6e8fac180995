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

"""The capacity estimate: pure, and its reads on the fakes."""

import dataclasses

import testtools

from osc_migrate_plus.engine import capacity as cap
from osc_migrate_plus.engine import plan
from osc_migrate_plus import gateway as gw
from osc_migrate_plus import placement as pl
from tests.unit import fakenova
from tests.unit import fakeplacement

F = cap.Fit


def need(sid, **resources):
    return cap.Need(sid, 'n-' + sid, dict(resources))


class TestEstimate(testtools.TestCase):

    def test_fits_and_does_not(self):
        hosts = [cap.Host('c2', {'VCPU': 4, 'MEMORY_MB': 4096})]
        e = cap.estimate([need('a', VCPU=2, MEMORY_MB=2048),
                          need('b', VCPU=2, MEMORY_MB=2048),
                          need('c', VCPU=1, MEMORY_MB=1)], hosts)
        self.assertEqual([F.FITS, F.FITS, F.NO_CAPACITY],
                         [v.fit for v in e.verdicts.values()])
        self.assertEqual(['c'], e.without_room)
        self.assertEqual('capacity: fits (needs VCPU 2, MEMORY_MB 2048)',
                         e.message('a'))
        self.assertEqual(
            'capacity: no capacity: needs VCPU 1, MEMORY_MB 1; the most '
            'one candidate host has left: VCPU 0, MEMORY_MB 0',
            e.message('c'))
        self.assertEqual(
            'capacity estimate from Placement: 3 planned server(s) need '
            'VCPU 5, MEMORY_MB 4097; 1 candidate host(s) have VCPU 4, '
            'MEMORY_MB 4096 free, VCPU 0, MEMORY_MB 0 after the plan; '
            '1 without room: n-c', e.summary)

    def test_largest_first_then_first_fit(self):
        """Largest first places both.

        In the plan's order the small server would take the room the large
        one needs.
        """
        hosts = [cap.Host('c2', {'MEMORY_MB': 1000}),
                 cap.Host('c3', {'MEMORY_MB': 3000})]
        e = cap.estimate([need('small', MEMORY_MB=1000),
                          need('large', MEMORY_MB=3000)], hosts)
        self.assertEqual([], e.without_room)
        self.assertTrue(e.summary.endswith('all fit'), e.summary)
        # The order of the verdicts is the plan's.
        self.assertEqual(['small', 'large'], list(e.verdicts))

    def test_largest_by_its_scarcest_class(self):
        """Largest: the biggest share of the candidates' free of any class.

        Here DISK_GB, scarce, not the biggest number (MEMORY_MB).
        """
        hosts = [cap.Host('c2', {'MEMORY_MB': 100000, 'DISK_GB': 10}),
                 cap.Host('c3', {'MEMORY_MB': 100000, 'DISK_GB': 30})]
        e = cap.estimate([need('ram', MEMORY_MB=90000, DISK_GB=10),
                          need('disk', MEMORY_MB=10, DISK_GB=30)], hosts)
        self.assertEqual([], e.without_room)

    def test_every_class_must_fit_on_one_host(self):
        hosts = [cap.Host('c2', {'VCPU': 8, 'MEMORY_MB': 100}),
                 cap.Host('c3', {'VCPU': 1, 'MEMORY_MB': 8000})]
        e = cap.estimate([need('a', VCPU=2, MEMORY_MB=4000)], hosts)
        self.assertEqual(['a'], e.without_room)
        self.assertIn('the most one candidate host has left: VCPU 8, '
                      'MEMORY_MB 8000', e.message('a'))

    def test_other_classes_count_and_a_host_without_them_does_not_fit(self):
        hosts = [cap.Host('c2', {'VCPU': 8}),
                 cap.Host('c3', {'VCPU': 8, 'VGPU': 1})]
        e = cap.estimate([need('a', VCPU=1, VGPU=1),
                          need('b', VCPU=1, VGPU=1)], hosts)
        self.assertEqual([F.FITS, F.NO_CAPACITY],
                         [v.fit for v in e.verdicts.values()])
        self.assertIn('needs VCPU 1, VGPU 1', e.message('b'))

    def test_max_unit_caps_one_server(self):
        hosts = [cap.Host('c2', {'VCPU': 64}, max_unit={'VCPU': 16})]
        e = cap.estimate([need('a', VCPU=32)], hosts)
        self.assertEqual(['a'], e.without_room)
        self.assertIn('has left: VCPU 16', e.message('a'))

    def test_no_candidate_and_unknown_needs(self):
        e = cap.estimate([need('a', VCPU=1),
                          cap.Need('b', 'n-b', None, 'its host is hidden')],
                         [], 'no candidate host: why')
        self.assertEqual('capacity: no capacity: needs VCPU 1; no '
                         'candidate host: why', e.message('a'))
        self.assertEqual('capacity: unknown: its host is hidden',
                         e.message('b'))
        self.assertIn('1 without room: n-a; 1 not estimated: n-b',
                      e.summary)

    def test_not_checked(self):
        e = cap.not_checked('Placement answered HTTP 403: no')
        self.assertFalse(e.checked)
        self.assertEqual([], e.without_room)
        self.assertEqual('capacity not checked: Placement answered HTTP 403:'
                         ' no', e.message('any'))
        self.assertIn('the run goes on', e.summary)


class TestCheck(testtools.TestCase):
    """The reads, on the fake Nova and the fake Placement."""

    def setUp(self):
        super().setUp()
        self.nova = fakenova.FakeNova(hosts=4)
        self.useFixture(self.nova.client_time())
        self.fake = fakeplacement.FakePlacement(self.nova)
        self.placement = pl.PlacementGateway(self.fake.proxy,
                                             sleep=lambda s: None)
        self.gateway = gw.NovaGateway(self.nova.proxy, sleep=lambda s: None)

    def items(self, *sids, verdict=plan.PLANNED):
        return [plan.PlanItem(self.gateway.get_server(sid), None, verdict)
                for sid in sids]

    def check(self, items, target=None):
        return cap.check(self.gateway, self.placement, items, target)

    def test_ratios_reserved_and_usage(self):
        """Free = (total - reserved) x ratio - used, per class."""
        a = self.nova.add_server('a', host='compute1')
        self.fake.set_flavor(a, VCPU=4, MEMORY_MB=4000)
        b = self.nova.add_server('b', host='compute2')  # uses compute2
        self.fake.set_flavor(b, VCPU=1, MEMORY_MB=1000)
        for host in ('compute2', 'compute3', 'compute4'):
            self.fake.set_inventory(host, 'VCPU', total=4, reserved=1,
                                    allocation_ratio=1.0)
            self.fake.set_inventory(host, 'MEMORY_MB', total=4096,
                                    reserved=96)
        e = self.check(self.items(a))
        self.assertEqual([a], e.without_room)
        # (4 - 1) x 1.0 VCPU; (4096 - 96) MEMORY_MB on compute3 and 4.
        self.assertIn('needs VCPU 4, MEMORY_MB 4000; the most one candidate '
                      'host has left: VCPU 3, MEMORY_MB 4000', e.message(a))
        self.fake.set_inventory('compute2', 'VCPU', allocation_ratio=2.0)
        # (4 - 1) x 2.0 - 1 VCPU, but (4096 - 96) - 1000 MEMORY_MB.
        self.assertIn('has left: VCPU 4, MEMORY_MB 4000',
                      self.check(self.items(a)).message(a))
        self.fake.set_inventory('compute3', 'VCPU', allocation_ratio=2.0)
        self.assertEqual([], self.check(self.items(a)).without_room)
        self.fake.set_inventory('compute3', 'MEMORY_MB', reserved=97)
        self.assertEqual([a], self.check(self.items(a)).without_room)

    def test_sources_disabled_down_hosts_excluded(self):
        a = self.nova.add_server('a', host='compute1')
        b = self.nova.add_server('b', host='compute2')
        # Room only on the sources and on hosts that cannot take servers.
        self.fake.set_inventory('compute4', 'MEMORY_MB', total=0)
        self.nova.services['compute3']['status'] = 'disabled'
        e = self.check(self.items(a, b))
        self.assertEqual([a, b], e.without_room)
        # 64 VCPU free, but at most max_unit (its total, 16) per server.
        self.assertIn('the most one candidate host has left: VCPU 16, '
                      'MEMORY_MB 0, DISK_GB 1000', e.message(a))
        self.nova.services['compute3']['status'] = 'enabled'
        self.nova.services['compute3']['state'] = 'down'
        self.assertEqual([a, b], self.check(self.items(a, b)).without_room)
        self.nova.services['compute3']['state'] = 'up'
        self.assertEqual([], self.check(self.items(a, b)).without_room)

    def test_target_host_only(self):
        a = self.nova.add_server('a', host='compute1')
        self.fake.set_inventory('compute2', 'MEMORY_MB', total=0)
        self.assertEqual([a], self.check(self.items(a), 'compute2')
                         .without_room)
        self.assertEqual([], self.check(self.items(a), 'compute3')
                         .without_room)
        e = self.check(self.items(a), 'compute1')  # a source
        self.assertIn('no candidate host: the target compute1 is not an '
                      'enabled, up compute host other than a source',
                      e.message(a))

    def test_only_planned_servers_count(self):
        a = self.nova.add_server('a', host='compute1')
        b = self.nova.add_server('b', host='compute1')
        e = self.check(self.items(a) + self.items(b, verdict=plan.SKIPPED))
        self.assertEqual([a], list(e.verdicts))
        self.assertIn('1 planned server(s)', e.summary)
        sent = len(self.fake.requests)
        # Nothing planned: nothing to check, nothing asked.
        self.assertEqual('', self.check(self.items(
            b, verdict=plan.SKIPPED)).summary)
        self.assertEqual(sent, len(self.fake.requests))

    def test_requests_per_host_not_per_server(self):
        """The same requests for 3 servers or 30.

        One allocations read per source provider, two reads per candidate,
        one hypervisor list.
        """
        def cost(n):
            sids = [self.nova.add_server('s%d' % i, host='compute1')
                    for i in range(n)]
            before = (len(self.fake.requests),
                      self.nova.count('GET', 'os-hypervisors'))
            e = self.check(self.items(*sids))
            self.assertEqual(n, len(e.verdicts))
            return (len(self.fake.requests) - before[0],
                    self.nova.count('GET', 'os-hypervisors') - before[1])
        # The provider trees (one listing, kept by the gateway), the
        # source's allocations, and two reads per candidate (compute2,
        # compute3, compute4).
        self.assertEqual((1 + 1 + 2 * 3, 1), cost(3))
        self.assertEqual((1 + 2 * 3, 1), cost(30))

    def test_allocation_not_found_is_unknown(self):
        a = self.nova.add_server('a', host='compute1')
        # Placement lost track of it (or it is held by another consumer).
        self.fake.allocations = lambda host: {}
        e = self.check(self.items(a))
        self.assertEqual(cap.Fit.UNKNOWN, e.verdicts[a].fit)
        self.assertIn('Placement holds no allocation of it on its host '
                      'compute1', e.message(a))

    def test_hidden_host_is_unknown(self):
        a = self.nova.add_server('a', host='compute1')
        server = self.gateway.get_server(a)
        hidden = dataclasses.replace(server, host=None, host_hidden=True)
        e = self.check([plan.PlanItem(hidden, None, plan.PLANNED)])
        self.assertEqual('capacity: unknown: its host is hidden by policy',
                         e.message(a))

    def test_placement_refused_or_missing_is_not_checked(self):
        a = self.nova.add_server('a', host='compute1')
        self.fake.in_catalog = False
        e = self.check(self.items(a))
        self.assertFalse(e.checked)
        self.assertIn('capacity not checked: Placement is not in the '
                      'service catalog', e.summary)
        self.fake.in_catalog = True
        self.fake.fail_reads(403)
        e = self.check(self.items(a))
        self.assertIn('HTTP 403', e.message(a))
        self.assertEqual([], e.without_room)

    def test_hypervisors_refused_is_not_checked(self):
        a = self.nova.add_server('a', host='compute1')
        items = self.items(a)
        self.nova.caller = fakenova.Caller('member', 'p1')
        e = self.check(items)
        self.assertFalse(e.checked)
        self.assertIn("Nova refused to list the compute hosts' resource "
                      "providers", e.reason)
        self.assertEqual([], self.fake.requests)  # Placement not asked
