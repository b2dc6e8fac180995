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

"""The board: a run's entries by state, current as they change."""

import collections
import random

import testtools

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import board as boards
from osc_migrate_plus.engine import plan
from osc_migrate_plus import model
from osc_migrate_plus.v1 import batch_progress
from tests.unit.engine import test_batch

S = batch.State
R = model.Result


def entry(i, host):
    server = model.Server(id='s%d' % i, name='vm%d' % i, status='ACTIVE',
                          task_state=None, host=host)
    return batch.new_entry(plan.PlanItem(server=server, verdict=plan.PLANNED,
                                         mode=model.Kind.COLD),
                           batch.Options())


class TestBoard(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.entries = [entry(i, 'compute%d' % (i % 3)) for i in range(12)]
        self.board = boards.Board(self.entries, S, S.QUEUED)

    def check(self):
        """Every group and count is what a pass over the entries says."""
        for state in S:
            self.assertEqual([e for e in self.entries if e.state == state],
                             self.board.group(state))
            self.assertEqual(sum(1 for e in self.entries if e.state == state),
                             self.board.count(state))
        self.assertEqual(collections.Counter(
            (e.state, e.result) for e in self.entries), self.board.tally)
        self.assertEqual(collections.Counter(
            e.source for e in self.entries if e.state == S.QUEUED),
            self.board.sources_waiting)
        self.assertEqual(batch_progress.counts(self.entries),
                         batch_progress.tallied(self.board.tally))

    def test_groups_in_plan_order_through_retries(self):
        e = self.entries
        for x in e[:6]:
            x.state = S.INFLIGHT
        # Sent back to wait, out of order: it waits in its plan place.
        e[4].state = S.QUEUED
        e[1].state = S.QUEUED
        self.check()
        self.assertEqual(['s1', 's4', 's6'],
                         [x.server_id for x in self.board.group(S.QUEUED)][:3])
        e[1].state = S.DONE
        e[1].result = R.CONFIRMED
        e[0].state = S.DONE
        e[0].result = R.FAILED
        self.check()
        self.assertEqual(['s0', 's1'],
                         [x.server_id for x in self.board.group(S.DONE)])

    def test_any_sequence_of_moves(self):
        rng = random.Random(7)
        results = [None, R.CONFIRMED, R.FAILED, R.SKIPPED, R.INTERRUPTED]
        for _ in range(500):
            x = rng.choice(self.entries)
            if rng.random() < 0.5:
                x.state = rng.choice(list(S))
            else:
                x.result = rng.choice(results)
            if rng.random() < 0.1:
                # An adopted migration's source is corrected while it
                # still waits: it is counted where it began to wait.
                x.follow.source = 'elsewhere'
                x.state = S.INFLIGHT
            self.check_counts()
        self.check_counts()

    def check_counts(self):
        for state in S:
            self.assertEqual([e for e in self.entries if e.state == state],
                             self.board.group(state))
        self.assertEqual(collections.Counter(
            (e.state, e.result) for e in self.entries), self.board.tally)
        self.assertEqual(sum(self.board.sources_waiting.values()),
                         self.board.count(S.QUEUED))


class TestRunKeepsItCurrent(test_batch.RunnerTestCase):

    def test_a_run_with_failures_and_skips(self):
        sids = self.servers(6)
        self.nova.fail_migrations(servers=[sids[2]])
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=2)
        self.assertTrue(ok)
        self.assertEqual(R.FAILED, entries[sids[2]].result)
        board = entries[sids[0]].board
        self.assertIsNotNone(board)
        ordered = list(entries.values())
        self.assertEqual(collections.Counter(
            (e.state, e.result) for e in ordered), board.tally)
        self.assertEqual(ordered, board.group(S.DONE))
        self.assertEqual(0, board.count(S.QUEUED) + board.count(S.INFLIGHT))
