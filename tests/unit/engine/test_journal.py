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

import json
import os
import stat

import fixtures
import testtools

from osc_migrate_plus.engine import journal as j

HEADER = {'options': {'mode': 'cold', 'confirm': True},
          'cloud': {'compute': 'http://nova/v2.1'}}


class TestJournal(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.path = os.path.join(self.dir, 'state', 'b.jsonl')

    def make(self):
        journal = j.Journal.create(self.path, HEADER)
        self.addCleanup(journal.close)
        return journal

    def lines(self):
        with open(self.path) as f:
            return [json.loads(line) for line in f]

    def test_created_0600_in_0700_dir_header_first(self):
        self.make()
        self.assertEqual(0o600, stat.S_IMODE(os.stat(self.path).st_mode))
        self.assertEqual(0o700, stat.S_IMODE(os.stat(
            os.path.dirname(self.path)).st_mode))
        [header] = self.lines()
        self.assertEqual(('header', 1, {'mode': 'cold', 'confirm': True}),
                         (header['type'], header['version'],
                          header['options']))

    def test_refuses_to_overwrite(self):
        self.make()
        e = self.assertRaises(j.JournalError, j.Journal.create, self.path,
                              HEADER)
        self.assertIn('--resume', str(e))

    def test_second_writer_is_refused(self):
        self.make()
        e = self.assertRaises(j.JournalBusy, j.Journal.reopen, self.path)
        self.assertIn('in use by a running batch', str(e))

    def test_lock_released_on_close(self):
        self.make().close()
        j.Journal.reopen(self.path).close()

    def test_credentials_never_written(self):
        journal = self.make()
        for bad in ({'options': {'os_password': 'x'}},
                    {'cloud': {'auth': {'token': 'abc'}}},
                    {'headers': [{'X-Auth-Token': 'abc'}]}):
            self.assertRaises(ValueError, journal.write,
                              dict(bad, type='note'))
        self.assertEqual(1, len(self.lines()))

    def test_replay_states(self):
        journal = self.make()
        journal.write({'type': 'plan', 'servers': [
            {'id': 'a', 'verdict': 'planned'},
            {'id': 'b', 'verdict': 'planned'},
            {'id': 'c', 'verdict': 'planned'},
            {'id': 'd', 'verdict': 'planned'},
            {'id': 'e', 'verdict': 'skipped', 'reason': 'ERROR state'}]})
        journal.event('a', 'submitting', baseline_id=3)
        journal.event('b', 'submitting', baseline_id=0)
        journal.event('b', 'submitted')
        journal.event('b', 'migration', migration_id=9)
        journal.event('c', 'submitting')
        journal.event('c', 'submitted')
        journal.event('c', 'migration', migration_id=10)
        journal.event('c', 'verdict', result='confirmed')
        journal.event('d', 'submitting')
        journal.event('d', 'submit-failed', message='HTTP 409',
                      refused=True)
        state = j.replay(self.path)
        self.assertFalse(state.torn)
        got = {sid: (s.state, s.migration_id, s.result)
               for sid, s in state.servers.items()}
        self.assertEqual({'a': (j.SUBMITTING, None, None),
                          'b': (j.SUBMITTED, 9, None),
                          'c': (j.FINISHED, 10, 'confirmed'),
                          'd': (j.PLANNED, None, None),
                          'e': (j.SKIPPED, None, None)}, got)
        self.assertEqual(3, state.servers['a'].baseline_id)
        self.assertEqual(1, state.servers['d'].attempts)

    def test_lost_answers(self):
        journal = self.make()
        journal.event('a', 'submitting', baseline_id=4)
        journal.event('a', 'submit-unanswered', message='HTTP 504')
        # Written by versions that did not tell a refusal from a lost
        # answer: Nova may still carry it out.
        journal.event('b', 'submitting', baseline_id=2)
        journal.event('b', 'submit-failed', message='HTTP 504')
        journal.event('c', 'submitting', baseline_id=2)
        journal.event('c', 'submit-unanswered', message='reset')
        journal.event('c', 'not-taken', message='nothing in Nova')
        journal.event('d', 'submitting', baseline_id=5)
        journal.event('d', 'submit-unanswered', message='reset')
        journal.event('d', 'taken')
        journal.event('d', 'migration', migration_id=6)
        state = j.replay(self.path)
        got = {sid: (s.state, s.baseline_id, s.migration_id)
               for sid, s in state.servers.items()}
        self.assertEqual({'a': (j.UNCERTAIN, 4, None),
                          'b': (j.UNCERTAIN, 2, None),
                          'c': (j.PLANNED, 2, None),
                          'd': (j.SUBMITTED, 5, 6)}, got)

    def test_adopted_keeps_its_baseline_and_verdicts_their_message(self):
        journal = self.make()
        journal.event('a', 'adopted', migration_id=None, baseline_id=7)
        journal.event('b', 'submitting', baseline_id=1)
        journal.event('b', 'submitted')
        journal.event('b', 'verdict', result='timeout', message='timed out',
                      migration_id=3)
        state = j.replay(self.path).servers
        self.assertEqual((j.SUBMITTED, 7, None), (
            state['a'].state, state['a'].baseline_id, state['a'].migration_id))
        self.assertEqual((j.FINISHED, 'timeout', 'timed out', 3, 1), (
            state['b'].state, state['b'].result, state['b'].message,
            state['b'].migration_id, state['b'].baseline_id))
        self.assertEqual(j.SUBMITTED, j.REOPENED['timeout'])
        self.assertEqual(j.PLANNED, j.REOPENED['not-started'])

    def test_torn_last_line_tolerated_and_cut_before_appending(self):
        journal = self.make()
        journal.event('a', 'submitted', migration_id=1)
        journal.close()
        with open(self.path, 'ab') as f:
            f.write(b'{"type":"event","server":"a","eve')
        state = j.replay(self.path)
        self.assertTrue(state.torn)
        self.assertEqual(j.SUBMITTED, state.servers['a'].state)
        journal = j.Journal.reopen(self.path)
        with open(self.path, 'rb') as f:
            torn = f.read()
        self.assertTrue(torn.endswith(b'"eve'))  # reopening changes nothing
        journal.cut_torn()
        journal.event('a', 'verdict', result='migrated')
        journal.close()
        self.assertEqual(3, len(self.lines()))  # parses line by line
        self.assertEqual(j.FINISHED, j.replay(self.path).servers['a'].state)

    def test_garbage_middle_line_names_the_line(self):
        journal = self.make()
        journal.close()
        with open(self.path, 'ab') as f:
            f.write(b'not json\n{"type":"event","server":"a"}\n')
        e = self.assertRaises(j.JournalError, j.replay, self.path)
        self.assertIn('damaged at line 2', str(e))

    def test_empty_missing_and_foreign_files(self):
        open(os.path.join(self.dir, 'empty'), 'w').close()
        e = self.assertRaises(j.JournalError, j.replay,
                              os.path.join(self.dir, 'empty'))
        self.assertIn('empty', str(e))
        e = self.assertRaises(j.JournalError, j.replay,
                              os.path.join(self.dir, 'missing'))
        self.assertIn('no journal', str(e))
        foreign = os.path.join(self.dir, 'foreign')
        with open(foreign, 'w') as f:
            f.write('{"type": "event", "server": "x"}\n')
        e = self.assertRaises(j.JournalError, j.replay, foreign)
        self.assertIn('does not start with a batch header', str(e))

    def test_binding_differences(self):
        self.assertEqual([], j.binding_differences(
            {'mode': 'cold', 'confirm': True}, {'mode': 'cold'}))
        self.assertEqual(["mode (journal: 'cold', now: 'live')"],
                         j.binding_differences({'mode': 'cold'},
                                               {'mode': 'live'}))

    def test_default_path_under_xdg_state_home(self):
        self.useFixture(fixtures.EnvironmentVariable('XDG_STATE_HOME',
                                                     self.dir))
        path = j.default_path()
        self.assertTrue(path.startswith(os.path.join(
            self.dir, 'osc-migrate-plus', 'batch-')))
        self.assertTrue(path.endswith('.jsonl'))
