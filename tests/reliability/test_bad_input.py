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

"""Bad input to both commands: the message, the exit code, and nothing
changed on the cloud, for every case of the docs' table.

With ``BAD_INPUT_TABLE`` set, the cases and what the user saw are written
there as the reStructuredText table the docs include.
"""

import os
import shutil
import tempfile
import time
import uuid

from tests.reliability import base

WATCH = ('server', 'migrate', 'watch')
BATCH = ('server', 'migrate', 'batch')


class TestBadInput(base.ReliabilityTestCase):

    def setUp(self):
        super().setUp()
        self.rows = []

    def snapshot(self, ids):
        """What must not change: each server's state and its records."""
        snapshot = {}
        for sid in ids:
            server = self._server(sid)
            snapshot[sid] = (server['status'],
                             server['OS-EXT-SRV-ATTR:host'],
                             len(self._records(sid)))
        return snapshot

    def attempt(self, what, args, rc, text, ids, user='admin'):
        before = self.snapshot(ids)
        result = self.openstack(*args, user=user, expect_rc=None)
        message = [line for line in result.stderr.strip().splitlines()
                   if line.strip()][-1:] or ['']
        self.rows.append((what, ' '.join(a or "''" for a in args),
                          result.returncode, message[0]))
        self.assertEqual(rc, result.returncode, '%s: %s' % (what,
                                                            result.stderr))
        self.assertIn(text, result.stderr, what)
        self.assertEqual('', result.stdout, what)
        time.sleep(0.5)  # a refused request must leave nothing behind
        self.assertEqual(before, self.snapshot(ids), what)

    def test_table(self):
        a, b = [s['id'] for s in self.seed('compute1', 2)]
        twin = 'twin-%s' % uuid.uuid4().hex[:6]
        self.cloud.seed_servers('compute2', 2, prefix=twin)
        twins = [s['id'] for s in self._list(twin)]
        for sid in twins:
            self._rename(sid, twin)
        [paused] = [s['id'] for s in self.seed('compute3', 1)]
        self._action(paused, {'pause': None})
        [mine] = [s['id'] for s in self.cloud.seed_servers(
            None, 1, prefix='member-%s' % uuid.uuid4().hex[:6],
            user='member')]
        ids = [a, b, paused, mine] + twins
        state = self.tmp_dir()
        empty = os.path.join(state, 'empty.txt')
        open(empty, 'w').close()
        comments = os.path.join(state, 'comments.txt')
        with open(comments, 'w') as f:
            f.write('# nothing but comments\n\n')
        existing = os.path.join(state, 'existing.jsonl')
        open(existing, 'w').close()
        garbage = os.path.join(state, 'garbage.jsonl')
        with open(garbage, 'w') as f:
            f.write('not a journal\n')
        W = WATCH
        B = BATCH
        cases = [
            # -- options --------------------------------------------------
            ('watch: no server', W, 2, 'required: <server>'),
            ('watch: --confirm with --revert', W + (a, '--confirm',
                                                    '--revert'),
             2, 'not allowed with'),
            ('watch: --interval 0', W + (a, '--interval', '0'), 2,
             'greater than 0'),
            ('watch: --timeout -1', W + (a, '--timeout', '-1'), 2,
             '0 (no limit)'),
            ('watch: --host without --start', W + (a, '--host', 'compute2'),
             2, 'with --start'),
            ('watch: --block-migration, cold', W + (a, '--start',
                                                    '--block-migration'),
             2, 'need --live-migration'),
            ('watch: --revert a live migration',
             W + (a, '--start', '--live-migration', '--revert'), 2,
             'cannot be reverted'),
            ('watch: --migration with --start',
             W + (a, '--start', '--migration', '1'), 2,
             'cannot be combined with --start'),
            ('watch: --migration not a number',
             W + (a, '--migration', 'abc'), 2, 'takes a migration ID'),
            ('watch: microversion too old',
             ('--os-compute-api-version', '2.53') + W + (a, '--start'), 2,
             '2.59 or greater'),
            ('batch: nothing selected', B, 2, 'select servers'),
            ('batch: --max-parallel 0', B + (a, '--max-parallel', '0'), 2,
             'must be 1 or more'),
            ('batch: unknown --mode', B + (a, '--mode', 'warp'), 2,
             'invalid choice'),
            ('batch: --block-migration, cold',
             B + (a, '--block-migration'), 2, 'live migrations'),
            ('batch: --live-migration with --mode cold',
             B + (a, '--live-migration', '--mode', 'cold'), 2,
             'contradicts --mode cold'),
            ('batch: --disable-reason alone',
             B + (a, '--disable-reason', 'x'), 2, 'needs --disable-source'),
            ('batch: --require-empty without --source-host',
             B + (a, '--require-empty'), 2,
             '--require-empty needs --source-host'),
            ('batch: empty --verify-command',
             B + (a, '--verify-command', ''), 2, 'is empty'),
            ('batch: --resume with a selection',
             B + ('--resume', garbage, '--source-host', 'compute1'), 2,
             'drop --source-host'),
            # -- names ----------------------------------------------------
            ('watch: no such server', W + ('no-such-server',), 1,
             'No server with a name or ID'),
            ('watch: no server with this UUID (Nova 404)',
             W + (str(uuid.uuid4()),), 1, 'No server with a name or ID'),
            ('watch: ambiguous name', W + (twin,), 1, twins[0]),
            ('watch: never migrated', W + (a,), 1, 'never been migrated'),
            ('watch: unknown target host',
             W + (a, '--start', '--host', 'compute9'), 1,
             '--host compute9: no such compute host'),
            ('batch: no such server', B + ('no-such-server',), 1,
             'No server with a name or ID'),
            ('batch: unknown --source-host',
             B + ('--source-host', 'compute9'), 1, 'no such compute host'),
            # -- files ----------------------------------------------------
            ('batch: --servers-from missing',
             B + ('--servers-from', '/nonexistent'), 2, 'cannot read'),
            ('batch: --servers-from a directory',
             B + ('--servers-from', state), 2, 'cannot read'),
            ('batch: --servers-from names nothing',
             B + ('--servers-from', comments), 2, 'names no server'),
            ('batch: --state-file exists',
             B + (a, '--state-file', existing), 1, 'already exists'),
            # -- journals -------------------------------------------------
            ('batch: --resume missing',
             B + ('--resume', os.path.join(state, 'none.jsonl')), 1,
             'no journal at'),
            ('batch: --resume empty', B + ('--resume', existing), 1,
             'is empty'),
            ('batch: --resume not a journal', B + ('--resume', garbage), 1,
             'damaged at line 1'),
            # -- Nova refuses ---------------------------------------------
            ('watch: 403, a member starts', W + (mine, '--start'), 1,
             'HTTP 403', 'member'),
            ('batch: 403, a member', B + (mine,), 1, 'HTTP 403', 'member'),
            ('watch: 404, migration of another server',
             W + (a, '--migration', '424242'), 1,
             'does not belong to server'),
            # Nova would answer 400; the plugin says it first.
            ('watch: target is the current host',
             W + (a, '--start', '--host', 'compute1'), 1,
             'is already on host compute1'),
            ('batch: --status unknown to Nova (400)',
             B + ('--source-host', 'compute1', '--status', 'warping'), 1,
             'HTTP 400'),
            ('watch: 409, paused server cold-migrated',
             W + (paused, '--start'), 1, 'HTTP 409'),
        ]
        for case in cases:
            what, args, rc, text = case[:4]
            user = case[4] if len(case) > 4 else 'admin'
            self.attempt(what, args, rc, text, ids, user=user)
        self.assertGreaterEqual(len(self.rows), 25)
        self.write_table()

    def tmp_dir(self):
        path = tempfile.mkdtemp(prefix='bad-input-')
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def _list(self, prefix):
        r = self.nova().get('/servers?all_tenants=1&name=%s' % prefix)
        return r.json()['servers']

    def _rename(self, sid, name):
        r = self.nova().put('/servers/%s' % sid,
                            json={'server': {'name': name}})
        self.assertEqual(200, r.status_code, r.text)

    def _action(self, sid, body):
        r = self.nova().post('/servers/%s/action' % sid, json=body)
        self.assertEqual(202, r.status_code, r.text)
        deadline = time.monotonic() + 30
        while self._server(sid)['OS-EXT-STS:task_state'] and \
                time.monotonic() < deadline:
            time.sleep(0.2)

    def write_table(self):
        path = os.environ.get('BAD_INPUT_TABLE')
        if not path:
            return
        lines = ['.. list-table::', '   :header-rows: 1',
                 '   :widths: 25 35 5 35', '',
                 '   * - case', '     - command', '     - exit',
                 '     - what the user sees (last line of stderr)']
        for what, args, rc, message in self.rows:
            lines += ['   * - %s' % what,
                      '     - ``openstack %s``' % _shorten(args),
                      '     - %d' % rc, '     - %s' % _rst(message)]
        with open(path, 'w') as f:
            f.write('\n'.join(lines) + '\n')


def _shorten(args):
    # IDs and temp paths change every run: show their kind.
    out = []
    for word in args.split(' '):
        if len(word) == 36 and word.count('-') == 4:
            word = '<server-id>'
        elif word.startswith('/tmp/'):
            word = '<%s>' % os.path.basename(word) if '.' in word \
                else '<a-directory>'
        out.append(word)
    return ' '.join(out)


def _rst(text):
    return ('``%s``' % text.replace('`', "'")) if text else '(nothing)'
