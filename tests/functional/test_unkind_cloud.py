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

"""What real clouds do to a migration client, through the real CLI.

A load balancer that answers 504 while Nova goes on with the request, a
gateway error on a confirm (sent on or not), a client whose clock is an hour
off Nova's, a server deleted while the batch was down, a verify command
that talks a lot, a timed-out batch resumed, and a policy that hides host
names from everyone, admin included.

Where a server really is comes from the harness (``cloud.truth``), which
no policy hides; the number of migration records from the CLI
(``openstack server migration list --server``), as in test_batch.
"""

import json
import subprocess
import time
import typing as ty

from testtools import content

from tests.functional import test_batch
from tests.minicloud import faultproxy

WATCH = ('server', 'migrate', 'watch')
# Nova 34's rules that show host names (nova/policies/): no one passes them.
# (The migrations ones exist from nova 32: older nova shows those hosts.)
HIDE_HOSTS = {
    'os_compute_api:os-extended-server-attributes': '!',
    'os_compute_api:os-migrations:index:host': '!',
    # The server-migrations API (live-migration progress) too, as a cloud
    # that hides hosts would.
    'os_compute_api:servers:migrations:index:host': '!',
}


class UnkindTestCase(test_batch.BatchTestCase):

    def setUp(self) -> None:
        super().setUp()
        self.env: ty.Optional[ty.Dict[str, str]] = None  # the CLI's

    def use_proxy(self) -> faultproxy.FaultProxy:
        """From now on the CLI reaches nova-api through a fault proxy."""
        proxy = faultproxy.FaultProxy(self.cloud.info['compute_url'])
        self.addCleanup(proxy.stop)
        self.env = self.cloud.cli_env(proxy.url)
        return proxy

    def cli(self, *args: str, expect_rc: int = 0, timeout: float = 300,
            env: ty.Optional[ty.Dict[str, str]] = None) -> ty.Any:
        """The CLI with ``-f json``; stdout must be only that JSON.

        ``timeout``: a hang fails the test in that time, rather than in the
        plugin's own (minutes).
        """
        try:
            result = self.openstack(*(args + ('-f', 'json')),
                                    expect_rc=expect_rc, timeout=timeout,
                                    env=env or self.env)
        except subprocess.TimeoutExpired:
            self.fail('openstack %s: still running after %ss (killed)'
                      % (' '.join(args), timeout))
        try:
            return json.loads(result.stdout)
        except ValueError:
            self.fail('stdout is not only the JSON result:\n%s'
                      % result.stdout)

    def run_batch(self, *args: str, **kwargs: ty.Any
                  ) -> ty.Dict[str, dict]:
        rows = self.cli(*(test_batch.BATCH + args), **kwargs)
        return {row['Server ID']: row for row in rows}

    def run_watch(self, *args: str, **kwargs: ty.Any) -> dict:
        return self.cli(*(WATCH + args), **kwargs)

    def one(self, host: str = 'compute1', stopped: int = 0) -> str:
        return self.seed(host, 1, stopped=stopped)[0]['id']

    def where(self, server_id: str) -> dict:
        """The server as Nova's database has it (host, status)."""
        return self.cloud.truth(server_id)[server_id]

    def assert_moved_once(self, server_id: str, source: str,
                          status: str = 'ACTIVE', records: int = 1) -> None:
        """Off ``source``, in ``status``, with ``records`` records."""
        self.assertEqual(records, len(self.records(server_id)), server_id)
        server = self.where(server_id)
        self.assertEqual(status, server['status'], server_id)
        self.assertNotEqual(source, server['host'], server_id)
        self.assertIsNone(server['task_state'], server_id)

    def settle(self, server_id: str, timeout: float = 60) -> None:
        """Wait until Nova has no task under way for the server."""
        deadline = time.monotonic() + timeout
        while self.where(server_id)['task_state'] is not None:
            if time.monotonic() > deadline:
                self.fail('%s still has a task after %ss: %s' % (
                    server_id, timeout, self.where(server_id)))
            time.sleep(0.5)

    def submitted(self, path: str) -> ty.List[str]:
        """Servers the journal says were submitted, in order."""
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
        return [r['server'] for r in records
                if r.get('type') == 'event' and r.get('event') == 'submitted']


class TestLostReplies(UnkindTestCase):
    """A gateway between the CLI and Nova loses answers (fault proxy)."""

    def _migrate_reply_lost(self, server_id: str) -> faultproxy.Fault:
        # The LB answers 504 at once; Nova gets the migrate 3 s later.
        return self.use_proxy().lose_reply(
            'POST', '/servers/%s/action' % server_id, 'migrate',
            status=504, forward_after=3.0)

    def _check_late(self, server_id: str, late: faultproxy.Fault) -> None:
        # Count records only once Nova has seen the lost request and has
        # done with it: a migrate is cast to the conductor after the 202,
        # so a second migration's record shows a moment later.
        self.assertTrue(late.forwarded.wait(60), 'never reached Nova')
        self.assertEqual(1, late.count)
        self.settle(server_id)
        # What happened, for a failure's report: a client that submitted
        # again gets a 409 for the late one, or a second migration.
        got = [r for r in self.cloud.requests()
               if r.endswith('/servers/%s/action migrate' % server_id)]
        self.addDetail('nova', content.text_content(
            'migrate requests Nova got: %d; its answer to the late one: %s'
            % (len(got), late.nova_status)))

    def test_batch_migrate_reply_lost_migrates_once(self):
        sid = self.one('compute1')
        late = self._migrate_reply_lost(sid)
        rows = self.run_batch(sid, '--confirm', '--interval', '1',
                              '--state-file', self.journal())
        self._check_late(sid, late)
        self.assertEqual('confirmed', rows[sid]['Result'], rows[sid])
        self.assert_moved_once(sid, 'compute1')

    def test_watch_migrate_reply_lost_migrates_once(self):
        sid = self.one('compute2')
        late = self._migrate_reply_lost(sid)
        out = self.run_watch(sid, '--start', '--confirm', '--interval', '1')
        self._check_late(sid, late)
        self.assertEqual('confirmed', out['Result'], out)
        self.assert_moved_once(sid, 'compute2')

    def test_watch_confirm_503_never_sent(self):
        sid = self.one('compute3')
        fault = self.use_proxy().fail(
            'POST', '/servers/%s/action' % sid, 'confirmResize', status=503)
        out = self.run_watch(sid, '--start', '--confirm', '--interval', '1')
        self.assertEqual((1, None), (fault.count, fault.nova_status))
        self.assertEqual('confirmed', out['Result'], out)
        self.assert_moved_once(sid, 'compute3')

    def test_watch_confirm_502_after_nova_confirmed(self):
        sid = self.one('compute1')
        fault = self.use_proxy().fail(
            'POST', '/servers/%s/action' % sid, 'confirmResize', status=502,
            forward=True)
        out = self.run_watch(sid, '--start', '--confirm', '--interval', '1')
        # Nova confirmed (204) the one the client saw fail.
        self.assertEqual((1, 204), (fault.count, fault.nova_status))
        self.assertEqual('confirmed', out['Result'], out)
        self.assert_moved_once(sid, 'compute1')


class TestClientSide(UnkindTestCase):
    """The client's own troubles: its clock, its downtime, its children."""

    def test_client_clock_an_hour_ahead(self):
        ids = [s['id'] for s in self.seed('compute2', 4)]
        self.cloud.set_delay(3)  # several polls each
        # --timeout: a client lost in time fails in a minute, not an hour
        # (two waves of two: 2 per source).
        rows = self.run_batch(*ids, '--confirm', '--interval', '1',
                              '--timeout', '30', '--state-file',
                              self.journal(),
                              env=self.cloud.cli_env(clock_offset=3600))
        for sid in ids:
            self.assertEqual('confirmed', rows[sid]['Result'], rows[sid])
            self.assert_moved_once(sid, 'compute2')

    def test_server_deleted_between_kill_and_resume(self):
        ids = [s['id'] for s in self.seed('compute3', 3)]
        path = self.journal()
        self.cloud.set_delay(3)
        proc = self.start_batch(*ids, '--confirm', '--interval', '1',
                                '--state-file', path)
        self.wait_for_event(path, 'submitted', 2)
        proc.kill()
        proc.communicate()
        gone = self.submitted(path)[0]
        self.openstack('server', 'delete', '--wait', gone)
        self.assertNotIn(gone, self.cloud.truth())
        self.cloud.set_delay(0)
        rows = self.run_batch('--resume', path, '--interval', '1')
        self.assertEqual(sorted(ids), sorted(rows))
        self.assertEqual('deleted', rows[gone]['Result'], rows[gone])
        for sid in ids:
            if sid != gone:
                self.assertEqual('confirmed', rows[sid]['Result'], rows[sid])
                self.assert_moved_once(sid, 'compute3')

    def test_token_expires_mid_batch_then_resume(self):
        """A fixed token dies in the night: stop, record, resume."""
        ids = [s['id'] for s in self.seed('compute1', 4)]
        path = self.journal()
        self.cloud.set_delay(3)
        proc = self.start_batch(*ids, '--confirm', '--interval', '1',
                                '--max-parallel', '2', '--state-file', path,
                                user='expiring')
        self.wait_for_event(path, 'submitted', 2)
        self.cloud.expire_token('expiring')
        out, err = proc.communicate(timeout=120)
        self.addDetail('expired-stderr', content.text_content(err))
        self.assertEqual(1, proc.returncode, err)
        self.assertIn('credentials expired: Nova refused the credentials '
                      '(HTTP 401)', err)
        self.assertIn('--resume %s' % path, err)
        results = {r['Server ID']: r['Result'] for r in json.loads(out)}
        self.assertNotIn('failed', results.values(), results)
        submitted = self.submitted(path)
        self.assertEqual(2, len(submitted), submitted)
        for sid in ids:
            if sid not in submitted:
                self.assertEqual([], self.records(sid))
        # Fresh credentials (another token): every server moved once.
        self.cloud.set_delay(0)
        rows = self.run_batch('--resume', path, '--interval', '1')
        for sid in ids:
            self.assertEqual('confirmed', rows[sid]['Result'], rows[sid])
            self.assert_moved_once(sid, 'compute1')

    def test_verify_command_prints_300_kilobytes(self):
        sid = self.one('compute1')
        # More than a pipe holds (64 KiB): read as it comes, or it blocks.
        command = 'yes 0123456789abcdef | head -c 300000; exit 0'
        # 120 s: well past a verification's few seconds, short of the 300 s
        # after which a blocked command is killed and the migration reverted.
        rows = self.run_batch(sid, '--confirm', '--verify-command', command,
                              '--interval', '1', '--state-file',
                              self.journal(), timeout=120)
        self.assertEqual('confirmed', rows[sid]['Result'], rows[sid])
        self.assert_moved_once(sid, 'compute1')

    def test_timeout_then_resume_confirms(self):
        sid = self.one('compute2')
        path = self.journal()
        self.cloud.set_delay(15)
        rows = self.run_batch(sid, '--confirm', '--timeout', '5',
                              '--interval', '1', '--state-file', path,
                              expect_rc=3)
        self.assertEqual('timeout', rows[sid]['Result'], rows[sid])
        self.cloud.set_delay(0)  # (the migration under way keeps its 15 s)
        rows = self.run_batch('--resume', path, '--interval', '1')
        self.assertEqual('confirmed', rows[sid]['Result'], rows[sid])
        self.assert_moved_once(sid, 'compute2')  # not in VERIFY_RESIZE


class TestHostsHiddenByPolicy(UnkindTestCase):
    """No one, admin included, sees host names: only the harness does."""

    POLICY = HIDE_HOSTS

    def test_harness_hides_hosts_but_knows_them(self):
        sid = self.one('compute2')
        shown = self.cloud.server(sid)  # the API, as admin
        self.assertNotIn('OS-EXT-SRV-ATTR:host', shown)
        self.assertIsNone(self.openstack_json('server', 'show', sid)[
            'OS-EXT-SRV-ATTR:host'])
        self.assertEqual('compute2', self.where(sid)['host'])
        self.openstack('server', 'migrate', '--wait', sid)
        [record] = self.records(sid)
        server = self.where(sid)
        if int(self.cloud.nova_version.split('.')[0]) >= 32:
            self.assertEqual((None, None), (record['Source Compute'],
                                            record['Dest Compute']))
        else:
            # Before nova 32 (2025.2) no rule hides a migration record's
            # hosts: os-migrations:index:host does not exist yet.
            self.assertEqual(('compute2', server['host']),
                             (record['Source Compute'],
                              record['Dest Compute']))
        [truth] = server['migrations']
        self.assertEqual(('compute2', server['host']),
                         (truth['source_compute'], truth['dest_compute']))
        self.assertNotEqual('compute2', server['host'])
        self.openstack('server', 'migration', 'confirm', sid)
        self.cloud.wait_servers([sid], 'ACTIVE', 60)

    def test_batch_drains_a_host_it_cannot_see(self):
        self.seed('compute1', 3, stopped=1)
        # Every server on compute1 (other tests may have moved some there).
        before = {sid: len(s['migrations'])
                  for sid, s in self.cloud.truth().items()
                  if s['host'] == 'compute1'}
        statuses = {sid: self.where(sid)['status'] for sid in before}
        rows = self.run_batch('--source-host', 'compute1', '--mode', 'auto',
                              '--confirm', '--interval', '1',
                              '--state-file', self.journal())
        self.assertEqual(sorted(before), sorted(rows))
        for sid, count in before.items():
            expected = 'confirmed' if statuses[sid] == 'SHUTOFF' \
                else 'migrated'
            self.assertEqual(expected, rows[sid]['Result'], rows[sid])
            self.assert_moved_once(sid, 'compute1', status=statuses[sid],
                                   records=count + 1)

    def test_watch_cold_confirm_hosts_hidden(self):
        sid = self.one('compute2')
        out = self.run_watch(sid, '--start', '--confirm', '--interval', '1')
        self.assertEqual('confirmed', out['Result'], out)
        self.assertIn('hidden by policy', out['Message'])
        self.assert_moved_once(sid, 'compute2')

    def test_watch_live_hosts_hidden(self):
        sid = self.one('compute3')
        out = self.run_watch(sid, '--start', '--live-migration',
                             '--interval', '1')
        self.assertEqual('migrated', out['Result'], out)
        self.assert_moved_once(sid, 'compute3')
