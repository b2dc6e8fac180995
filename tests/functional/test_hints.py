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

"""A failure whose cause Nova names comes with what to do about it."""

import json
import os
import subprocess
import tempfile
import uuid

from tests.functional import base
from tests.minicloud import fixture as minicloud

BATCH = ('server', 'migrate', 'batch')
WATCH = ('server', 'migrate', 'watch')
# Nova keeps the first 255 bytes of the failure: libvirt's words, not
# ssh's (cut off after "Stderr: 'Host key ve"), as on a real cloud.
SSH_HINT = 'hint (ssh): '


class HintsTestCase(base.MiniCloudTestCase):

    HARNESS_ONLY = 'failing migrations the way libvirt does (fail_reason)'

    def setUp(self):
        super().setUp()
        self.state = tempfile.mkdtemp(prefix='hints-state-')
        self.addCleanup(lambda: subprocess.run(['rm', '-rf', self.state]))

    def journal(self):
        return os.path.join(self.state, '%s.jsonl' % uuid.uuid4().hex[:8])

    def test_batch_ssh_not_set_up_hint_once_for_two_servers(self):
        """Cold migrations fail as libvirt's do without SSH between hosts."""
        seeded = self.cloud.seed_servers(
            'compute1', 2, prefix='h-%s' % uuid.uuid4().hex[:6])
        ids = [s['id'] for s in seeded]
        self.cloud.fail_migrations(['compute1'], 'from',
                                   reason=minicloud.SSH_HOST_KEY)
        result = self.openstack(*(BATCH + tuple(ids) + (
            '--confirm', '--interval', '1', '--state-file', self.journal(),
            '-f', 'json')), expect_rc=1)
        rows = {r['Server ID']: r for r in json.loads(result.stdout)}
        for sid in ids:
            row = rows[sid]
            self.assertEqual('failed', row['Result'])
            message = row['Message']
            # Nova's reason as libvirt words it, then the hint.
            reason_at = message.index('not able to execute ssh command')
            hint_at = message.index(' Hint: ')
            self.assertLess(reason_at, hint_at)
            self.assertIn('known_hosts', message[hint_at:])
            self.assertEqual('compute1', self.server_view(sid)['host'])
        # Two servers, one cause: the hint once on stderr.
        self.assertEqual(1, result.stderr.count(SSH_HINT), result.stderr)
        # Not repeated in each server's line there either.
        self.assertEqual(1, result.stderr.count('known_hosts'),
                         result.stderr)

    def test_watch_ssh_not_set_up_hint(self):
        [server] = self.cloud.seed_servers(
            'compute1', 1, prefix='h-%s' % uuid.uuid4().hex[:6])
        self.cloud.fail_migrations(['compute1'], 'from',
                                   reason=minicloud.SSH_HOST_KEY)
        result = self.openstack(*(WATCH + (
            server['id'], '--start', '--interval', '1', '-f', 'json')),
            expect_rc=1)
        out = json.loads(result.stdout)
        self.assertEqual('failed', out['Result'])
        self.assertIn('not able to execute ssh command', out['Message'])
        self.assertIn(' Hint: ', out['Message'])
        self.assertIn('known_hosts', out['Message'])
        self.assertEqual(1, result.stderr.count(SSH_HINT), result.stderr)

    def test_refused_by_policy_before_anything_moves(self):
        """A member is refused at once: the error carries the hint."""
        [server] = self.cloud.seed_servers(
            None, 1, prefix='h-%s' % uuid.uuid4().hex[:6], user='member')
        for args in (BATCH + (server['id'], '--state-file', self.journal()),
                     WATCH + (server['id'], '--start')):
            result = self.openstack(*args, user='member', expect_rc=1)
            self.assertEqual('', result.stdout)
            self.assertIn("Policy doesn't allow os_compute_api:",
                          result.stderr)
            self.assertIn('Hint: ', result.stderr)
            self.assertIn("Nova's policy file", result.stderr)
        self.assertEqual(0, len(self.cloud.truth(server['id'])[server['id']][
            'migrations']))
