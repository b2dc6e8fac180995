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

"""Hints in the commands: after Nova's reason in Message, once on stderr."""

import io
import json

from osc_lib import exceptions

from osc_migrate_plus.engine import batch as batch_engine
from osc_migrate_plus.engine import hints
from osc_migrate_plus.engine import plan
from osc_migrate_plus import model
from osc_migrate_plus.v1 import batch
from osc_migrate_plus.v1 import batch_progress
from osc_migrate_plus.v1 import progress
from osc_migrate_plus.v1 import watch
from tests.unit.engine import test_hints
from tests.unit import fakenova
from tests.unit.v1 import test_unkind_nova as base

# In full; the API shows it cut at 255 bytes, before ssh's words.
SSH_FAILED = test_hints.SSH_FAILED % 'Host key verification failed.'
NO_ROOM = 'No valid host was found. There are not enough hosts available.'


class HintsTestCase(base.UnkindNovaTestCase):

    def run_cmd(self, command, *args, quiet=False):
        stderr = io.StringIO()
        if quiet:
            args = args + ('--quiet',)
        rc, out = self._run(command, args, stderr)
        return rc, out, stderr.getvalue()

    def assertHinted(self, key, message):  # noqa: N802
        hint = hints.hint_for(message)
        self.assertIsNotNone(hint, message)
        self.assertEqual(key, hint.key)
        self.assertTrue(message.endswith(' Hint: ' + hint.text), message)
        return hint


class TestBatch(HintsTestCase):

    def test_two_servers_one_cause_hint_once(self):
        fake = self.cloud()
        sids = [fake.add_server('vm%d' % i) for i in range(3)]
        fake.fail_migrations(servers=sids[:2], message=SSH_FAILED)
        for quiet in (False, True):
            rc, rows, stderr = self.run_cmd(
                batch.BatchMigrate, *sids, '--confirm', '--state-file',
                self.path + str(quiet), quiet=quiet)
            self.assertEqual(1, rc)
            by_id = {r['Server ID']: r for r in rows}
            for sid in sids[:2]:
                row = by_id[sid]
                self.assertEqual('failed', row['Result'])
                # Nova's reason (as the instance action has it), the hint.
                self.assertIn('not able to execute ssh command',
                              row['Message'])
                hint = self.assertHinted('ssh', row['Message'])
            self.assertEqual('', by_id[sids[2]]['Message'])
            self.assertEqual(1, stderr.count(progress.hint_line(hint)),
                             stderr)
            # Each server's failure line says Nova's reason, not the hint.
            self.assertEqual(2, stderr.count('not able to execute ssh'),
                             stderr)
            self.assertEqual(1, stderr.count('known_hosts'), stderr)
            fake.clear_failures()
            fake.fail_migrations(servers=sids[:2], message=SSH_FAILED)
            sids[2] = fake.add_server('vm-again-%s' % quiet)

    def test_journal_keeps_the_message_with_its_hint(self):
        fake = self.cloud()
        sid = fake.add_server('vm')
        fake.fail_migrations(servers=[sid], message=NO_ROOM)
        rc, rows, _ = self.run_cmd(batch.BatchMigrate, sid, '--state-file',
                                   self.path)
        self.assertEqual(1, rc)
        self.assertHinted('no-valid-host', rows[0]['Message'])
        with open(self.path) as f:
            verdicts = [json.loads(line) for line in f
                        if '"verdict"' in line]
        self.assertEqual(rows[0]['Message'], verdicts[-1]['message'])

    def test_unknown_reason_no_hint(self):
        fake = self.cloud()
        sid = fake.add_server('vm')
        fake.fail_migrations(servers=[sid])  # the fake's own words
        rc, rows, stderr = self.run_cmd(batch.BatchMigrate, sid,
                                        '--state-file', self.path)
        self.assertEqual(1, rc)
        self.assertIn('set to fail', rows[0]['Message'])
        self.assertNotIn('Hint', rows[0]['Message'])
        self.assertNotIn('hint', stderr)

    def test_member_refused_before_anything_moves(self):
        fake = self.cloud(caller=fakenova.Caller('member', 'p1'))
        sid = fake.add_server('vm')
        error = self.assertRaises(exceptions.CommandError, self.run_cmd,
                                  batch.BatchMigrate, sid, '--state-file',
                                  self.path)
        self.assertIn("Policy doesn't allow os_compute_api:os-migrations:"
                      "index to be performed.", str(error))
        self.assertHinted('policy', str(error))
        self.assertEqual([], [r for r in fake.requests if r[1] != 'GET'])


class TestWatch(HintsTestCase):

    def test_failure_hint_in_message_and_once_on_stderr(self):
        fake = self.cloud()
        sid = fake.add_server('vm')
        fake.fail_migrations(servers=[sid], message=NO_ROOM)
        rc, out, stderr = self.run_cmd(watch.WatchMigration, sid, '--start')
        self.assertEqual(1, rc)
        hint = self.assertHinted('no-valid-host', out['Message'])
        self.assertIn('capacity estimate', hint.text)
        self.assertEqual(1, stderr.count(progress.hint_line(hint)), stderr)
        # Quiet: still said, once (it is for the person, as errors are).
        fake.clear_failures()
        sid = fake.add_server('vm2')
        fake.fail_migrations(servers=[sid], message=NO_ROOM)
        rc, out, stderr = self.run_cmd(watch.WatchMigration, sid, '--start',
                                       quiet=True)
        self.assertEqual(progress.hint_line(hint) + '\n', stderr)

    def test_start_refused_carries_the_hint(self):
        fake = self.cloud(caller=fakenova.Caller('member', 'p1'))
        sid = fake.add_server('vm')
        error = self.assertRaises(exceptions.CommandError, self.run_cmd,
                                  watch.WatchMigration, sid, '--start')
        self.assertHinted('policy', str(error))


class TestReporters(HintsTestCase):

    def entry(self, name, result, message):
        server = model.Server(name, name, 'ACTIVE', None, 'c1')
        entry = batch_engine.new_entry(
            plan.PlanItem(server, model.Kind.COLD, plan.PLANNED, ''),
            batch_engine.Options())
        entry.state = batch_engine.State.DONE
        entry.result = result
        entry.message, entry.hint = hints.annotate(message)
        return entry

    def test_batch_progress_each_cause_once(self):
        out = io.StringIO()
        p = batch_progress.BatchProgress(out, tty=False)
        failed = model.Result.FAILED
        for name, reason in (('a', NO_ROOM), ('b', NO_ROOM),
                             ('c', SSH_FAILED), ('d', 'unknown')):
            p.event(self.entry(name, failed, reason), 'failed: x')
        text = out.getvalue()
        self.assertEqual(1, text.count('hint (no-valid-host): '))
        self.assertEqual(1, text.count('hint (ssh-host-key): '))
        self.assertEqual(2, text.count('hint ('))
        self.assertEqual(6, len(text.splitlines()))

    def test_watch_progress_each_cause_once(self):
        out = io.StringIO()
        p = progress.StderrProgress(out, tty=False)
        hint = hints.hint_for(NO_ROOM)
        p.hint(hint)
        p.hint(hint)
        self.assertEqual(progress.hint_line(hint) + '\n', out.getvalue())
