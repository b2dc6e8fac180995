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

"""The host check on a fake Nova and a fake Placement that follows it."""

import os

import fixtures
import testtools

from osc_migrate_plus.engine import hostcheck
from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus import gateway as gw
from osc_migrate_plus import placement as pl
from tests.unit import fakenova
from tests.unit import fakeplacement

LEAK = '7f3c9a52-0000-4000-8000-00000000c0de'


class HostCheckTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.nova = fakenova.FakeNova(hosts=3)
        self.useFixture(self.nova.client_time())
        self.fake = fakeplacement.FakePlacement(self.nova)
        self.placement = pl.PlacementGateway(self.fake.proxy,
                                             sleep=lambda s: None)
        self.gateway = gw.NovaGateway(self.nova.proxy, sleep=lambda s: None)
        self.slept = []

    def node(self, host):
        return self.nova.services[host]['node_uuid']

    def check(self, notes=None, whole_host=True, placement=True,
              names=None):
        [report] = hostcheck.check(
            self.gateway, self.placement if placement else None,
            ['compute1'], notes or {}, whole_host, names,
            sleep=self.slept.append)
        return report

    def test_empty(self):
        self.nova.add_server('elsewhere', host='compute2')
        report = self.check()
        self.assertEqual(
            'compute1: empty (0 servers, 0 migrations, 0 allocations)',
            report.line())
        self.assertTrue(report.empty)
        self.assertFalse(report.fails(require_empty=True))
        self.assertEqual([], report.details())
        # Servers, migrations, hypervisors; the provider trees (one
        # listing) and the host's provider's allocations.
        self.assertEqual(2, len(self.fake.requests))

    def test_server_left_with_the_plans_reason(self):
        sid = self.nova.add_server('db-3', status='ERROR')
        report = self.check({sid: 'skipped: status ERROR cannot be '
                                  'migrated'})
        self.assertEqual(
            'compute1: NOT empty: 1 server (db-3: ERROR, skipped: status '
            'ERROR cannot be migrated)', report.line())
        self.assertTrue(report.fails(require_empty=False))
        # Its allocation is its own: explained, not leaked.
        self.assertEqual((1, []), (report.allocations, report.leaked))

    def test_server_arrived_during_the_run(self):
        planned = self.nova.add_server('web-1', status='SHUTOFF')
        self.nova.add_server('late')
        report = self.check({planned: 'failed: Nova said no'})
        self.assertEqual(
            'compute1: NOT empty: 2 servers (late: ACTIVE, arrived during '
            'the run (not in the plan); web-1: SHUTOFF, failed: Nova said '
            'no)', report.line())
        # A plan that did not take the whole host did not select it.
        report = self.check({planned: 'failed'}, whole_host=False)
        self.assertIn('late: ACTIVE, not selected', report.line())

    def test_leaked_allocation(self):
        self.fake.leak('compute1', LEAK, {'VCPU': 2, 'MEMORY_MB': 512})
        report = self.check()
        self.assertEqual('compute1: NOT empty: 1 leaked allocation '
                         '(consumer %s)' % LEAK, report.line())
        self.assertFalse(report.fails(require_empty=False))
        self.assertTrue(report.fails(require_empty=True))
        details = report.details()
        self.assertEqual(2, len(details))
        self.assertIn('consumer %s holds MEMORY_MB=512, VCPU=2 on resource '
                      'provider %s' % (LEAK, self.node('compute1')),
                      details[0])
        self.assertIn('nova-manage placement audit --resource_provider %s '
                      '--verbose (add --delete' % self.node('compute1'),
                      details[1])
        self.assertEqual([], self.slept)  # nothing Nova just ended

    def test_migration_awaiting_confirm_holds_the_source(self):
        """``finished``: on its destination, the source still held."""
        sid = self.nova.add_server('app')
        self.gateway.start_migration(sid, live=False)
        self.nova.settle()
        self.assertEqual('VERIFY_RESIZE', self.nova.server(sid)['status'])
        # Names from the plan: the server is on its destination now.
        report = self.check({sid: 'migrated'}, names={sid: 'app'})
        uuid = self.nova.records(sid)[0]['uuid']
        self.assertEqual([uuid], [m.uuid for m in report.leaving])
        self.assertEqual(
            'compute1: NOT empty: 1 migration still from it (app: '
            'finished, awaiting confirm or revert)', report.line())
        self.assertEqual((1, []), (report.allocations, report.leaked))
        self.assertFalse(report.fails(require_empty=False))
        self.assertTrue(report.fails(require_empty=True))
        # Confirmed: nothing left.
        self.nova.auto_confirm(sid)
        self.nova.settle()
        self.assertTrue(self.check({sid: 'migrated'}).empty)

    def test_migration_arriving(self):
        """A server on its way to the host: its allocation is explained."""
        sid = self.nova.add_server('incoming', host='compute2')
        self.nova.timing['cold_duration'] = 600
        self.gateway.start_migration(sid, live=False, host='compute1')
        self.nova.advance(5)
        report = self.check()
        self.assertEqual([sid], [m.server_id for m in report.arriving])
        # Not in the plan: named by its ID.
        self.assertIn('1 migration arriving (%s: migrating, from '
                      'compute2)' % sid, report.line())
        self.assertEqual([], report.leaked)
        self.assertTrue(report.fails(require_empty=False))

    def test_hosts_hidden_by_policy(self):
        """Records without hosts: Nova's host filter still chose them."""
        self.nova.hide_hosts = True
        ours = self.nova.add_server('ours')
        theirs = self.nova.add_server('theirs', host='compute2')
        self.gateway.start_migration(ours, live=False)
        self.nova.settle()
        self.nova.timing['cold_duration'] = 600
        self.gateway.start_migration(theirs, live=False, host='compute1')
        self.nova.advance(5)
        report = self.check({ours: 'migrated'})
        self.assertEqual([ours], [m.server_id for m in report.leaving])
        self.assertEqual([theirs], [m.server_id for m in report.arriving])
        self.assertIsNone(report.arriving[0].source)
        # Their allocations are explained, whichever way they go.
        self.assertEqual((2, []), (report.allocations, report.leaked))
        self.assertTrue(report.fails(require_empty=False))

    def test_placement_unavailable_still_checks_servers(self):
        self.fake.in_catalog = False
        report = self.check()
        self.assertEqual(
            'compute1: empty (0 servers, 0 migrations; allocations not '
            'checked: Placement is not in the service catalog: Could not '
            'find requested endpoint in Service Catalog.)', report.line())
        self.assertFalse(report.fails(require_empty=False))
        self.assertTrue(report.fails(require_empty=True))
        self.fake.in_catalog = True
        self.fake.fail_reads(403)
        sid = self.nova.add_server('db')
        report = self.check({sid: 'skipped: x'})
        self.assertIn('1 server (db: ACTIVE, skipped: x), allocations not '
                      'checked: Placement refused', report.line())
        report = self.check(placement=False)
        self.assertIn('allocations not checked: Placement is not available',
                      report.line())

    def test_nova_unreadable_is_not_checked_and_fails(self):
        self.nova.fail_reads('/os-migrations', status=403)
        report = self.check()
        self.assertTrue(report.line().startswith('compute1: NOT checked: '),
                        report.line())
        self.assertTrue(report.fails(require_empty=False))

    def test_leak_of_a_migration_nova_just_ended_is_looked_at_again(self):
        sid = self.nova.add_server('app')
        self.gateway.start_migration(sid, live=True)
        self.nova.settle()
        record = self.nova.records(sid)[0]
        self.assertEqual('completed', record['status'])
        self.fake.leak('compute1', record['uuid'])
        report = self.check(names={sid: 'app'})
        self.assertEqual([hostcheck.SETTLE_WAIT], self.slept)
        [leak] = report.leaked
        self.assertIn('it is migration %s of app, completed' % record['id'],
                      leak.known_as)
        self.assertIn(leak.known_as, report.details()[0])

    def test_long_lists_are_cut_in_the_line(self):
        for n in range(7):
            self.nova.add_server('vm%d' % n)
        report = self.check()
        self.assertIn('7 servers (', report.line())
        self.assertIn('; and 2 more)', report.line())
        self.assertEqual(7, len(report.to_journal()['servers']))

    def test_journal_record_is_kept_and_ignored_by_replay(self):
        sid = self.nova.add_server('db-3', status='ERROR')
        self.fake.leak('compute1', LEAK)
        report = self.check({sid: 'skipped: ERROR'})
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'j')
        journal = jrn.Journal.create(path, {'options': {}})
        journal.write({'type': 'plan', 'servers': []})
        journal.write(report.to_journal(require_empty=True))
        journal.close()
        state = jrn.replay(path)
        self.assertEqual({}, state.servers)
        with open(path) as f:
            import json
            record = json.loads(f.read().splitlines()[-1])
        self.assertEqual('host-check', record['type'])
        self.assertEqual(report.line(), record['line'])
        self.assertEqual([LEAK], [r['consumer'] for r in record['leaked']])
        self.assertEqual([sid], [s['id'] for s in record['servers']])
        self.assertTrue(record['fails'])
        self.assertFalse(record['empty'])
