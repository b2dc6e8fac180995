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

"""Resuming a batch: where each journaled server stands decides."""

from unittest import mock

import testtools

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import session
from osc_migrate_plus import model
from tests.unit.engine import test_batch

R = model.Result


class TestResume(test_batch.FakeNovaTestCase):

    header = {'options': {
        'mode': 'cold', 'host': None, 'block_migration': None,
        'confirm': True, 'verify_command': None}, 'limits': {
        'max_parallel': 1, 'max_per_source': 1, 'max_per_destination': 2,
        'timeout': 30, 'max_failures': 2}}

    def setUp(self):
        super().setUp()
        self.options = batch.Options(interval=1, confirm=True)

    def planned(self, *sids):
        self.journal.write({'type': 'plan', 'servers': [
            {'id': sid, 'name': 'vm', 'project_id': 'p1',
             'source': 'compute1', 'status': 'ACTIVE', 'mode': 'cold',
             'verdict': 'planned', 'reason': ''} for sid in sids]})

    def resume(self):
        self.journal.close()
        self.reporter = test_batch.Reporter()
        resumption = session.Resumption(self.path)
        self.addCleanup(resumption.close)
        resumed = resumption.start(self.gateway, self.reporter,
                                   self.options)
        completed = resumed.run()
        return completed, {e.server_id: e for e in resumed.entries}

    def test_finished_is_kept_without_asking_nova(self):
        sid = self.nova.add_server('vm')
        self.planned(sid)
        self.journal.event(sid, 'verdict', result='failed',
                           message='No valid host')
        before = len(self.nova.requests)
        ok, entries = self.resume()
        self.assertEqual((R.FAILED, 'finished before the resume: No valid '
                          'host'), (entries[sid].result,
                                    entries[sid].message))
        per_server = [r for r in self.nova.requests[before:]
                      if sid in r[2] or sid in str(r[3])]
        self.assertEqual([], per_server)

    def test_submitted_is_adopted_and_confirmed(self):
        sid = self.nova.add_server('vm')
        self.planned(sid)
        self.journal.event(sid, 'submitting', baseline_id=0)
        self.nova.start_elsewhere(sid)  # ours, its answer came back
        self.journal.event(sid, 'submitted')
        ok, entries = self.resume()
        self.assertEqual(R.CONFIRMED, entries[sid].result)
        self.assertEqual(0, self.nova.count('POST', 'migrate'))

    def test_a_timeout_is_taken_up_again(self):
        # --confirm was asked: a timed-out cold migration waiting in
        # VERIFY_RESIZE is confirmed by the resume, not left there.
        sid = self.nova.add_server('vm')
        self.planned(sid)
        self.journal.event(sid, 'submitting', baseline_id=0)
        self.nova.start_elsewhere(sid)
        self.journal.event(sid, 'submitted')
        self.nova.advance(30)
        self.journal.event(sid, 'verdict', result='timeout', message='t')
        ok, entries = self.resume()
        self.assertEqual(R.CONFIRMED, entries[sid].result)
        self.assertEqual('ACTIVE', self.nova.server(sid)['status'])

    def test_not_started_is_planned_again(self):
        sid = self.nova.add_server('vm')
        self.planned(sid)
        self.journal.event(sid, 'verdict', result='not-started',
                           message='--max-failures 1 reached')
        ok, entries = self.resume()
        self.assertEqual(R.CONFIRMED, entries[sid].result)
        self.assertEqual(1, self.nova.count('POST', 'migrate'))

    def test_a_server_moved_meanwhile_is_not_migrated_again(self):
        # Planned on compute1, never submitted; someone moved it before
        # the resume: skipped with the reason, not migrated from the plan.
        sid = self.nova.add_server('vm')
        self.planned(sid)
        self.nova.start_elsewhere(sid)
        self.nova.settle()
        self.nova.auto_confirm(sid)
        self.nova.settle()
        ok, entries = self.resume()
        self.assertEqual(R.SKIPPED, entries[sid].result)
        self.assertIn('moved since the plan', entries[sid].message)
        self.assertEqual(1, len(self.nova.records(sid)))

    def test_a_submission_that_may_not_have_reached_nova(self):
        # Killed while the migrate request was on the wire; Nova carries
        # it out a moment into the resume. Looked for, never sent again.
        sid = self.nova.add_server('vm')
        self.planned(sid)
        self.journal.event(sid, 'submitting', baseline_id=0)
        self.nova.start_elsewhere(sid, at=self.nova.now + 0.3)
        ok, entries = self.resume()
        self.assertEqual(R.CONFIRMED, entries[sid].result)
        self.assertEqual(0, self.nova.count('POST', 'migrate'))
        self.assertEqual(1, len(self.nova.records(sid)))

    def test_a_submission_that_never_reached_nova_is_sent_after_a_while(
            self):
        sid = self.nova.add_server('vm')
        self.planned(sid)
        self.journal.event(sid, 'submitting', baseline_id=0)
        self.journal.event(sid, 'submit-unanswered', message='HTTP 504')
        ok, entries = self.resume()
        self.assertEqual(R.CONFIRMED, entries[sid].result)
        [sent] = self.nova.posts('migrate')
        self.assertGreaterEqual(sent, 60)

    def test_a_deleted_server_does_not_stop_the_rest(self):
        gone, kept = self.nova.add_server('a'), self.nova.add_server('b')
        self.planned(gone, kept)
        for sid in (gone, kept):
            self.journal.event(sid, 'submitting', baseline_id=0)
            self.nova.start_elsewhere(sid)
            self.journal.event(sid, 'submitted')
        self.nova.delete_server(gone)
        ok, entries = self.resume()
        self.assertEqual((R.DELETED, R.CONFIRMED),
                         (entries[gone].result, entries[kept].result))
        self.assertEqual('deleted', jrn.replay(self.path).servers[
            gone].result)

    def test_adoption_of_a_migration_that_ended_long_ago(self):
        sid = self.nova.add_server('vm')
        self.planned(sid)
        self.journal.event(sid, 'submitting', baseline_id=0)
        self.nova.start_elsewhere(sid, live=True)
        self.journal.event(sid, 'submitted')
        self.nova.advance(1200)
        self.options.mode = 'live'
        ok, entries = self.resume()
        self.assertEqual(R.MIGRATED, entries[sid].result)
        self.assertLess(self.nova.now, 1200 + 60)

    def test_the_lock_comes_before_the_read(self):
        sid = self.nova.add_server('vm')
        self.planned(sid)
        self.journal.close()
        held = jrn.Journal.reopen(self.path)
        with mock.patch.object(jrn, 'replay') as replay:
            self.assertRaises(jrn.JournalBusy, session.Resumption,
                              self.path)
        replay.assert_not_called()
        held.close()

    def test_options_bound_to_the_journal(self):
        self.planned()
        self.journal.close()
        resumption = session.Resumption(self.path)
        self.addCleanup(resumption.close)
        given = batch.Options(mode='live', max_parallel=9)
        e = self.assertRaises(session.Contradiction, resumption.options,
                              given, ['mode'])
        self.assertIn("mode (journal: 'cold', now: 'live')", str(e))
        # Left out, they follow the journal; so do the limits, unless
        # given again; --timeout is each run's own.
        options = resumption.options(batch.Options(mode=None,
                                                   max_parallel=9), [])
        self.assertEqual(('cold', True, 1, 1, 2, 3600), (
            options.mode, options.confirm, options.max_parallel,
            options.max_per_source, options.max_failures, options.timeout))
        options = resumption.options(batch.Options(max_parallel=9),
                                     ['max_parallel'])
        self.assertEqual((9, 1), (options.max_parallel,
                                  options.max_per_source))


class TestSourceHostsOfAJournal(testtools.TestCase):

    def test_older_journals_name_one_host(self):
        self.assertEqual(('c1',), session.source_hosts(
            {'selection': {'source_host': 'c1'}}))
        self.assertEqual(('c1', 'c2'), session.source_hosts(
            {'selection': {'source_hosts': ['c1', 'c2']}}))
        self.assertEqual((), session.source_hosts(
            {'selection': {'source_host': None, 'servers': ['a']}}))
