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

"""The real commands against a Nova as unkind as Nova (``FakeNova``).

Each test names, in its docstring, the failure it covers. The commands run
as OSC runs them (``cmd.run`` with parsed arguments) with the client on the
fake's clock throughout. A SIGKILL of the client is ``Kill`` raised from its
sleep once a condition holds: nothing more reaches the journal.
"""

import io
import json
import os
import signal
import time
from unittest import mock

import fixtures
import testtools
from testtools import content

from osc_migrate_plus.v1 import batch
from osc_migrate_plus.v1 import watch
from tests.unit import fakenova
from tests.unit import fakeplacement

# The real one: inside a test time.sleep is the fake's.
really_sleep = time.sleep


class Kill(BaseException):
    """The client killed (SIGKILL): raised from its sleep."""


class Terminal(io.StringIO):
    def isatty(self):
        return True


class UnkindNovaTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(self.tmp, 'journal.jsonl')
        self.runs = 0

    def cloud(self, real_sleep=0.0, **kwargs):
        self.fake = fakenova.FakeNova(**kwargs)
        self.useFixture(self.fake.client_time(real_sleep))
        return self.fake

    def _run(self, command, args, stderr=None):
        app = mock.Mock()
        app.stdout = io.StringIO()
        app.stderr = stderr if stderr is not None else io.StringIO()
        app.options.verbose_level = 1
        app.client_manager.migrate_plus = self.fake.proxy
        # Placement, beside this Nova (one per fake, kept across runs).
        placement = self.fake.placement or \
            fakeplacement.FakePlacement(self.fake)
        app.client_manager.sdk_connection.placement = placement.proxy
        cmd = command(app, None)
        parsed = cmd.get_parser('openstack server migrate').parse_args(
            ['-f', 'json'] + list(args))
        self.runs += 1
        started = self.fake.now
        try:
            rc = cmd.run(parsed)
        finally:
            # Shown when a test fails: what the command said, and when.
            self.addDetail('run %d: %s (sim %.1f-%.1fs)' % (
                self.runs, ' '.join(args), started, self.fake.now),
                content.text_content(app.stderr.getvalue() or '-'))
            if os.path.exists(self.path):
                with open(self.path) as f:
                    self.addDetail('journal after run %d' % self.runs,
                                   content.text_content(f.read()))
        out = app.stdout.getvalue()
        return rc, (json.loads(out) if out.strip() else None)

    def watch(self, *args, stderr=None):
        return self._run(watch.WatchMigration, args, stderr)

    def batch(self, *args):
        rc, rows = self._run(batch.BatchMigrate, args)
        return rc, {row['Server ID']: row for row in rows or []}

    def kill_when(self, condition):
        def hook():
            if condition():
                self.fake.sleep_hooks.remove(hook)
                raise Kill()
        self.fake.sleep_hooks.append(hook)

    def journal_count(self, text):
        if not os.path.exists(self.path):
            return 0
        with open(self.path) as f:
            return f.read().count(text)

    def assertResult(self, expected, row):  # noqa: N802
        self.assertIsNotNone(row)
        self.assertEqual(expected, row['Result'], row.get('Message'))


class TestLostReplies(UnkindNovaTestCase):

    def test_watch_start_reply_lost_then_applied(self):
        """A. watch --start: the migrate reply is lost, Nova applies it.

        Today the 504 ends the command (CommandError): nothing follows the
        migration Nova started 0.5 s later.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.lose_reply('migrate', apply_after=0.5)
        rc, out = self.watch('vm1', '--start', '--confirm')
        self.assertEqual(0, rc)
        self.assertResult('confirmed', out)
        self.assertEqual(1, len(fake.records(sid)))
        self.assertEqual(1, fake.count('POST', 'migrate'))

    def test_batch_submit_reply_lost_then_applied(self):
        """B. batch: the migrate reply is lost, Nova applies it 0.5 s later.

        Today the batch resubmits (409 task_state) until its retries are
        spent and reports ``failed`` while the migration goes on in Nova.
        """
        fake = self.cloud()
        fake.timing['cold_duration'] = 60
        sid = fake.add_server('vm1')
        fake.lose_reply('migrate', apply_after=0.5)
        rc, rows = self.batch('vm1', '--confirm', '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertResult('confirmed', rows[sid])
        self.assertEqual(1, len(fake.records(sid)))
        self.assertEqual(1, fake.count('POST', 'migrate'))

    def test_batch_live_reply_lost_then_applied(self):
        """C. batch --mode live: the reply is lost, Nova applies it.

        Today the batch resubmits once the first live migration is over:
        a second live migration of the same server.
        """
        fake = self.cloud()
        fake.timing['live_duration'] = 1
        sid = fake.add_server('vm1')
        fake.lose_reply('os-migrateLive', apply_after=0.5)
        rc, rows = self.batch('vm1', '--mode', 'live', '--state-file',
                              self.path)
        self.assertEqual(0, rc)
        self.assertResult('migrated', rows[sid])
        self.assertEqual(1, len(fake.records(sid)))

    def test_batch_submit_reply_lost_never_applied(self):
        """D. The reply is lost and Nova never applied it: submit again.

        A regression guard (passes today): exactly one more migrate, sent
        only after Nova showed nothing.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.lose_reply('migrate', apply_after=None)
        rc, rows = self.batch('vm1', '--confirm', '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertResult('confirmed', rows[sid])
        self.assertEqual(2, fake.count('POST', 'migrate'))
        self.assertEqual(1, len(fake.records(sid)))
        first, second = fake.posts('migrate')
        # In between, Nova was read and showed nothing.
        reads = [t for t, method, path, _ in fake.requests
                 if method == 'GET' and first < t < second]
        self.assertTrue(reads)

    def test_resume_after_a_lost_reply_nova_applies_late(self):
        """E. Resume after a lost reply that Nova applies during the resume.

        The first run is killed right after the lost reply (journal:
        ``submitting``, ``submit-failed``). Nova applies that request just
        after the resume first reads the server. Today the resume plans the
        server again, resubmits into Nova's 409 until its retries are spent
        (``failed``) and leaves the server in VERIFY_RESIZE.
        """
        fake = self.cloud()
        fake.timing['cold_duration'] = 60
        sid = fake.add_server('vm1')
        fake.lose_reply('migrate', apply_after=None)
        # Killed at its first sleep after the migrate POST.
        self.kill_when(lambda: fake.count('POST', 'migrate'))
        self.assertRaises(Kill, self.batch, 'vm1', '--confirm',
                          '--state-file', self.path)
        self.assertEqual(1, self.journal_count('"event":"submitting"'))
        self.assertEqual([], fake.records(sid))
        # Just after the resume's first read of the server, at the latest
        # 0.5 s into it.
        fake.apply_lost(after=('GET', '/servers/%s' % sid))
        fake.apply_lost(at=fake.now + 0.5)
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        self.assertResult('confirmed', rows[sid])
        self.assertEqual(1, len(fake.records(sid)))
        server = fake.server(sid)
        self.assertEqual('ACTIVE', server['status'])
        self.assertNotEqual('compute1', server['OS-EXT-SRV-ATTR:host'])


class TestClocks(UnkindNovaTestCase):

    def _three_servers(self, offset):
        fake = self.cloud(nova_offset=offset)
        fake.timing['cold_duration'] = 10
        sids = [fake.add_server('vm%d' % n) for n in range(3)]
        rc, rows = self.batch('vm0', 'vm1', 'vm2', '--confirm',
                              '--state-file', self.path)
        self.assertEqual(0, rc)
        for sid in sids:
            self.assertResult('confirmed', rows[sid])

    def test_client_an_hour_ahead_of_nova(self):
        """F. The client's clock is an hour ahead of Nova's.

        Today the changes-since window, taken from the client's clock, is
        in Nova's future: the polls never see a change and every server
        times out (exit 3 after an hour).
        """
        self._three_servers(-3600)

    def test_client_an_hour_behind_nova(self):
        """F. The client's clock is an hour behind Nova's.

        A regression guard (passes today: a window an hour too early only
        returns more).
        """
        self._three_servers(3600)


class TestDeletedServers(UnkindNovaTestCase):

    def test_resume_with_a_deleted_server(self):
        """G1. A server deleted while the batch was dead, then --resume.

        Today the resume reads the deleted server, gets Nova's 404 and
        ends with an error (CommandError) for the whole batch.
        """
        fake = self.cloud()
        fake.timing['cold_duration'] = 30
        gone = fake.add_server('vm1')
        kept = fake.add_server('vm2')
        self.kill_when(lambda: self.journal_count('"event":"submitted"') >= 2)
        self.assertRaises(Kill, self.batch, 'vm1', 'vm2', '--confirm',
                          '--state-file', self.path)
        fake.delete_server(gone)
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        self.assertResult('deleted', rows[gone])
        self.assertResult('confirmed', rows[kept])

    def test_server_deleted_during_a_batch(self):
        """G2. A server deleted during the batch.

        Today its last record stays ``migrating`` in the batch's eyes (a
        deleted server's records vanish from os-migrations) and it times
        out after an hour (exit 3).
        """
        fake = self.cloud()
        fake.timing['cold_duration'] = 60
        gone = fake.add_server('vm1')
        kept = fake.add_server('vm2')
        fake.delete_server(gone, at=5)
        rc, rows = self.batch('vm1', 'vm2', '--confirm', '--state-file',
                              self.path)
        self.assertResult('deleted', rows[gone])
        self.assertResult('confirmed', rows[kept])
        self.assertEqual(0, rc)

    def test_watch_server_deleted_mid_migration(self):
        """G3. watch --start: the server is deleted mid-migration.

        Today the poll's 404 ends the command with an error
        (CommandError), no result.
        """
        fake = self.cloud()
        fake.timing['cold_duration'] = 20
        sid = fake.add_server('vm1')
        fake.delete_server(sid, at=5)
        rc, out = self.watch('vm1', '--start')
        self.assertEqual(1, rc)
        self.assertResult('deleted', out)


class TestResumeFinished(UnkindNovaTestCase):

    def test_resume_after_timeout_finishes_the_migration(self):
        """H1. A batch that timed out, resumed once Nova has finished.

        Today ``timeout`` is final: the resume reports it again (exit 3)
        and leaves the server in VERIFY_RESIZE.
        """
        fake = self.cloud()
        fake.timing['cold_duration'] = 20
        sid = fake.add_server('vm1')
        rc, rows = self.batch('vm1', '--confirm', '--timeout', '5',
                              '--state-file', self.path)
        self.assertEqual(3, rc)
        self.assertResult('timeout', rows[sid])
        fake.advance(30)
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        self.assertResult('confirmed', rows[sid])
        server = fake.server(sid)
        self.assertEqual('ACTIVE', server['status'])
        self.assertNotEqual('compute1', server['OS-EXT-SRV-ATTR:host'])

    def test_resume_after_max_failures_starts_the_rest(self):
        """H2. --max-failures stopped the batch; --resume does the rest.

        Today ``not-started`` is final: the resume never submits it.
        """
        fake = self.cloud()
        bad = fake.add_server('vm1')
        good = fake.add_server('vm2')
        fake.fail_migrations(servers=[bad])
        rc, rows = self.batch('vm1', 'vm2', '--confirm', '--max-parallel',
                              '1', '--max-failures', '1', '--state-file',
                              self.path)
        self.assertEqual(1, rc)
        self.assertResult('failed', rows[bad])
        self.assertResult('not-started', rows[good])
        fake.clear_failures()
        rc, rows = self.batch('--resume', self.path)
        self.assertResult('failed', rows[bad])
        self.assertResult('confirmed', rows[good])
        self.assertEqual(1, len(fake.records(good)))
        self.assertEqual(1, len(fake.records(bad)))
        self.assertEqual(1, rc)


class TestVerifyCommand(UnkindNovaTestCase):

    def test_verbose_verify_command(self):
        """I1. A verify command that prints 300000 bytes, then exits 0.

        Today nobody reads its pipe until it has exited: it blocks on the
        full pipe, is killed at 300 s and the migration is reverted.
        """
        # 300 s of sim time (the verify timeout) last 3 s of real time.
        fake = self.cloud(real_sleep=0.02)
        sid = fake.add_server('vm1')
        rc, rows = self.batch(
            'vm1', '--verify-command', 'head -c 300000 /dev/zero; exit 0',
            '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertResult('confirmed', rows[sid])

    def test_verify_command_children_do_not_outlive_the_batch(self):
        """I2. The batch times out while its verify command runs.

        Today the batch returns and leaves the command (and the children
        it started) running.
        """
        fake = self.cloud(real_sleep=0.01)
        sid = fake.add_server('vm1')
        pidfile = os.path.join(self.tmp, 'pid')
        found = []

        def started():
            # Once the command runs, let no sim time pass before it has
            # written its child's pid: the test must not race the deadline.
            if not found and self.journal_count('"verify-started"'):
                found.append(self._read_pid(pidfile))
        fake.sleep_hooks.append(started)
        rc, rows = self.batch(
            'vm1', '--timeout', '30', '--state-file', self.path,
            '--verify-command',
            'sleep 600 >/dev/null 2>&1 & echo $! > %s; wait' % pidfile)
        self.assertIn(sid, rows)
        self.assertTrue(found, 'the verify command never started')
        for _ in range(50):
            try:
                os.kill(found[0], 0)
            except ProcessLookupError:
                return
            really_sleep(0.1)
        self.fail('the verify command child %d is still running' % found[0])

    def _read_pid(self, pidfile):
        for _ in range(50):
            if os.path.exists(pidfile):
                with open(pidfile) as f:
                    text = f.read().strip()
                if text:
                    pid = int(text)
                    self.addCleanup(_kill_group, pid)
                    return pid
            really_sleep(0.1)
        self.fail('the verify command never wrote its pid')


def _kill_group(pid):
    """Clean up after a failing test: the verify command's session."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return
    if group != os.getpgid(0):
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass


class TestAdoption(UnkindNovaTestCase):

    def test_resume_adopts_a_migration_that_ended_long_ago(self):
        """J. Resume long after a live migration Nova has completed.

        The batch was killed right after ``submitted``. Today the resume
        finds the record already final, waits for a change that never
        comes and times out after an hour (exit 3).
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        self.kill_when(lambda: self.journal_count('"event":"submitted"'))
        self.assertRaises(Kill, self.batch, 'vm1', '--mode', 'live',
                          '--state-file', self.path)
        fake.settle()
        self.assertEqual('completed', fake.records(sid)[0]['status'])
        fake.advance(1200)
        started = fake.now
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        self.assertResult('migrated', rows[sid])
        self.assertLess(fake.now - started, 300)

    def test_no_record_ever(self):
        """K. Nova accepts, the conductor fails before any record.

        Today the batch waits for a record that never comes and reports
        ``timeout`` after an hour (exit 3), without Nova's reason.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.fail_before_record(sid)
        rc, rows = self.batch('vm1', '--confirm', '--state-file', self.path)
        self.assertEqual(1, rc)
        self.assertResult('failed', rows[sid])
        self.assertIn('No valid host was found', rows[sid]['Message'])
        self.assertLess(fake.now, 600)

    def test_older_record_is_not_taken_for_the_new_one(self):
        """L. An older record mistaken for the migration being adopted.

        The server's previous migration was confirmed 2 s before; someone
        started a new one whose record appears 3 s after the 202. Today
        the batch pins the old record, never confirms the new migration and
        times out after an hour with the server in VERIFY_RESIZE.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.start_elsewhere(sid)
        fake.settle()
        fake.auto_confirm(sid)
        fake.settle()
        fake.advance(2)
        fake.timing['record_delay'] = 3
        fake.start_elsewhere(sid)
        fake.timing['record_delay'] = 0.5
        self.assertEqual('RESIZE', fake.server(sid)['status'])
        rc, rows = self.batch('vm1', '--confirm', '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertResult('confirmed', rows[sid])
        self.assertEqual(['confirmed', 'confirmed'],
                         [r['status'] for r in fake.records(sid)])

    def test_adopt_a_cold_migration_waiting_in_verify_resize(self):
        """Q (extra). Someone else's migration in VERIFY_RESIZE: --confirm.

        Today the batch takes the host it finds the server on (the
        destination) for its source: ``failed``, "in VERIFY_RESIZE on its
        source host compute2", nothing confirmed.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.start_elsewhere(sid)
        fake.settle()
        self.assertEqual('VERIFY_RESIZE', fake.server(sid)['status'])
        rc, rows = self.batch('vm1', '--confirm', '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertResult('confirmed', rows[sid])
        self.assertEqual(('ACTIVE', 'compute2'), (
            fake.server(sid)['status'],
            fake.server(sid)['OS-EXT-SRV-ATTR:host']))


class TestWatchConfirmAndProgress(UnkindNovaTestCase):

    def test_confirm_answered_503(self):
        """M1. watch --confirm: the first confirmResize gets a 503.

        Today a 5xx on the confirm is final: ``failed`` (exit 1), the
        server left in VERIFY_RESIZE.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.fail_request(action='confirmResize', status=503)
        rc, out = self.watch('vm1', '--start', '--confirm')
        self.assertEqual(0, rc)
        self.assertResult('confirmed', out)
        self.assertEqual('ACTIVE', fake.server(sid)['status'])

    def test_confirm_applied_reply_lost(self):
        """M2. watch --confirm: Nova confirms, the connection is reset.

        Today the connection error on the confirm is final: ``failed``
        (exit 1) although Nova confirmed.
        """
        fake = self.cloud()
        fake.add_server('vm1')
        fake.fail_request(action='confirmResize', status='reset',
                          applied=True)
        rc, out = self.watch('vm1', '--start', '--confirm')
        self.assertEqual(0, rc)
        self.assertResult('confirmed', out)

    def _live_progress_fails(self, status):
        fake = self.cloud()
        fake.timing['live_duration'] = 8
        fake.add_server('vm1')
        fake.fail_reads('/migrations/', status=status, times=None)
        rc, out = self.watch('vm1', '--start', '--live-migration',
                             stderr=Terminal())
        self.assertTrue(fake.count('GET', '/migrations/'))
        self.assertEqual(0, rc)
        self.assertResult('migrated', out)

    def test_live_progress_read_503(self):
        """M3. watch on a terminal: the live-progress read gets 503s.

        Today the cosmetic progress read, retried and failed, ends the
        command with an error (CommandError).
        """
        self._live_progress_fails(503)

    def test_live_progress_read_connection_reset(self):
        """M3. watch on a terminal: the live-progress read is reset.

        Today: CommandError, as with a 503.
        """
        self._live_progress_fails('reset')


class TestHiddenHosts(UnkindNovaTestCase):

    def test_watch_cold_confirm(self):
        """N1. A policy hides host names: watch --start --confirm.

        Today the unknown host (None) equals the unknown source (None):
        ``failed``, "in VERIFY_RESIZE on its source host None".
        """
        fake = self.cloud(hide_hosts=True)
        sid = fake.add_server('vm1')
        rc, out = self.watch('vm1', '--start', '--confirm')
        self.assertEqual(0, rc)
        self.assertResult('confirmed', out)
        self.assertIn('hidden by policy', out['Message'])
        self.assertNotEqual('compute1',
                            fake.server(sid)['OS-EXT-SRV-ATTR:host'])

    def test_watch_live(self):
        """N2. A policy hides host names: watch --start --live-migration.

        Today: ``failed``, "still on its source host None".
        """
        fake = self.cloud(hide_hosts=True)
        fake.add_server('vm1')
        rc, out = self.watch('vm1', '--start', '--live-migration')
        self.assertEqual(0, rc)
        self.assertResult('migrated', out)

    def test_batch_drain_auto(self):
        """N3. A policy hides host names: drain a host in auto mode.

        Today every server is skipped ("on no host"), exit 1.
        """
        fake = self.cloud(hide_hosts=True)
        live = [fake.add_server('vm%d' % n) for n in range(2)]
        cold = fake.add_server('off', status='SHUTOFF')
        fake.add_server('elsewhere', host='compute2')
        rc, rows = self.batch('--source-host', 'compute1', '--mode', 'auto',
                              '--confirm', '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertEqual(sorted(live + [cold]), sorted(rows))
        for sid in live:
            self.assertResult('migrated', rows[sid])
        self.assertResult('confirmed', rows[cold])
        self.assertEqual('SHUTOFF', fake.server(cold)['status'])


class TestNames(UnkindNovaTestCase):

    def test_exact_name_among_case_variants(self):
        """O. Servers named ``web`` and ``WEB``: watch web --start.

        Nova matches names as a case-insensitive regex (MySQL); today
        "More than one server is named 'web'" (CommandError).
        """
        fake = self.cloud()
        web = fake.add_server('web')
        other = fake.add_server('WEB')
        rc, out = self.watch('web', '--start')
        self.assertEqual(0, rc)
        self.assertEqual(web, out['Server ID'])
        self.assertResult('migrated', out)
        self.assertEqual([], fake.records(other))


class TestTenantResize(UnkindNovaTestCase):

    def test_a_tenants_resize_is_not_confirmed(self):
        """P. A tenant's own resize waits in VERIFY_RESIZE: batch --confirm.

        Today the batch adopts it as a migration and confirms the tenant's
        resize for them.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.resize(sid)
        fake.settle()
        self.assertEqual('VERIFY_RESIZE', fake.server(sid)['status'])
        rc, rows = self.batch('vm1', '--confirm', '--state-file', self.path)
        self.assertEqual(0, fake.count('POST', 'confirmResize'))
        self.assertResult('skipped', rows[sid])
        self.assertRegex(rows[sid]['Message'], r'(?i)\bresize\b')
        self.assertEqual(1, rc)
        self.assertEqual('VERIFY_RESIZE', fake.server(sid)['status'])
