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

"""Tenant-controlled names are data everywhere; secrets stay out of files;
a member cannot do through the plugin what Nova forbids."""

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile

from tests.reliability import base

# Each would run a command if it ever reached a shell unquoted.
HOSTILE = ['$(touch pwned-dollar)', '; touch pwned-semicolon',
           '`touch pwned-backtick`', 'it\'s "quoted" \\ $HOME',
           '| touch pwned-pipe &']


class TestHostileNames(base.ReliabilityTestCase):

    def setUp(self):
        super().setUp()
        self.cwd = tempfile.mkdtemp(prefix='hostile-')
        self.addCleanup(shutil.rmtree, self.cwd, True)

    def named(self, host, names):
        seeded = self.seed(host, len(names))
        for server, name in zip(seeded, names):
            r = self.nova().put('/servers/%s' % server['id'],
                                json={'server': {'name': name}})
            self.assertEqual(200, r.status_code, r.text)
        return [s['id'] for s in seeded]

    def assert_nothing_ran(self):
        for where in (self.cwd, self.state, os.getcwd(), '/tmp'):
            self.assertEqual([], [f for f in os.listdir(where)
                                  if f.startswith('pwned')], where)

    def test_batch_verify_command_progress_journal_outputs(self):
        ids = self.named('compute1', HOSTILE)
        before = self.newest_records(ids)
        path = self.journal()
        log = os.path.join(self.cwd, 'names.log')
        # The verify command gets the name in its environment only.
        verify = 'printf "%%s\\n" "$OSC_MIGRATE_SERVER_NAME" >> %s' % log
        proc = subprocess.Popen(
            self.command(*ids, '--confirm', '--interval', '1',
                         '--max-parallel', '5', '--max-per-source', '5',
                         '--max-per-destination', '5',
                         '--verify-command', verify, '--state-file', path),
            env=self.env, cwd=self.cwd, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        run = self.finish(proc)
        results = self.check('hostile names', ids, run, before,
                             {sid: 'compute1' for sid in ids}, path)
        self.assertEqual({'confirmed'}, set(results.values()))
        self.assert_nothing_ran()
        with open(log) as f:
            self.assertEqual(sorted(HOSTILE), sorted(f.read().splitlines()))
        self.assertEqual(sorted(HOSTILE),
                         sorted(r['Name'] for r in run.rows.values()))
        for name in HOSTILE:  # progress shows each name as it is
            self.assertIn(name, run.stderr)
        names = set()
        with open(path) as f:
            for line in f:
                names.update(_strings(json.loads(line)))
        self.assertEqual(set(), set(HOSTILE) - names)
        # The report in every list format.
        for fmt in ('table', 'csv', 'value', 'yaml'):
            out = self.openstack('server', 'migrate', 'batch', '--resume',
                                 path, '-f', fmt, expect_rc=None)
            self.assertIn('$(touch pwned-dollar)', out.stdout, fmt)
        self.assert_nothing_ran()

    def test_watch_shell_output_is_safe_to_eval(self):
        [sid] = self.named('compute2', ['$(touch pwned-eval) `touch '
                                        'pwned-tick` "q" \\'])
        out = self.openstack('server', 'migrate', 'watch', '--start',
                             '--confirm', '--interval', '1', sid,
                             '-f', 'shell', '--prefix', 'm_')
        # What a script does with -f shell output.
        script = out.stdout + 'printf "%s" "$m_server_name"\n'
        shown = subprocess.run(['bash', '-c', script], cwd=self.cwd,
                               capture_output=True, text=True)
        self.assertEqual(0, shown.returncode, shown.stderr)
        self.assertEqual('$(touch pwned-eval) `touch pwned-tick` "q" \\',
                         shown.stdout)
        self.assert_nothing_ran()
        [migration] = re.findall(r'^m_migration_id="(\d+)"$', out.stdout,
                                 re.M)
        for fmt in ('json', 'yaml', 'value', 'table'):
            out = self.openstack('server', 'migrate', 'watch', sid,
                                 '--migration', migration, '-f', fmt)
            self.assertIn('$(touch pwned-eval)', out.stdout, fmt)


class TestSecrets(base.ReliabilityTestCase):

    def test_journal_and_report_hold_no_credentials(self):
        ids = [s['id'] for s in self.seed('compute3', 2)]
        path = self.journal()
        run = self.run_batch(*ids, '--confirm', '--interval', '1',
                             '--state-file', path)
        self.assertEqual(0, run.rc, run.stderr)
        self.assertEqual(0o600, stat.S_IMODE(os.stat(path).st_mode))
        with open(path) as f:
            journal = f.read()
        # The clouds.yaml token (user:project) and its auth section.
        for secret in ('admin:admin', 'token', 'auth_type', 'password'):
            self.assertNotIn(secret, journal.lower())
            self.assertNotIn(secret, run.stdout.lower())
            self.assertNotIn(secret, run.stderr.lower())


class TestMemberForbidden(base.ReliabilityTestCase):

    def test_403_reported_never_retried_nothing_moves(self):
        [mine] = self.cloud.seed_servers(None, 1, prefix='sec-member',
                                         user='member')
        before = self._server(mine['id'])['OS-EXT-SRV-ATTR:host']
        self.cloud.requests(reset=True)
        for args in (('server', 'migrate', 'batch', mine['id'], '--confirm'),
                     ('server', 'migrate', 'watch', '--start',
                      mine['id'])):
            result = self.openstack(*args, user='member', expect_rc=1)
            self.assertIn('HTTP 403', result.stderr)
        requests = self.cloud.requests()
        # Each command: every project's migrations, refused, then its own
        # project's (what Nova lets a manager read), refused: two different
        # reads, neither retried; nothing submitted.
        reads = [r for r in requests
                 if r.startswith('GET /v2.1/os-migrations')]
        self.assertEqual(['GET /v2.1/os-migrations?limit=1',
                          'GET /v2.1/os-migrations?limit=1&project_id=demo'
                          ] * 2, reads, requests)
        self.assertEqual([], [r for r in requests if not r.startswith('GET')])
        self.assertEqual(before,
                         self._server(mine['id'])['OS-EXT-SRV-ATTR:host'])


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
