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

"""batch --source-host ends with the host check: lines, journal, exit code.

The real command (``cmd.run``) on the fake Nova, with the fake Placement
that follows it as the user's connection's placement proxy.
"""

import io
import json
from unittest import mock

import fixtures

from osc_migrate_plus.engine import batch as engine_batch
from osc_migrate_plus import placement as pl
from osc_migrate_plus.v1 import batch
from osc_migrate_plus.v1 import batch_hostcheck
from tests.unit import fakeplacement
from tests.unit.v1 import test_unkind_nova as unkind

LEAK = '7f3c9a52-0000-4000-8000-00000000c0de'
EMPTY = 'compute1: empty (0 servers, 0 migrations, 0 allocations)'


class HostCheckCommandTest(unkind.UnkindNovaTestCase):

    def cloud(self, placement=True, **kwargs):
        fake = super().cloud(**kwargs)
        self.placement = fakeplacement.FakePlacement(fake)
        if placement:
            # The connection's placement proxy, as OSC's client manager
            # hands it (the unit tests' app is a Mock).
            gateway = pl.PlacementGateway(self.placement.proxy,
                                          sleep=lambda s: None)
            self.useFixture(fixtures.MockPatch(
                'osc_migrate_plus.v1.batch_hostcheck.placement_gateway',
                return_value=gateway))
        return fake

    def drain(self, *args):
        stderr = io.StringIO()
        rc, rows = self._run(batch.BatchMigrate, ('--source-host',
                                                  'compute1') + args, stderr)
        lines = [line.split(' ', 1)[1] for line in
                 stderr.getvalue().splitlines()]
        return rc, {row['Server ID']: row for row in rows or []}, lines

    def journal_records(self, kind):
        with open(self.path) as f:
            return [r for r in map(json.loads, f) if r['type'] == kind]

    def test_clean_drain_is_empty(self):
        fake = self.cloud()
        sids = [fake.add_server('vm%d' % n) for n in range(3)]
        fake.add_server('elsewhere', host='compute2')
        rc, rows, lines = self.drain('--confirm', '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertEqual(set(sids), set(rows))
        self.assertEqual(EMPTY, lines[-1])
        [record] = self.journal_records('host-check')
        self.assertEqual(('compute1', True, False, EMPTY),
                         (record['host'], record['empty'], record['fails'],
                          record['line']))

    def test_server_booted_onto_the_host_mid_run_fails_it(self):
        fake = self.cloud()
        sids = [fake.add_server('vm%d' % n) for n in range(2)]
        late = []

        def boot():
            if not late and self.journal_count('"event":"submitted"'):
                late.append(fake.add_server('late-arrival'))
        fake.sleep_hooks.append(boot)
        rc, rows, lines = self.drain('--confirm', '--state-file', self.path)
        self.assertTrue(late)
        for sid in sids:
            self.assertResult('confirmed', rows[sid])
        self.assertNotIn(late[0], rows)
        self.assertEqual(1, rc)
        self.assertEqual('compute1: NOT empty: 1 server (late-arrival: '
                         'ACTIVE, arrived during the run (not in the plan))',
                         lines[-1])
        [record] = self.journal_records('host-check')
        self.assertEqual([late[0]], [s['id'] for s in record['servers']])

    def test_skipped_server_left_with_its_reason(self):
        fake = self.cloud()
        fake.add_server('ok')
        fake.add_server('db-3', status='ERROR')
        rc, rows, lines = self.drain('--confirm', '--state-file', self.path)
        self.assertEqual(1, rc)
        self.assertRegex(lines[-1], r'^compute1: NOT empty: 1 server \(db-3: '
                                    r'ERROR, skipped: .+\)$')

    def test_leaked_allocation_fails_only_with_require_empty(self):
        fake = self.cloud()
        fake.add_server('vm0')
        self.placement.leak('compute1', LEAK)
        node = fake.services['compute1']['node_uuid']
        rc, rows, lines = self.drain('--confirm', '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertEqual('compute1: NOT empty: 1 leaked allocation '
                         '(consumer %s)' % LEAK, lines[-1])
        self.assertIn('nova-manage placement audit --resource_provider %s'
                      % node, lines[-2])
        self.assertIn('consumer %s holds' % LEAK, lines[-3])
        fake.add_server('vm1')
        rc, rows, lines = self.drain('--confirm', '--require-empty',
                                     '--state-file', self.path + '2')
        self.assertEqual(1, rc)
        for row in rows.values():
            self.assertResult('confirmed', row)

    def test_awaiting_confirm_fails_only_with_require_empty(self):
        fake = self.cloud()
        fake.add_server('vm0')
        rc, rows, lines = self.drain('--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertIn('1 migration still from it (vm0: finished, awaiting '
                      'confirm or revert)', lines[-1])
        fake.add_server('vm1')
        rc, rows, lines = self.drain('--require-empty', '--state-file',
                                     self.path + '2')
        self.assertEqual(1, rc)

    def test_dry_run_reports_the_host(self):
        fake = self.cloud()
        fake.add_server('elsewhere', host='compute2')
        rc, rows, lines = self.drain('--dry-run', '--require-empty')
        self.assertEqual((0, {}), (rc, rows))
        self.assertEqual(EMPTY, lines[-1])
        sid = fake.add_server('vm0')
        listed = fake.count('GET', '/servers/detail')
        rc, rows, lines = self.drain('--dry-run')
        self.assertEqual((0, [sid]), (rc, list(rows)))
        # The plan listed the host: the check does not list it again.
        self.assertEqual(1, fake.count('GET', '/servers/detail') - listed)
        # The host's line, then the plan's capacity line, last.
        self.assertEqual('compute1: NOT empty: 1 server (vm0: ACTIVE, '
                         'planned)', lines[-2])
        self.assertIn('capacity estimate from Placement', lines[-1])
        rc, rows, lines = self.drain('--dry-run', '--require-empty')
        self.assertEqual(1, rc)
        self.assertEqual([], fake.posts('migrate'))

    def test_placement_refused_still_reports_servers(self):
        fake = self.cloud()
        fake.add_server('vm0')
        self.placement.in_catalog = False
        rc, rows, lines = self.drain('--confirm', '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertEqual('compute1: empty (0 servers, 0 migrations; '
                         'allocations not checked: Placement is not in the '
                         'service catalog: Could not find requested endpoint '
                         'in Service Catalog.)', lines[-1])
        fake.add_server('vm1')
        rc, rows, lines = self.drain('--confirm', '--require-empty',
                                     '--state-file', self.path + '2')
        self.assertEqual(1, rc)

    def test_an_app_without_placement_does_not_lose_the_run(self):
        """The app is a Mock: its placement proxy answers nonsense."""
        fake = self.cloud(placement=False)
        nonsense = mock.Mock()
        nonsense.request.return_value.status_code = 200
        nonsense.request.return_value.json.side_effect = ValueError('html')
        self.useFixture(fixtures.MockPatch(
            'osc_migrate_plus.v1.batch_hostcheck.placement_gateway',
            return_value=pl.PlacementGateway(nonsense)))
        sid = fake.add_server('vm0')
        rc, rows, lines = self.drain('--confirm', '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertResult('confirmed', rows[sid])
        self.assertIn('allocations not checked: Placement answered what is '
                      'not JSON', lines[-1])

    def test_placement_gateway_is_the_connections(self):
        fake = self.cloud(placement=False)
        app = mock.Mock()
        app.client_manager.sdk_connection.placement = \
            fakeplacement.FakePlacement(fake).proxy
        gateway = batch_hostcheck.placement_gateway(app)
        self.assertEqual({}, gateway.provider_allocations(
            fake.services['compute1']['node_uuid']))
        app.client_manager = None
        self.assertIsNone(batch_hostcheck.placement_gateway(app))

    def test_resume_keeps_the_journal_readable_and_checks_again(self):
        fake = self.cloud()
        fake.add_server('vm0')
        rc, rows, lines = self.drain('--confirm', '--state-file', self.path)
        self.assertEqual(0, rc)
        late = fake.add_server('late')
        stderr = io.StringIO()
        rc, rows = self._run(batch.BatchMigrate, ('--resume', self.path,
                                                  '--require-empty'), stderr)
        self.assertEqual(1, rc)
        self.assertNotIn(late, {r['Server ID'] for r in rows})
        self.assertIn('1 server (late: ACTIVE, arrived during the run',
                      stderr.getvalue().splitlines()[-1])
        self.assertEqual(2, len(self.journal_records('host-check')))

    def test_interrupted_stays_130_and_still_checks(self):
        fake = self.cloud()
        for n in range(3):
            fake.add_server('vm%d' % n)
        runners = []
        real = engine_batch.Runner

        def capture(*args, **kwargs):
            runners.append(real(*args, **kwargs))
            return runners[-1]
        self.useFixture(fixtures.MonkeyPatch(
            'osc_migrate_plus.engine.batch.Runner', capture))

        def ctrl_c():
            if runners and self.journal_count('"event":"submitted"'):
                runners[0].stop_requested = True  # the SIGINT handler
        fake.sleep_hooks.append(ctrl_c)
        rc, rows, lines = self.drain('--confirm', '--max-parallel', '1',
                                     '--state-file', self.path)
        self.assertEqual(130, rc)
        self.assertIn('interrupted: resume with', lines[-1])
        # vm0 in flight, still on the host; the others never started.
        last = lines[-2]
        self.assertTrue(last.startswith('compute1: NOT empty: 3 servers ('),
                        last)
        self.assertEqual(1, last.count(': RESIZE, interrupted: the '
                                       'migration goes on in Nova'), last)
        self.assertEqual(2, last.count(': ACTIVE, not-started: interrupted '
                                       'before submission'), last)
        self.assertRegex(last, r', 1 migration still from it \(vm\d: '
                               r'migrating\)$')

    def test_several_sources_one_moved_onto_another(self):
        """Without --disable-source Nova may pick a source as destination."""
        fake = self.cloud(hosts=3)
        a = fake.add_server('a', host='compute1')
        b = fake.add_server('b', host='compute2')
        stderr = io.StringIO()
        rc, rows = self._run(batch.BatchMigrate, (
            '--source-host', 'compute1', '--source-host', 'compute2',
            '--confirm', '--max-parallel', '1', '--state-file', self.path),
            stderr)
        rows = {row['Server ID']: row for row in rows}
        self.assertResult('confirmed', rows[a])
        self.assertResult('confirmed', rows[b])
        hosts = {sid: fake._servers[sid]['host'] for sid in (a, b)}
        landed = [sid for sid, h in hosts.items()
                  if h in ('compute1', 'compute2')]
        self.assertTrue(landed, hosts)  # the fake's scheduler rotates
        self.assertEqual(1, rc)
        said = stderr.getvalue()
        name = 'a' if landed[0] == a else 'b'
        source = 'compute1' if name == 'a' else 'compute2'
        self.assertIn('%s: NOT empty: 1 server (%s: ACTIVE, confirmed '
                      '(moved from %s))' % (hosts[landed[0]], name, source),
                      said)
        self.assertEqual(2, len(self.journal_records('host-check')))

    def test_require_empty_needs_a_source_host(self):
        self.cloud().add_server('vm0')
        stderr = io.StringIO()
        rc, _ = self._run(batch.BatchMigrate, ('vm0', '--require-empty'),
                          stderr)
        self.assertEqual(2, rc)
        self.assertIn('--require-empty needs --source-host or --aggregate',
                      stderr.getvalue())
        rc, _ = self._run(batch.BatchMigrate, ('vm0', '--state-file',
                                               self.path), stderr)
        rc, _ = self._run(batch.BatchMigrate, ('--resume', self.path,
                                               '--require-empty'), stderr)
        self.assertEqual(2, rc)
        self.assertIn('this journal has none', stderr.getvalue())
