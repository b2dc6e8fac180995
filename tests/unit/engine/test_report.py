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

"""The report rebuilt from journals: finished, interrupted, resumed, damaged.

Journals are written by the real batch (``Runner`` on the fake Nova), by the
real ``Journal`` class, or are real journals the functional tests wrote
(tests/unit/data/).
"""

import os

import fixtures
import testtools

from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import report
from osc_migrate_plus import model
from osc_migrate_plus.v1 import batch as batch_cmd
from tests.unit.engine import test_batch
from tests.unit import fakenova

R = model.Result
DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'data')
HEADER = {'options': {'mode': 'cold', 'confirm': True},
          'limits': {'max_parallel': 2},
          'selection': {'servers': [], 'source_host': 'compute1'}}


def plan_item(sid, name='vm', verdict='planned', reason=''):
    return {'id': sid, 'name': name, 'project_id': 'p1',
            'source': 'compute1', 'status': 'ACTIVE', 'mode': 'cold',
            'verdict': verdict, 'reason': reason}


class TestFromTheBatch(test_batch.RunnerTestCase):
    """Rows rebuilt from the journal are the rows batch printed."""

    header = HEADER

    def setUp(self):
        super().setUp()
        # Journal timestamps on the client's (simulated) clock, so that
        # phases have their simulated lengths.
        self.useFixture(fixtures.MonkeyPatch(
            'osc_migrate_plus.engine.journal.datetime',
            fakenova._client_datetime(self.nova)))

    def rebuilt(self):
        return report.build(self.path, running=False)

    def assertSameRows(self, entries, rebuilt):  # noqa: N802
        expected = sorted(batch_cmd.BatchMigrate._row(e)
                          for e in entries.values())
        self.assertEqual(expected, sorted(s.row() for s in rebuilt.servers))

    def test_finished_with_a_failure(self):
        sids = self.servers(3)
        self.nova.fail_migrations(servers=[sids[1]], message='No valid host')
        completed, entries = self.run_batch(sids, confirm=True,
                                            max_parallel=2)
        self.journal.close()
        rebuilt = self.rebuilt()
        self.assertSameRows(entries, rebuilt)
        self.assertEqual(report.FINISHED, rebuilt.state)
        self.assertEqual(
            batch_cmd.batch_exit_code(list(entries.values()), completed),
            batch_cmd.exit_code_for([s.result for s in rebuilt.servers],
                                    rebuilt.completed))
        self.assertEqual({'servers': 3, 'done': 2, 'failed': 1,
                          'skipped': 0, 'inflight': 0, 'queued': 0},
                         rebuilt.counts())
        by_id = {s.id: s for s in rebuilt.servers}
        good = by_id[sids[0]]
        self.assertIsNotNone(good.dest)
        self.assertNotEqual('compute1', good.dest)
        self.assertGreater(good.duration, 0)
        # Its phases, in order, end to end.
        phases = [s.phase for s in good.spans]
        self.assertEqual([report.QUEUED, report.MIGRATING,
                          report.VERIFY_RESIZE, report.CONFIRMING],
                         [p for i, p in enumerate(phases)
                          if i == 0 or phases[i - 1] != p])
        for before, after in zip(good.spans, good.spans[1:]):
            self.assertEqual(before.end, after.start)
        # The failure is marked with Nova's reason.
        [mark] = by_id[sids[1]].marks
        self.assertEqual('failed', mark.what)
        self.assertIn('No valid host', mark.message)
        # Never more in flight than --max-parallel.
        levels = [n for _, n in rebuilt.in_flight()]
        self.assertEqual(2, max(levels))
        self.assertEqual(0, levels[-1])

    def test_interrupted(self):
        sids = self.servers(3)
        self.nova.timing['cold_duration'] = 30
        completed, entries = self.run_batch(
            sids, confirm=True, max_parallel=1,
            stop_when=lambda: self.nova.now > 5)
        self.assertFalse(completed)
        self.journal.close()
        rebuilt = self.rebuilt()
        self.assertSameRows(entries, rebuilt)
        self.assertEqual(report.INTERRUPTED, rebuilt.state)
        self.assertEqual('interrupted', rebuilt.runs[-1].how)
        self.assertEqual(130, batch_cmd.exit_code_for(
            [s.result for s in rebuilt.servers], rebuilt.completed))
        self.assertEqual((1, 2, 0), (rebuilt.counts()['inflight'],
                                     rebuilt.counts()['queued'],
                                     rebuilt.counts()['failed']))

    def test_a_live_batch_holds_it_running(self):
        sid = self.nova.add_server('vm')
        self.journal.write({'type': 'plan', 'servers': [plan_item(sid)]})
        self.journal.event(sid, 'submitting', baseline_id=0, attempt=1)
        self.journal.event(sid, 'submitted')
        # self.journal is open and locked, as by a running batch.
        rebuilt = report.build(self.path)
        self.assertEqual(report.RUNNING, rebuilt.state)
        [row] = rebuilt.servers
        self.assertIsNone(row.result)
        self.assertEqual('inflight', row.standing)
        self.assertIsNone(rebuilt.finished)
        # The probe changed nothing: the batch still writes, and resuming
        # it is still refused.
        self.journal.event(sid, 'migration', migration_id=1)
        self.assertRaises(jrn.JournalBusy, jrn.Journal.reopen, self.path)
        self.journal.close()
        self.assertEqual(report.INTERRUPTED,
                         report.build(self.path).state)


class TestJournals(testtools.TestCase):
    """Journals written record by record with the real Journal class."""

    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'j.jsonl')
        self.journal = jrn.Journal.create(self.path, HEADER)
        self.addCleanup(self.journal.close)

    def build(self):
        self.journal.close()
        return report.build(self.path)

    def test_killed_in_flight_then_resumed_to_the_end(self):
        a, b, c = 'a', 'b', 'c'
        j = self.journal
        j.write({'type': 'plan', 'servers': [plan_item(a), plan_item(b),
                                             plan_item(c)]})
        j.event(a, 'submitting', baseline_id=0, attempt=1)
        j.event(a, 'submitted')
        j.event(a, 'migration', migration_id=7)
        # Killed: no verdict, no 'interrupted'.
        j.close()
        killed = report.build(self.path)
        self.assertEqual(report.INTERRUPTED, killed.state)
        rows = {s.id: s for s in killed.servers}
        self.assertEqual((R.INTERRUPTED, R.NOT_STARTED, R.NOT_STARTED),
                         (rows[a].result, rows[b].result, rows[c].result))
        self.assertEqual('stopped', killed.runs[-1].how)
        # The resume adopts a, submits b and c.
        j = jrn.Journal.reopen(self.path)
        self.addCleanup(j.close)
        j.write({'type': 'resumed'})
        j.event(a, 'adopted', migration_id=7, baseline_id=0)
        j.event(a, 'verdict', result='confirmed', message='',
                migration_id=7, source='compute1', dest='compute2',
                mode='cold', attempts=1, duration=12.5, name='vm')
        for sid in (b, c):
            j.event(sid, 'submitting', baseline_id=0, attempt=1)
            j.event(sid, 'submitted')
        j.event(b, 'verdict', result='confirmed', message='')
        j.event(c, 'verdict', result='timeout', message='timed out')
        j.close()
        done = report.build(self.path)
        self.assertEqual(report.FINISHED, done.state)
        self.assertEqual(2, len(done.runs))
        rows = {s.id: s for s in done.servers}
        self.assertEqual(('compute1', 'compute2', 'cold', 1, 12.5),
                         (rows[a].source, rows[a].dest, rows[a].mode,
                          rows[a].attempts, rows[a].duration))
        # A verdict of an older batch: no destination, no duration.
        self.assertEqual((None, None, 1), (rows[b].dest, rows[b].duration,
                                           rows[b].attempts))
        self.assertEqual(3, batch_cmd.exit_code_for(
            [s.result for s in done.servers], done.completed))

    def test_a_timeout_reopened_by_a_resume_that_was_killed(self):
        j = self.journal
        j.write({'type': 'plan', 'servers': [plan_item('a')]})
        j.event('a', 'submitting', baseline_id=0, attempt=1)
        j.event('a', 'submitted')
        j.event('a', 'verdict', result='timeout', message='timed out')
        j.close()
        self.assertEqual(report.FINISHED, report.build(self.path).state)
        j = jrn.Journal.reopen(self.path)
        self.addCleanup(j.close)
        j.write({'type': 'resumed'})  # then killed before anything else
        j.close()
        rebuilt = report.build(self.path)
        # --resume would take it up again: not finished, and not 'timeout'.
        self.assertEqual(report.INTERRUPTED, rebuilt.state)
        self.assertEqual(R.INTERRUPTED, rebuilt.servers[0].result)
        self.assertEqual(jrn.SUBMITTED, jrn.reopened(
            jrn.replay(self.path).servers['a']))

    def test_interrupted_then_resumed_and_still_running(self):
        j = self.journal
        j.write({'type': 'plan', 'servers': [plan_item('a'), plan_item('b')]})
        j.event('a', 'submitting', baseline_id=0, attempt=1)
        j.event('a', 'submit-unanswered', message='reset')
        j.event('a', 'interrupted', migration_id=None)
        j.write({'type': 'interrupted'})
        j.close()
        stopped = report.build(self.path)
        self.assertEqual((report.INTERRUPTED, 'interrupted'),
                         (stopped.state, stopped.runs[-1].how))
        self.assertEqual([R.INTERRUPTED, R.NOT_STARTED],
                         [s.result for s in stopped.servers])
        # The resume looks for a's lost request (nothing journaled yet).
        j = jrn.Journal.reopen(self.path)
        self.addCleanup(j.close)
        j.write({'type': 'resumed'})
        running = report.build(self.path)
        self.assertEqual(report.RUNNING, running.state)
        self.assertEqual([(None, 'inflight'), (None, 'queued')],
                         [(s.result, s.standing) for s in running.servers])
        self.assertEqual(2, len(running.runs))

    def test_skipped_in_the_plan(self):
        self.journal.write({'type': 'plan', 'servers': [
            plan_item('a', verdict='skipped', reason='server is ERROR')]})
        rebuilt = self.build()
        [row] = rebuilt.servers
        self.assertEqual((R.SKIPPED, 'server is ERROR', 0),
                         (row.result, row.message, row.attempts))
        self.assertEqual(report.FINISHED, rebuilt.state)
        self.assertEqual(1, rebuilt.counts()['skipped'])

    def test_a_torn_last_line_is_tolerated_as_resume_does(self):
        self.journal.write({'type': 'plan', 'servers': [plan_item('a')]})
        self.journal.close()
        with open(self.path, 'a') as f:
            f.write('{"type":"event","server":"a","ev')
        rebuilt = report.build(self.path)
        self.assertTrue(rebuilt.torn)
        self.assertEqual(jrn.replay(self.path).torn, rebuilt.torn)


class TestDamaged(testtools.TestCase):
    """A damaged journal: the very message --resume gives."""

    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'j.jsonl')

    def write(self, text):
        with open(self.path, 'w') as f:
            f.write(text)

    def assertSameError(self):  # noqa: N802
        expected = self.assertRaises(jrn.JournalError, jrn.replay, self.path)
        got = self.assertRaises(jrn.JournalError, report.build, self.path)
        self.assertEqual(str(expected), str(got))
        self.assertIn(self.path, str(got))
        return str(got)

    def test_kinds_of_damage(self):
        header = '{"type":"header","version":1,"ts":"2026-01-01T00:00:00Z"}'
        for text, words in (
                ('', 'is empty'),
                ('{"type":"plan"}\n', 'does not start with a batch header'),
                ('{"type":"header","version":7}\n', 'format version 7'),
                (header + '\nnot json\n{"type":"resumed"}\n', 'line 2'),
                (header + '\n[1, 2]\n', 'line 2: not a journal record'),
                (header + '\n{"type":"event","event":"submitted"}\n',
                 'an event without a server')):
            self.write(text)
            self.assertIn(words, self.assertSameError())

    def test_missing(self):
        self.assertIn('no journal at', self.assertSameError())

    def test_a_plan_without_ids(self):
        self.write('{"type":"header","version":1}\n'
                   '{"type":"plan","servers":[{"name":"x"}]}\n')
        e = self.assertRaises(jrn.JournalError, report.build, self.path)
        self.assertIn('damaged at line 2', str(e))


class TestRealJournals(testtools.TestCase):
    """Journals the functional tests wrote (before the verdict said more)."""

    def test_cold_confirm(self):
        rebuilt = report.build(os.path.join(
            DATA, 'journal-cold-confirm-3.jsonl'), running=False)
        self.assertEqual(report.FINISHED, rebuilt.state)
        self.assertEqual({'confirmed': 3}, rebuilt.results())
        for server in rebuilt.servers:
            # Old format: the destination and duration were not journaled.
            self.assertEqual(('compute1', None, None, 'cold', 1),
                             (server.source, server.dest, server.duration,
                              server.mode, server.attempts))
            self.assertIn(report.CONFIRMING,
                          [s.phase for s in server.spans])
        self.assertEqual(2, max(n for _, n in rebuilt.in_flight()))
        self.assertEqual('3eb2c456-75d4-4a8b-8c42-7ebbdd4fbc40 '
                         'c8b76ed8-dce3-4608-b5f1-63f5b8c8023d '
                         '1a12aaf7-aff5-474c-b45a-78d35f8805a5',
                         rebuilt.selection())

    def test_live_drain(self):
        rebuilt = report.build(os.path.join(DATA, 'journal-live-20.jsonl'),
                               running=False)
        self.assertEqual(({'migrated': 20}, '--source-host compute1', 10),
                         (rebuilt.results(), rebuilt.selection(),
                          max(n for _, n in rebuilt.in_flight())))
        self.assertEqual(1, len(rebuilt.runs))


class TestList(testtools.TestCase):

    def test_list_states(self):
        base = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable('XDG_STATE_HOME', base))
        directory = jrn.default_dir()
        done = jrn.Journal.create(os.path.join(directory, 'a.jsonl'), HEADER)
        done.write({'type': 'plan', 'servers': [plan_item('s')]})
        done.event('s', 'verdict', result='confirmed')
        done.close()
        live = jrn.Journal.create(os.path.join(directory, 'b.jsonl'), HEADER)
        self.addCleanup(live.close)
        live.write({'type': 'plan', 'servers': [plan_item('s')]})
        with open(os.path.join(directory, 'c.jsonl'), 'w') as f:
            f.write('garbage\n')
        with open(os.path.join(directory, 'notes.txt'), 'w') as f:
            f.write('not a journal\n')
        listed = {os.path.basename(x.path): x
                  for x in report.list_journals()}
        self.assertEqual(['a.jsonl', 'b.jsonl', 'c.jsonl'], sorted(listed))
        self.assertEqual(report.FINISHED, listed['a.jsonl'].report.state)
        self.assertEqual(report.RUNNING, listed['b.jsonl'].report.state)
        self.assertIsNone(listed['c.jsonl'].report)
        self.assertIn('damaged at line 1', listed['c.jsonl'].error)

    def test_no_directory_yet(self):
        base = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.EnvironmentVariable('XDG_STATE_HOME', base))
        self.assertEqual([], report.list_journals())


class TestSelectionText(testtools.TestCase):

    def test_options(self):
        self.assertEqual(
            'a b c (+2 more) --source-host h1 --status ACTIVE',
            report.selection_text({'servers': ['a', 'b', 'c', 'd', 'e'],
                                   'source_host': 'h1', 'status': 'ACTIVE',
                                   'project': None}))
        self.assertEqual('', report.selection_text({}))
        self.assertEqual('--source-host h1 --source-host h2',
                         report.selection_text({'source_hosts': ['h1',
                                                                 'h2']}))
        self.assertEqual('--aggregate rack1', report.selection_text(
            {'aggregate': 'rack1', 'source_hosts': ['h1', 'h2']}))

    def test_stalls_are_marked(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'j')
        j = jrn.Journal.create(path, HEADER)
        j.write({'type': 'plan', 'servers': [plan_item('a')]})
        j.event('a', 'submitting', baseline_id=0, attempt=1)
        j.event('a', 'stalled', note='stalled at 91%', migration_id=3,
                policy='force-complete')
        j.event('a', 'force-complete-sent', note='stalled at 91%',
                migration_id=3)
        j.event('a', 'verdict', result='migrated', message='')
        j.close()
        [server] = report.build(path).servers
        self.assertEqual([('stalled', 'stalled at 91%'),
                          ('force-complete-sent', 'stalled at 91%')],
                         [(m.what, m.message) for m in server.marks])
