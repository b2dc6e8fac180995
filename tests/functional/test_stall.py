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

"""Live migrations that stall, through the real CLI against real Nova.

The harness's driver (``stall_live``) writes progress figures to the
migration record as libvirt's monitor does, decreasing then flat at 91%
copied, until Nova calls its force-complete or abort.
"""

import json
import os
import subprocess
import tempfile
import uuid

from tests.functional import base

WATCH = ('server', 'migrate', 'watch')
BATCH = ('server', 'migrate', 'batch')


class TestStall(base.MiniCloudTestCase):

    def _one(self, prefix):
        return self.cloud.seed_servers(
            'compute1', 1, prefix='%s-%s' % (prefix, uuid.uuid4().hex[:6]))[0]

    def test_watch_forces_a_stalled_live_migration_to_complete(self):
        server = self._one('st-f')
        self.cloud.stall_live()
        result = self.openstack(
            *(WATCH + (server['id'], '--start', '--live-migration',
                       '--on-stall', 'force-complete', '--stall-after', '3',
                       '--interval', '1', '--timeout', '120', '-f', 'json')))
        out = json.loads(result.stdout)
        self.assertEqual(('migrated', 'completed'),
                         (out['Result'], out['Migration Status']))
        self.assertRegex(out['Message'],
                         r'^stalled \d+ s at 91%: forced to complete$')
        self.assertIn('forcing it to complete', result.stderr)
        truth = self.cloud.truth(server['id'])[server['id']]
        self.assertEqual('ACTIVE', truth['status'])
        self.assertNotEqual('compute1', truth['host'])
        self.assertEqual('completed', truth['migrations'][-1]['status'])

    def test_batch_aborts_a_stalled_live_migration(self):
        server = self._one('st-a')
        self.cloud.stall_live()
        state = tempfile.mkdtemp(prefix='stall-state-')
        self.addCleanup(lambda: subprocess.run(['rm', '-rf', state]))
        journal = os.path.join(state, 'j.jsonl')
        result = self.openstack(
            *(BATCH + (server['id'], '--mode', 'live', '--on-stall', 'abort',
                       '--stall-after', '3', '--interval', '1',
                       '--timeout', '120', '--state-file', journal,
                       '-f', 'json')), expect_rc=3)
        [row] = json.loads(result.stdout)
        self.assertEqual('aborted', row['Result'])
        self.assertRegex(row['Message'], r'^stalled \d+ s at 91%: aborted, '
                         r'the server stays on compute1$')
        truth = self.cloud.truth(server['id'])[server['id']]
        self.assertEqual(('ACTIVE', 'compute1', None),
                         (truth['status'], truth['host'],
                          truth['task_state']))
        self.assertEqual('cancelled', truth['migrations'][-1]['status'])
        with open(journal) as f:
            events = [json.loads(line).get('event') for line in f]
        self.assertLess(events.index('stalled'), events.index('abort-sent'))
