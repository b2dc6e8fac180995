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

"""The batch's cost as it grows: per poll round, and per admission turn."""

import contextlib
from unittest import mock

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import step
from osc_migrate_plus import gateway as gw
from osc_migrate_plus import model
from tests.unit.engine import test_batch
from tests.unit import fakenova

R = model.Result


class TestPollCostFlat(test_batch.RunnerTestCase):
    """Requests per poll round: the same with 1, 10 and 100 in flight."""

    def reads_per_round(self, n):
        """GETs of each poll round once all ``n`` are in flight.

        A round is what the client sends between two of its sleeps; the
        rounds with a submission (and its baseline read) are left out.
        """
        self.nova = fakenova.FakeNova()
        self.useFixture(self.nova.client_time())
        self.gateway = gw.NovaGateway(self.nova.proxy)
        sids = self.servers(n)
        cuts = []
        self.nova.sleep_hooks.append(
            lambda: cuts.append(len(self.nova.requests)))
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=n,
                                     max_per_source=n, max_per_destination=n)
        self.assertEqual({R.CONFIRMED}, {e.result for e in entries.values()})
        rounds = [self.nova.requests[a:b]
                  for a, b in zip(cuts, cuts[1:] + [None])]
        reads = [sum(1 for _, method, _, _ in r if method == 'GET')
                 for r in rounds
                 if not any(extra == 'migrate' for _, _, _, extra in r)]
        self.assertGreater(len(reads), 2)
        return sorted(set(reads))

    def test_the_same_with_1_10_and_100_in_flight(self):
        # The bulk reads: migrations changed since, and servers changed
        # since when one may tell more than its record (or every 30 s):
        # two at most, one while every migration is under way.
        for n in (1, 10, 100):
            self.assertLessEqual(set(self.reads_per_round(n)), {1, 2}, n)

    def test_the_measure_sees_a_read_per_server(self):
        """It can fail: a per-server read each round shows."""
        with mock.patch.object(batch, 'STALE_AFTER', 0.0):
            self.assertGreater(max(self.reads_per_round(10)), 10)


class TurnCostCase(test_batch.RunnerTestCase):

    def ten_submissions(self, n, *patches):
        """A batch of ``n`` (2 at a time), stopped at its 10th migrate.

        ``patches``: what counts, in place while it runs.
        """
        self.nova = fakenova.FakeNova()
        self.useFixture(self.nova.client_time())
        self.gateway = gw.NovaGateway(self.nova.proxy)
        self.nova.timing['cold_duration'] = 10
        sids = self.servers(n)
        with contextlib.ExitStack() as stack:
            for patch in patches:
                stack.enter_context(patch)
            ok, entries = self.run_batch(
                sids, confirm=True, max_parallel=2, max_per_source=2,
                max_per_destination=2,
                stop_when=lambda: self.nova.count('POST', 'migrate') >= 10)
        self.assertFalse(ok)
        self.assertEqual(10, self.nova.count('POST', 'migrate'))


class TestAdmissionCost(TurnCostCase):
    """A turn of admission costs the same however many servers wait.

    It used to count what is in flight once per server waiting (every
    server waiting, every turn: O(N^2) a turn for a queue of N), which made
    a 2,000-server batch spend most of its CPU there.
    """

    def slot_reads_per_turn(self, n):
        """How often a turn asks whether a server holds a slot.

        (Whether its confirm was sent: ``Follow.sent``, read wherever it is
        read, divided by the turns of admission.)
        """
        reads = {'sent': 0, 'turns': 0}
        submit = batch.Runner._submit

        def get(follow):
            reads['sent'] += 1
            return follow.__dict__.get('_sent')

        def put(follow, value):
            follow.__dict__['_sent'] = value

        def turn(runner, entries):
            reads['turns'] += 1
            return submit(runner, entries)

        self.ten_submissions(
            n, mock.patch.object(step.Follow, 'sent', property(get, put)),
            mock.patch.object(batch.Runner, '_submit', turn))
        return reads['sent'] / reads['turns']

    def test_flat_as_the_queue_grows(self):
        small = self.slot_reads_per_turn(20)
        large = self.slot_reads_per_turn(400)
        self.assertLess(large, small * 1.5 + 1, (small, large))


class TestTurnCost(TurnCostCase):
    """A turn of the run loop looks at what it acts on, not at every entry.

    It used to pass over every entry of the batch a few times a turn (what
    waits, what is in flight, whether all is done, the status counts):
    with 2,000 servers that made a poll round's CPU grow with the batch.
    """

    def state_reads_per_turn(self, n):
        """How often a turn reads an entry's state (wherever it is read).

        Counted from the first poll to the last: the board is built and
        the interrupt ends every entry once a run, not once a turn.
        """
        reads = {'state': 0}
        marks = []
        poll = batch.Runner._poll

        def get(entry):
            reads['state'] += 1
            return entry.__dict__['_state']

        def put(entry, value):
            entry.__dict__['_state'] = value

        def turn(runner, inflight):
            marks.append(reads['state'])
            return poll(runner, inflight)

        self.ten_submissions(
            n, mock.patch.object(batch.Entry, 'state', property(get, put)),
            mock.patch.object(batch.Runner, '_poll', turn))
        self.assertGreater(len(marks), 5)
        return (marks[-1] - marks[0]) / (len(marks) - 1)

    def test_flat_as_the_batch_grows(self):
        small = self.state_reads_per_turn(20)
        large = self.state_reads_per_turn(400)
        self.assertLess(large, small * 1.5 + 1, (small, large))
