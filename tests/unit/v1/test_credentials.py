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

"""A token that expires in the middle of a long run (HTTP 401).

keystoneauth renews what it can (password, application credential) and asks
again before a 401 reaches us; a fixed token cannot be renewed. Then the
batch stops submitting, records where each server stands, and says how to
resume; nothing is counted as a server's failure.
"""

import io

from osc_lib import exceptions

from osc_migrate_plus.v1 import batch
from tests.unit.v1 import test_unkind_nova as base


class TestTokenExpires(base.UnkindNovaTestCase):

    def posts_after(self, when, action='migrate'):
        return [t for t in self.fake.posts(action) if t >= when]

    def test_batch_stops_records_and_resumes(self):
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % i) for i in range(4)]

        def expire_once_two_are_under_way():
            if fake.token_expires is None and len(
                    [i for i in ids if fake.records(i)]) >= 2:
                fake.expire_token()
        fake.sleep_hooks.append(expire_once_two_are_under_way)
        stderr = io.StringIO()
        rc, rows = self._run(batch.BatchMigrate, (
            *ids, '--confirm', '--max-parallel', '2',
            '--state-file', self.path), stderr)
        expired = fake.token_expires
        self.assertIsNotNone(expired)
        self.assertEqual(1, rc)
        results = {r['Server ID']: r['Result'] for r in rows}
        self.assertEqual(2, list(results.values()).count('interrupted'),
                         results)
        self.assertEqual(2, list(results.values()).count('not-started'),
                         results)
        self.assertNotIn('failed', results.values())
        said = stderr.getvalue()
        self.assertIn('credentials expired: Nova refused the credentials '
                      '(HTTP 401)', said)
        self.assertIn('--resume %s' % self.path, said)
        # Not one request of any kind was tried again with the dead token.
        self.assertEqual(1, len([r for r in fake.requests
                                 if r[0] >= expired]))

        # A new token: the resume finishes the job, each server moved once.
        fake.sleep_hooks.remove(expire_once_two_are_under_way)
        fake.token_expires = None
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc, rows)
        self.assertEqual({'confirmed'}, {r['Result'] for r in rows.values()})
        for sid in ids:
            self.assertEqual(1, len(fake.records(sid)), sid)
            self.assertEqual('ACTIVE', fake.server(sid)['status'])

    def test_the_migrate_request_itself_refused(self):
        """The 401 answers the migrate: Nova never saw it; resume sends."""
        fake = self.cloud()
        sid = fake.add_server('vm1')
        # Expire just before the migrate request goes out.
        original = fake._request

        def request(url, method, **kw):
            if method == 'POST' and fake.token_expires is None:
                fake.expire_token()
            return original(url, method, **kw)
        fake.proxy.request.side_effect = request
        rc, rows = self.batch(sid, '--confirm', '--state-file', self.path)
        self.assertEqual(1, rc)
        self.assertEqual('not-started', rows[sid]['Result'])
        self.assertEqual([], fake.records(sid))
        fake.proxy.request.side_effect = original
        fake.token_expires = None
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc, rows)
        self.assertEqual('confirmed', rows[sid]['Result'])
        self.assertEqual(1, len(fake.records(sid)))
        # The one the expired token carried, then the resume's.
        self.assertEqual(2, len(fake.posts('migrate')))

    def test_expired_before_anything(self):
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.expire_token()
        error = self.assertRaises(exceptions.CommandError, self.batch, sid,
                                  '--state-file', self.path)
        self.assertIn('credentials expired', str(error))
        self.assertEqual([], fake.posts('migrate'))

    def test_watch_says_how_to_follow_again(self):
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.sleep_hooks.append(
            lambda: fake.records(sid) and fake.token_expires is None
            and fake.expire_token())
        error = self.assertRaises(exceptions.CommandError, self.watch, sid,
                                  '--start', '--confirm')
        text = str(error)
        self.assertIn('credentials expired', text)
        self.assertIn('follow it again: openstack server migrate watch %s '
                      '--migration %s --confirm'
                      % (sid, fake.records(sid)[0]['id']), text)
