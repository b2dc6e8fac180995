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

"""A damaged, missing or busy journal: resume what can be, refuse the rest,
and change nothing on the cloud when refusing."""

from tests.reliability import base


class TestJournalDamage(base.ReliabilityTestCase):

    def interrupted_batch(self, count=2):
        """A batch killed mid-flight: its journal, servers and records."""
        seeded = self.seed('compute1', count)
        ids = [s['id'] for s in seeded]
        before = self.newest_records(ids)
        path = self.journal()
        self.cloud.set_delay(3)
        proc = self.start(*ids, '--confirm', '--interval', '1',
                          '--state-file', path)
        self.wait_for_event(path, 'submitted', 1)
        proc.kill()
        proc.communicate()
        self.cloud.set_delay(0)
        self.settle(ids)
        return path, ids, before, {sid: 'compute1' for sid in ids}

    def refused(self, path, text, rc=1):
        """--resume is refused with ``text`` and sends Nova no change."""
        self.cloud.requests(reset=True)
        run = self.run_batch('--resume', path)
        self.assertEqual(rc, run.rc, run.stderr)
        self.assertIn(text, run.stderr)
        self.assertEqual('', run.stdout)
        self.assertEqual([], [r for r in self.cloud.requests()
                              if not r.startswith('GET ')])
        return run

    def test_torn_last_line_is_cut_and_the_batch_resumes(self):
        path, ids, before, sources = self.interrupted_batch()
        with open(path, 'a') as f:
            f.write('{"type":"event","server":"%s","ev' % ids[0])
        run = self.run_batch('--resume', path, '--interval', '1')
        self.assertIn('torn', run.stderr)
        results = self.check('journal: torn last line', ids, run, before,
                             sources, path, faults=1)
        self.assertEqual({'confirmed'}, set(results.values()))

    def test_garbage_middle_line_is_refused_with_its_number(self):
        path, ids, _, _ = self.interrupted_batch()
        with open(path) as f:
            lines = f.read().splitlines(True)
        lines.insert(2, 'this is not json\n')
        with open(path, 'w') as f:
            f.writelines(lines)
        self.refused(path, 'damaged at line 3')

    def test_empty_file_is_refused(self):
        path = self.journal()
        open(path, 'w').close()
        self.refused(path, 'is empty')

    def test_missing_file_is_refused(self):
        self.refused(self.journal(), 'no journal at')

    def test_a_running_batch_holds_its_journal(self):
        seeded = self.seed('compute2', 2)
        ids = [s['id'] for s in seeded]
        before = self.newest_records(ids)
        path = self.journal()
        self.cloud.set_delay(4)
        proc = self.start(*ids, '--confirm', '--interval', '1',
                          '--state-file', path)
        self.wait_for_event(path, 'submitted', 1)
        second = self.run_batch('--resume', path)
        self.assertEqual(1, second.rc, second.stderr)
        self.assertIn('in use by a running batch', second.stderr)
        self.assertEqual('', second.stdout)
        run = self.finish(proc)
        results = self.check('journal: concurrent resume refused', ids, run,
                             before, {sid: 'compute2' for sid in ids}, path,
                             faults=1)
        self.assertEqual({'confirmed'}, set(results.values()))
