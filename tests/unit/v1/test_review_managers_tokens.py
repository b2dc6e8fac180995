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

"""An independent review's attacks on project managers and expiring tokens.

Each failed on the first version of that change (a server migrated twice,
a drain that moved nothing and said 0, a raw traceback); kept as
regressions, with the ones that held up.
"""

import io

from keystoneauth1 import exceptions as ksa_exc
from osc_lib import exceptions

from osc_migrate_plus.v1 import batch
from tests.unit.v1 import test_project_manager as pm
from tests.unit.v1 import test_unkind_nova as base


class TestAdminStartedSeenByManager(pm.ManagerTestCase):
    """Nova lists to a manager only what its project started."""

    def test_watch_attach_admin_live_migration_refused_not_failed(self):
        fake = self.cloud()
        fake.timing['live_duration'] = 120
        sid = fake.add_server('vm1')
        fake.start_elsewhere(sid, live=True)
        fake.advance(1)
        self.assertEqual('MIGRATING', fake.server(sid)['status'])
        error = self.assertRaises(exceptions.CommandError, self.watch, sid)
        self.assertIn('started by another project', str(error))
        self.assertIn('Follow it with admin credentials', str(error))

    def test_batch_does_not_adopt_what_it_cannot_see(self):
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.start_elsewhere(sid)
        fake.settle()
        rc, rows = self.batch(sid, '--confirm', '--state-file', self.path)
        self.assertEqual('skipped', rows[sid]['Result'], rows[sid])
        self.assertIn('does not show you', rows[sid]['Message'])
        self.assertEqual('VERIFY_RESIZE', fake.server(sid)['status'])
        self.assertEqual([], fake.posts('confirmResize'))


class TestManagerResumesAdminJournal(base.UnkindNovaTestCase):
    """A journal an admin wrote, resumed by a manager: refused."""

    def test_lost_reply_applied_late_never_migrated_twice(self):
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.lose_reply('migrate', apply_after=None)
        self.kill_when(lambda: fake.count('POST', 'migrate'))
        self.assertRaises(base.Kill, self.batch, 'vm1',
                          '--state-file', self.path)
        fake.apply_lost()
        fake.settle()
        fake.auto_confirm(sid)
        fake.settle()
        fake.caller = pm.MANAGER
        error = self.assertRaises(exceptions.CommandError, self.batch,
                                  '--resume', self.path)
        self.assertIn("reads every project's migrations", str(error))
        self.assertIn('Resume it with the credentials that started it',
                      str(error))
        self.assertEqual(1, len(fake.records(sid)))
        self.assertEqual(1, len(fake.posts('migrate')))

    def test_the_admin_resumes_it(self):
        fake = self.cloud()
        sid = fake.add_server('vm1')
        self.kill_when(lambda: self.journal_count('"event":"submitted"'))
        self.assertRaises(base.Kill, self.batch, 'vm1', '--confirm',
                          '--state-file', self.path)
        fake.settle()
        fake.caller = pm.MANAGER
        self.assertRaises(exceptions.CommandError, self.batch,
                          '--resume', self.path)
        fake.caller = base.fakenova.ADMIN
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual('confirmed', rows[sid]['Result'], rows[sid])
        self.assertEqual(1, len(fake.records(sid)))


class TestTokenAttacks(base.UnkindNovaTestCase):

    def expire_on(self, when):
        original = self.fake._request

        def request(url, method, **kw):
            if self.fake.token_expires is None and when(url, method, kw):
                self.fake.expire_token()
            return original(url, method, **kw)
        self.fake.proxy.request.side_effect = request
        return original

    def test_watch_start_refused_says_nothing_started(self):
        fake = self.cloud()
        sid = fake.add_server('vm1')
        self.expire_on(lambda url, method, kw: method == 'POST')
        error = self.assertRaises(exceptions.CommandError, self.watch, sid,
                                  '--start', '--confirm')
        self.assertEqual([], fake.records(sid))
        self.assertIn('no migration was started', str(error))
        self.assertNotIn('goes on in Nova', str(error))

    def test_batch_401_while_adopting_says_how_to_resume(self):
        fake = self.cloud()
        fake.timing['cold_duration'] = 60
        a = fake.add_server('vm1')
        b = fake.add_server('vm2')
        fake.start_elsewhere(b)
        fake.advance(1)
        reads = []

        def adopting(url, method, kw):
            # The plan found it in its host's listing (read for vm1): the
            # first read of it alone is the adoption's.
            if method == 'GET' and url.endswith('/servers/%s' % b):
                reads.append(url)
            return len(reads) == 1
        self.expire_on(adopting)
        stderr = io.StringIO()
        rc, rows = self._run(batch.BatchMigrate, (
            a, b, '--confirm', '--state-file', self.path), stderr)
        self.assertEqual(1, rc)
        self.assertIn('credentials expired', stderr.getvalue())
        self.assertIn('--resume %s' % self.path, stderr.getvalue())

    def test_identity_503_while_renewing_is_transient(self):
        fake = self.cloud()
        fake.timing['cold_duration'] = 60
        sid = fake.add_server('vm1')
        original = fake._request
        done = []

        def request(url, method, **kw):
            if fake.records(sid) and method == 'GET' and \
                    'os-migrations' in url and not done:
                done.append(1)
                raise ksa_exc.ServiceUnavailable('keystone: 503')
            return original(url, method, **kw)
        fake.proxy.request.side_effect = request
        rc, rows = self.batch(sid, '--confirm', '--state-file', self.path)
        self.assertEqual(0, rc, rows)
        self.assertEqual('confirmed', rows[sid]['Result'])

    def test_401_on_confirm_then_resume(self):
        """Held up: the confirm refused, the resume confirms."""
        fake = self.cloud()
        sid = fake.add_server('vm1')
        original = self.expire_on(
            lambda url, method, kw: method == 'POST' and
            'confirmResize' in (kw.get('json') or {}))
        rc, rows = self.batch(sid, '--confirm', '--state-file', self.path)
        self.assertEqual('interrupted', rows[sid]['Result'])
        fake.proxy.request.side_effect = original
        fake.token_expires = None
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual('confirmed', rows[sid]['Result'], rows[sid])
        self.assertEqual('ACTIVE', fake.server(sid)['status'])
        self.assertEqual(1, len(fake.records(sid)))


class TestStray403(base.UnkindNovaTestCase):

    def test_admin_drain_after_one_stray_403_is_an_error_not_empty(self):
        """A 403 that is not Nova refusing all_tenants shrinks nothing."""
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % i, project_id='p%d' % i)
               for i in range(3)]
        fake.fail_request(method='GET', path='/servers/detail', status=403)
        error = self.assertRaises(
            exceptions.CommandError, self.batch, '--source-host', 'compute1',
            '--confirm', '--state-file', self.path)
        self.assertIn('HTTP 403', str(error))
        self.assertEqual([], fake.posts('migrate'))
        rc, rows = self.batch('--source-host', 'compute1', '--confirm',
                              '--state-file', self.path + '2')
        self.assertEqual(set(ids), set(rows))


class TestManagerMisc(pm.ManagerTestCase):

    def test_project_alone_with_no_server_is_empty_not_403(self):
        fake = self.cloud()
        fake.add_server('theirs', project_id='p2')
        rc, rows = self.batch('--project', 'p1', '--state-file', self.path)
        self.assertEqual((0, {}), (rc, rows))

    def test_microversion_below_280_says_so(self):
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.proxy.default_microversion = '2.79'
        error = self.assertRaises(exceptions.CommandError, self.batch, sid,
                                  '--state-file', self.path)
        self.assertIn('needs compute API 2.80', str(error))

    def test_live_progress_asked_in_a_way_nova_allows(self):
        fake = self.cloud()
        fake.timing['live_duration'] = 60
        sid = fake.add_server('vm1')
        rc, out = self.watch(sid, '--start', '--live-migration',
                             stderr=base.Terminal())
        self.assertEqual('migrated', out['Result'])
        shows = [r for r in fake.requests if r[1] == 'GET' and
                 '/migrations/' in r[2]]
        self.assertLessEqual(len(shows), 1)
        listed = [r for r in fake.requests if r[1] == 'GET' and
                  r[2].endswith('/migrations')]
        self.assertGreater(len(listed), 0)


class TestDisableSourceInterrupted(base.UnkindNovaTestCase):

    def test_401_between_two_disables_resume_disables_the_rest(self):
        """The token dies after compute1 is disabled, before compute2."""
        fake = self.cloud(hosts=4)
        a = fake.add_server('a', host='compute1')
        b = fake.add_server('b', host='compute2')
        original = fake._request

        def request(url, method, **kw):
            response = original(url, method, **kw)
            if method == 'PUT':
                fake.expire_token()
            return response
        fake.proxy.request.side_effect = request
        self.assertRaises(exceptions.CommandError, self.batch, a, b,
                          '--disable-source', '--confirm',
                          '--state-file', self.path)
        self.assertEqual(['compute1'], self.disabled())
        self.assertEqual([], fake.posts('migrate'))
        fake.proxy.request.side_effect = original
        fake.token_expires = None
        submitted = []
        fake.sleep_hooks.append(lambda: submitted.append(self.disabled())
                                if fake.posts('migrate') and not submitted
                                else None)
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc, rows)
        # Both disabled before the first migrate went out, each once.
        self.assertEqual([['compute1', 'compute2']], submitted)
        # compute1 was not disabled a second time.
        first = fake.services['compute1']['id']
        self.assertEqual(1, len([r for r in fake.requests
                                 if r[1] == 'PUT' and first in r[2]]))
        for sid in (a, b):
            self.assertNotIn(fake.server(sid)['OS-EXT-SRV-ATTR:host'],
                             ('compute1', 'compute2'))

    def disabled(self):
        return sorted(h for h, s in self.fake.services.items()
                      if s['status'] == 'disabled')
