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

"""``openstack server migrate batch`` through the real CLI, real Nova."""

import collections
import datetime
import json
import os
import signal
import stat
import subprocess
import tempfile
import time
import uuid

from tests.functional import base

BATCH = ('server', 'migrate', 'batch')


def _t(text):
    value = datetime.datetime.fromisoformat(text)
    return value.replace(tzinfo=None)


class BatchTestCase(base.MiniCloudTestCase):

    def setUp(self):
        super().setUp()
        self.state = tempfile.mkdtemp(prefix='batch-state-')
        self.addCleanup(lambda: subprocess.run(['rm', '-rf', self.state]))

    def journal(self):
        return os.path.join(self.state, '%s.jsonl' % uuid.uuid4().hex[:8])

    def seed(self, host, count, stopped=0):
        prefix = 'b-%s' % uuid.uuid4().hex[:6]
        return self.cloud.seed_servers(host, count, stopped=stopped,
                                       prefix=prefix)

    def batch(self, *args, expect_rc=0, user='admin'):
        result = self.openstack(*(BATCH + args + ('-f', 'json')),
                                user=user, expect_rc=expect_rc)
        return {r['Server ID']: r for r in json.loads(result.stdout)}, result

    def records(self, server_id):
        return self.openstack_json('server', 'migration', 'list',
                                   '--server', server_id)

    def copy_span(self, server_id):
        """The migration's record, and when it held its hosts in Nova.

        From the record's creation to the confirm request: a slot frees when
        the confirm is sent (the copy is over), while the record only reads
        ``confirmed`` a moment later.
        """
        [record] = self.records(server_id)
        r = self.cloud.connection().compute.get(
            '/servers/%s/os-instance-actions' % server_id,
            microversion='2.84')
        [confirm] = [a for a in r.json()['instanceActions']
                     if a['action'] == 'confirmResize']
        return record, (_t(record['Created At']), _t(confirm['start_time']))

    def start_batch(self, *args, user='admin'):
        """A batch in the background, to be signalled."""
        cmd = self.cloud.cli(user) + list(BATCH + args + ('-f', 'json'))
        return subprocess.Popen(cmd, env=self.cloud.cli_env(),
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)

    def wait_for_event(self, path, event, count=1, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(path):
                with open(path) as f:
                    if f.read().count('"event":"%s"' % event) >= count:
                        return
            time.sleep(0.2)
        self.fail('no %s event in %s' % (event, path))


class TestDrain(BatchTestCase):

    def test_drain_host_auto_confirm(self):
        seeded = self.seed('compute1', 6, stopped=2)
        path = self.journal()
        rows, result = self.batch('--source-host', 'compute1', '--mode',
                                  'auto', '--confirm', '--interval', '1',
                                  '--disable-source', '--disable-reason',
                                  'kernel upgrade', '--state-file', path)
        self.assertEqual(sorted(s['id'] for s in seeded), sorted(rows))
        for server in seeded:
            row = rows[server['id']]
            view = self.server_view(server['id'])
            self.assertNotEqual('compute1', view['host'])
            self.assertEqual(server['status'], view['status'])  # SHUTOFF kept
            if server['status'] == 'SHUTOFF':
                self.assertEqual(('cold', 'confirmed'),
                                 (row['Mode'], row['Result']))
            else:
                self.assertEqual(('live', 'migrated'),
                                 (row['Mode'], row['Result']))
            [record] = self.records(server['id'])
            self.assertIn(record['Status'], ('confirmed', 'completed'))
        self.assertEqual([], self.openstack_json(
            'server', 'list', '--all-projects', '--host', 'compute1'))
        self.assertIn('6 of 6 servers migrated', result.stderr)
        # The source was disabled before the drain and stays disabled.
        [service] = self.openstack_json('compute', 'service', 'list',
                                        '--service', 'nova-compute',
                                        '--host', 'compute1', '--long')
        self.assertEqual(('disabled', 'kernel upgrade'),
                         (service['Status'], service['Disabled Reason']))
        self.assertIn('stays disabled', result.stderr)
        # The journal: 0600, a verdict per server, no credentials.
        self.assertEqual(0o600, stat.S_IMODE(os.stat(path).st_mode))
        with open(path) as f:
            text = f.read()
        self.assertEqual(6, text.count('"event":"verdict"'))
        self.assertNotIn('admin:admin', text)


class TestBatch(BatchTestCase):

    def test_dry_run_changes_nothing(self):
        seeded = self.seed('compute2', 3, stopped=1)
        ids = [s['id'] for s in seeded]
        self.cloud.requests(reset=True)
        rows, _ = self.batch(*ids, '--mode', 'live', '--dry-run')
        writes = [r for r in self.cloud.requests()
                  if not r.startswith('GET ')]
        self.assertEqual([], writes)
        results = sorted((r['Result'], r['Message']) for r in rows.values())
        self.assertEqual('planned', results[0][0])
        self.assertEqual(('skipped',), results[2][:1])
        self.assertIn('try --mode cold or auto', results[2][1])
        for sid in ids:
            self.assertEqual([], self.records(sid))

    def test_member_gets_403_and_nothing_moves(self):
        prefix = 'bm-%s' % uuid.uuid4().hex[:6]
        [server] = self.cloud.seed_servers(None, 1, prefix=prefix,
                                           user='member')
        result = self.openstack(*(BATCH + (server['id'], '--state-file',
                                           self.journal())),
                                user='member', expect_rc=1)
        self.assertIn("HTTP 403: Policy doesn't allow os_compute_api:"
                      "os-migrations:index", result.stderr)
        self.assertEqual('', result.stdout)
        self.assertEqual([], self.records(server['id']))

    def test_failing_destination_and_max_failures(self):
        seeded = self.seed('compute1', 4)
        ids = [s['id'] for s in seeded]
        self.cloud.fail_migrations(['compute3'], 'to')
        rows, result = self.batch(*ids, '--host', 'compute3', '--confirm',
                                  '--max-parallel', '1', '--max-failures',
                                  '1', '--interval', '1', '--state-file',
                                  self.journal(), expect_rc=1)
        results = [rows[i]['Result'] for i in ids]
        self.assertEqual(['failed', 'not-started', 'not-started',
                          'not-started'], results)
        self.assertIn('migrations to compute3 are set to fail',
                      rows[ids[0]]['Message'])
        for sid in ids[1:]:
            self.assertEqual([], self.records(sid))
        # With the failing host out of the way the rest succeed.
        self.cloud.fail_migrations(['compute3'], 'to')
        rows, _ = self.batch(*ids, '--host', 'compute2', '--confirm',
                             '--interval', '1', '--state-file',
                             self.journal())
        self.assertEqual({'confirmed'}, {r['Result'] for r in rows.values()})

    def test_some_fail_rest_succeed_exit_1(self):
        failing = self.seed('compute1', 2)
        fine = self.seed('compute3', 2)
        self.cloud.fail_migrations(['compute1'], 'from')
        ids = [s['id'] for s in failing + fine]
        rows, result = self.batch(*ids, '--confirm', '--interval', '1',
                                  '--state-file', self.journal(),
                                  expect_rc=1)
        for server in failing:
            row = rows[server['id']]
            self.assertEqual('failed', row['Result'])
            self.assertIn('migrations from compute1 are set to fail',
                          row['Message'])
            self.assertEqual('compute1', self.server_view(server['id'])[
                'host'])
        for server in fine:
            self.assertEqual('confirmed', rows[server['id']]['Result'])
        self.assertIn('2 of 4 servers migrated, 2 failed', result.stderr)

    def test_verify_command_failure_reverts(self):
        [server] = self.seed('compute2', 1)
        marker = os.path.join(self.state, 'verified')
        command = ('echo "$OSC_MIGRATE_SERVER_ID $OSC_MIGRATE_DEST_HOST" > '
                   '%s; echo app check failed; exit 4' % marker)
        rows, _ = self.batch(server['id'], '--verify-command', command,
                             '--interval', '1', '--state-file',
                             self.journal(), expect_rc=1)
        row = rows[server['id']]
        self.assertEqual('reverted', row['Result'])
        self.assertIn('verify command exited 4: app check failed',
                      row['Message'])
        self.assertEqual('compute2', self.server_view(server['id'])['host'])
        with open(marker) as f:
            self.assertIn(server['id'], f.read())

    def test_limits_never_exceeded(self):
        seeded = self.seed('compute1', 5)
        ids = [s['id'] for s in seeded]
        self.cloud.set_delay(2)
        self.batch(*ids, '--confirm', '--max-parallel', '2', '--interval',
                   '1', '--state-file', self.journal())
        spans = [self.copy_span(sid)[1] for sid in ids]
        most = max(sum(1 for a, b in spans if a <= t < b)
                   for t, _ in spans)
        self.assertLessEqual(most, 2)
        self.assertGreaterEqual(most, 2)  # it did run two at a time

    def test_per_source_limit_observed_in_novas_records(self):
        by_source = {'compute1': self.seed('compute1', 3),
                     'compute3': self.seed('compute3', 3)}
        ids = [s['id'] for group in by_source.values() for s in group]
        self.cloud.set_delay(2)
        self.batch(*ids, '--confirm', '--max-parallel', '4',
                   '--max-per-source', '1', '--max-per-destination', '4',
                   '--interval', '1', '--state-file', self.journal())
        spans = collections.defaultdict(list)
        for sid in ids:
            record, span = self.copy_span(sid)
            spans[record['Source Compute']].append(span)
        every = [s for group in spans.values() for s in group]
        for source, group in spans.items():
            most = max(sum(1 for a, b in group if a <= t < b)
                       for t, _ in group)
            self.assertEqual(1, most, source)
        overall = max(sum(1 for a, b in every if a <= t < b)
                      for t, _ in every)
        self.assertEqual(2, overall)  # one from each source at once

    def test_adopts_a_migration_started_elsewhere(self):
        [busy, idle] = self.seed('compute2', 2)
        self.cloud.set_delay(3)
        self.openstack('server', 'migrate', busy['id'])  # core OSC
        listed = os.path.join(self.state, 'list')
        with open(listed, 'w') as f:
            f.write('# the two of them\n%s\n%s  # idle\n' % (
                busy['name'], idle['id']))
        rows, result = self.batch('--servers-from', listed, '--confirm',
                                  '--interval', '1', '--quiet',
                                  '--state-file', self.journal())
        self.assertEqual({'confirmed'}, {r['Result'] for r in rows.values()})
        self.assertEqual('', result.stderr)  # --quiet
        for server in (busy, idle):
            self.assertEqual(1, len(self.records(server['id'])))

    def test_sigkill_then_resume_migrates_each_once(self):
        seeded = self.seed('compute2', 4)
        ids = [s['id'] for s in seeded]
        path = self.journal()
        self.cloud.set_delay(3)
        proc = self.start_batch(*ids, '--confirm', '--interval', '1',
                                '--state-file', path)
        self.wait_for_event(path, 'submitted', 2)
        proc.kill()
        proc.communicate()
        self.cloud.set_delay(0)
        rows, _ = self.batch('--resume', path, '--interval', '1')
        self.assertEqual({'confirmed'}, {r['Result'] for r in rows.values()})
        for sid in ids:
            self.assertEqual(1, len(self.records(sid)), sid)
            self.assertNotEqual('compute2', self.server_view(sid)['host'])

    def test_sigint_exit_130_then_resume(self):
        seeded = self.seed('compute3', 3)
        ids = [s['id'] for s in seeded]
        path = self.journal()
        self.cloud.set_delay(3)
        proc = self.start_batch(*ids, '--confirm', '--max-parallel', '1',
                                '--interval', '1', '--state-file', path)
        self.wait_for_event(path, 'submitted', 1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        self.assertEqual(130, proc.returncode, err)
        partial = json.loads(out)  # the partial report still parses
        self.assertEqual(['interrupted', 'not-started', 'not-started'],
                         sorted(r['Result'] for r in partial))
        self.assertIn('--resume %s' % path, err)
        self.cloud.set_delay(0)
        rows, _ = self.batch('--resume', path, '--interval', '1')
        self.assertEqual({'confirmed'}, {r['Result'] for r in rows.values()})
        for sid in ids:
            self.assertEqual(1, len(self.records(sid)))

    def test_journal_of_another_cloud_or_options_refused(self):
        [server] = self.seed('compute1', 1)
        path = self.journal()
        self.batch(server['id'], '--confirm', '--interval', '1',
                   '--state-file', path)
        result = self.openstack(*(BATCH + ('--resume', path, '--mode',
                                           'live')), expect_rc=2)
        self.assertIn('contradict the journal', result.stderr)
        with open(path) as f:
            lines = f.read().splitlines()
        header = json.loads(lines[0])
        header['cloud']['compute'] = 'https://other.example:8774/v2.1'
        with open(path, 'w') as f:
            f.write('\n'.join([json.dumps(header)] + lines[1:]) + '\n')
        result = self.openstack(*(BATCH + ('--resume', path)), expect_rc=1)
        self.assertIn('another cloud', result.stderr)

    def test_bad_input(self):
        [server] = self.seed('compute1', 1)
        for args, rc, text in [
                ((), 2, 'select servers'),
                ((server['id'], '--block-migration'), 2, 'live migrations'),
                (('--source-host', 'compute9'), 1, 'no such compute host'),
                ((server['id'], '--servers-from', '/nonexistent'), 2,
                 'cannot read'),
                (('--resume', '/nonexistent.jsonl'), 1, 'no journal'),
        ]:
            result = self.openstack(*(BATCH + args), expect_rc=rc)
            self.assertIn(text, result.stderr, args)
            self.assertEqual('', result.stdout, args)
        self.assertEqual([], self.records(server['id']))
