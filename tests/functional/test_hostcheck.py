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

"""The host check that ends a drain: the real CLI, real Nova and Placement."""

import json
import os
import subprocess
import tempfile
import time
import uuid

from testtools import content

from tests.functional import base

BATCH = ('server', 'migrate', 'batch')
EMPTY = 'compute1: empty (0 servers, 0 migrations, 0 allocations)'


def _lines(stderr):
    """stderr without the timestamps."""
    return [line.split(' ', 1)[-1] for line in stderr.splitlines()]


class TestHostCheck(base.MiniCloudTestCase):

    def setUp(self):
        super().setUp()
        self.state = tempfile.mkdtemp(prefix='hostcheck-')
        self.addCleanup(lambda: subprocess.run(['rm', '-rf', self.state]))

    def journal(self):
        return os.path.join(self.state, '%s.jsonl' % uuid.uuid4().hex[:8])

    def seed(self, count, prefix='hc'):
        prefix = '%s-%s' % (prefix, uuid.uuid4().hex[:6])
        return self.cloud.seed_servers('compute1', count, prefix=prefix)

    def drain(self, *args, expect_rc=0):
        result = self.openstack(*(BATCH + ('--source-host', 'compute1')
                                  + args + ('-f', 'json')),
                                expect_rc=expect_rc)
        rows = {r['Server ID']: r for r in json.loads(result.stdout)}
        return rows, _lines(result.stderr)

    def host_checks(self, path):
        with open(path) as f:
            return [r for r in map(json.loads, f)
                    if r['type'] == 'host-check']

    def provider(self, host):
        from osc_migrate_plus import gateway as gw

        conn = self.cloud.connection()
        [node] = [h for h in gw.NovaGateway(conn.compute).hypervisors()
                  if h.host == host]
        return node.uuid

    def delete_servers(self, ids):
        compute = self.cloud.connection().compute
        for sid in ids:
            compute.delete('/servers/%s' % sid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            left = [sid for sid in ids if compute.get(
                '/servers/%s' % sid).status_code != 404]
            if not left:
                return
            time.sleep(0.5)

    # -- the tests ---------------------------------------------------------
    def test_clean_drain_is_empty_and_a_dry_run_says_so(self):
        seeded = self.seed(2)
        path = self.journal()
        rows, lines = self.drain('--confirm', '--interval', '1',
                                 '--state-file', path)
        self.assertEqual(sorted(s['id'] for s in seeded), sorted(rows))
        self.assertEqual(EMPTY, lines[-1])
        [record] = self.host_checks(path)
        self.assertEqual((True, False, [], 0),
                         (record['empty'], record['fails'],
                          record['servers'], record['allocations']))
        self.assertEqual([self.provider('compute1')], record['providers'])
        # The check alone, on the drained host: nothing migrates.
        rows, lines = self.drain('--dry-run', '--require-empty')
        self.assertEqual({}, rows)
        self.assertEqual(EMPTY, lines[-1])

    def test_server_booted_onto_the_host_mid_run(self):
        """No --disable-source: the scheduler may place a server there."""
        seeded = self.seed(2)
        self.cloud.set_delay(6)
        path = self.journal()
        cmd = self.cloud.cli() + list(
            BATCH + ('--source-host', 'compute1', '--confirm',
                     '--max-parallel', '1', '--interval', '1',
                     '--state-file', path, '-f', 'json'))
        batch = subprocess.Popen(cmd, env=self.cloud.cli_env(),
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True,
                                 stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not (os.path.exists(path) and '"event":"submitted"' in
                       open(path).read()):
                self.assertLess(time.monotonic(), deadline)
                self.assertIsNone(batch.poll(), 'the batch ended first')
                time.sleep(0.2)
            [late] = self.seed(1, prefix='late')
            self.addCleanup(self.delete_servers, [late['id']])
            self.assertIsNone(batch.poll(),
                              'the batch ended before the boot: no proof')
            out, err = batch.communicate(timeout=300)
        finally:
            if batch.poll() is None:
                batch.kill()
                batch.communicate()
        self.addDetail('batch-stderr', content.text_content(err))
        self.assertEqual(1, batch.returncode)
        rows = {r['Server ID']: r for r in json.loads(out)}
        self.assertEqual(sorted(s['id'] for s in seeded), sorted(rows))
        for row in rows.values():
            self.assertEqual('confirmed', row['Result'], row['Message'])
        self.assertEqual('compute1: NOT empty: 1 server (%s: ACTIVE, arrived '
                         'during the run (not in the plan))' % late['name'],
                         _lines(err)[-1])
        [record] = self.host_checks(path)
        self.assertEqual([late['id']], [s['id'] for s in record['servers']])
        self.assertTrue(record['fails'])

    def test_leaked_allocation_made_by_hand(self):
        placement = self.cloud.connection().placement
        provider = self.provider('compute1')
        consumer = str(uuid.uuid4())
        r = placement.put('/allocations/%s' % consumer, json={
            'allocations': {provider: {'resources': {'VCPU': 1,
                                                     'MEMORY_MB': 64}}},
            'project_id': 'leaky', 'user_id': 'leaky',
            'consumer_generation': None}, microversion='1.28')
        self.assertEqual(204, r.status_code, r.text)
        self.addCleanup(lambda: placement.delete(
            '/allocations/%s' % consumer, microversion='1.28'))
        seeded = self.seed(1)
        rows, lines = self.drain('--confirm', '--interval', '1',
                                 '--state-file', self.journal())
        self.assertEqual('confirmed', rows[seeded[0]['id']]['Result'])
        self.assertEqual('compute1: NOT empty: 1 leaked allocation '
                         '(consumer %s)' % consumer, lines[-1])
        self.assertIn('compute1: to clean up leaked allocations: nova-manage '
                      'placement audit --resource_provider %s --verbose'
                      % provider, lines[-2])
        self.assertIn('consumer %s holds MEMORY_MB=64, VCPU=1 on resource '
                      'provider %s' % (consumer, provider), lines[-3])
        # With --require-empty the leak fails it (a dry run: the check).
        rows, lines = self.drain('--dry-run', '--require-empty',
                                 expect_rc=1)
        self.assertEqual('compute1: NOT empty: 1 leaked allocation '
                         '(consumer %s)' % consumer, lines[-1])
