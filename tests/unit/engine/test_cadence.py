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

"""The gap between polls follows the run's migrations, within --interval."""

import datetime

import testtools

from osc_migrate_plus.engine import cadence
from osc_migrate_plus import model
from tests.unit.engine import test_batch

R = model.Result
T0 = datetime.datetime(2026, 11, 30, 12, 0, 0)


def record(mid, status, seconds, created=T0, fmt='%Y-%m-%dT%H:%M:%S.%f'):
    ended = created + datetime.timedelta(seconds=seconds)
    return model.Migration(
        id=mid, uuid=None, type='migration', status=status,
        source='compute1', dest='compute2',
        created_at=created.strftime(fmt), updated_at=ended.strftime(fmt),
        server_id='s%d' % mid)


class TestLengths(testtools.TestCase):
    """How long the run's migrations take in Nova."""

    def test_known_once_two_migrations_are(self):
        c = cadence.Cadence(2.0)
        self.assertIsNone(c.typical())
        c.saw([record(1, 'finished', 0.6)])
        self.assertIsNone(c.typical())
        c.saw([record(2, 'completed', 0.8)])
        self.assertAlmostEqual(0.7, c.typical())

    def test_only_work_done_counts_and_once_per_migration(self):
        c = cadence.Cadence(4.0)
        # Under way or confirmed: the length of neither is the work's.
        c.saw([record(1, 'migrating', 1.0), record(2, 'confirmed', 1.0),
               record(3, 'error', 1.0)])
        self.assertIsNone(c.typical())
        c.saw([record(4, 'finished', 1.0), record(5, 'finished', 1.0)])
        self.assertEqual(1.0, c.typical())
        # Seen again (a later poll's overlap, a later save): not again.
        for _ in range(5):
            c.saw([record(4, 'finished', 9.0)])
        self.assertEqual(1.0, c.typical())

    def test_median_of_the_newest(self):
        c = cadence.Cadence(10.0)
        for mid in range(1, 6):
            c.saw([record(mid, 'finished', 1.0)])
        # Nova slows down: the newest lengths take over.
        for mid in range(6, 9):
            c.saw([record(mid, 'finished', 8.0)])
        self.assertEqual(8.0, c.typical())
        # One quick exception does not drag it back.
        c.saw([record(9, 'finished', 0.5)])
        self.assertEqual(8.0, c.typical())

    def test_clocks_that_disagree_say_nothing(self):
        c = cadence.Cadence(2.0)
        c.saw([record(1, 'finished', -3.0), record(2, 'finished', -1.0),
               record(3, 'finished', 0.5)])
        self.assertIsNone(c.typical())

    def test_whole_second_stamps(self):
        # Nova on MySQL keeps whole seconds: a 0.4 s migration is 0 or 1.
        c = cadence.Cadence(2.0)
        fmt = '%Y-%m-%dT%H:%M:%S.000000'
        c.saw([record(1, 'finished', 0.4, T0.replace(microsecond=800000),
                      fmt),
               record(2, 'finished', 0.4, fmt=fmt),
               record(3, 'finished', 0.4, T0.replace(microsecond=700000),
                      fmt)])
        self.assertEqual(1.0, c.typical())

    def test_no_stamps(self):
        c = cadence.Cadence(2.0)
        c.saw([model.Migration(id=1, uuid=None, type='migration',
                               status='finished', source='a', dest='b')] * 2)
        self.assertIsNone(c.typical())


def quick(interval=2.0, seconds=0.6):
    """A cadence that knows its migrations take ``seconds``."""
    c = cadence.Cadence(interval)
    c.saw([record(901, 'finished', seconds), record(902, 'finished',
                                                    seconds)])
    return c


class TestNextPoll(testtools.TestCase):

    def test_interval_while_lengths_are_unknown(self):
        c = cadence.Cadence(2.0)
        c.asked('s1', 10.0)
        self.assertEqual(12.0, c.next_poll(10.0, 10.1))

    def test_interval_when_migrations_take_longer(self):
        c = quick(seconds=300.0)
        c.asked('s1', 10.0)
        self.assertEqual(12.0, c.next_poll(10.0, 10.1))

    def test_interval_with_nothing_asked(self):
        self.assertEqual(12.0, quick().next_poll(10.0, 10.1))

    def test_when_a_submission_is_due(self):
        c = quick(seconds=0.9)
        c.asked('s1', 10.0)
        c.asked('s2', 10.3)
        self.assertAlmostEqual(10.9, c.next_poll(10.0, 10.4))
        # s1 is done with: s2 is next.
        c.ended('s1')
        self.assertAlmostEqual(11.2, c.next_poll(10.6, 10.95))

    def test_never_sooner_than_a_quarter_interval(self):
        c = quick(seconds=0.1)
        c.asked('s1', 10.0)
        self.assertEqual(10.5, c.next_poll(10.0, 10.05))

    def test_late_one_is_looked_at_half_a_length_later(self):
        c = quick(seconds=1.2)
        c.asked('s1', 10.0)
        # Due at 11.2; at 11.3 it has not moved: again at 11.9.
        self.assertAlmostEqual(11.9, c.next_poll(11.25, 11.3))
        # Late by more than two lengths: left to the regular polls.
        self.assertAlmostEqual(15.0, c.next_poll(13.0, 13.7))

    def test_a_record_that_moved_on_is_not_the_end(self):
        # Nova saves the record, then the server: until the step acts
        # (a confirm sent, a verdict) the server is still due.
        c = quick(seconds=0.9)
        c.asked('s1', 10.0)
        c.saw([record(1, 'finished', 0.9)])
        self.assertAlmostEqual(10.9, c.next_poll(10.0, 10.4))
        # The confirm went: its end is due a length later.
        c.asked('s1', 11.0)
        self.assertAlmostEqual(11.9, c.next_poll(11.0, 11.1))
        c.ended('s1')
        self.assertEqual(13.0, c.next_poll(11.0, 11.1))


class DrainCase(test_batch.RunnerTestCase):
    """A drain on the fake Nova (its own clock), two in flight, confirmed.

    Returns how long it took and when it polled.
    """

    def polls(self):
        return [when for when, method, path, extra in self.nova.requests
                if path == '/os-migrations' and 'changes-since' in extra]

    def drain_these(self, sids, learn=True, **options):
        if not learn:
            self.patch(cadence, 'LEAST', 10 ** 6)
        options.setdefault('interval', 2.0)
        start = self.nova.now
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=2,
                                     **options)
        self.assertTrue(ok)
        self.assertEqual({R.CONFIRMED}, {e.result for e in entries.values()})
        return self.nova.now - start, self.polls()

    def drain(self, n=6, learn=True, **options):
        return self.drain_these(self.servers(n), learn=learn, **options)


class TestBatchCadence(DrainCase):
    """A drain of quick migrations."""

    def quick_drain(self, seconds, n=8, learn=True, **timing):
        self.nova.timing['cold_duration'] = seconds
        self.nova.timing.update(timing)
        return self.drain(n, learn=learn)

    # Nova 34 on this machine: the record a moment after the 202, the
    # server saved right after it.
    PROMPT = dict(record_delay=0.1, lag=0.05, confirm_delay=0.3)

    def test_quick_migrations_are_polled_when_due(self):
        took, polls = self.quick_drain(0.6, **self.PROMPT)
        gaps = [b - a for a, b in zip(polls, polls[1:])]
        # Until two lengths are known, every interval; then sooner, never
        # sooner than a quarter interval.
        self.assertAlmostEqual(2.0, gaps[0], delta=0.15)
        self.assertLess(max(gaps[len(gaps) // 2:]), 1.5)
        self.assertGreaterEqual(min(gaps), 0.5 - 1e-6)

    def test_quick_migrations_drain_sooner(self):
        took, polls = self.quick_drain(0.6, **self.PROMPT)
        # Against the same drain polled every interval.
        other = TestBatchCadence('test_quick_migrations_drain_sooner')
        other.setUp()
        self.addCleanup(other.doCleanups)
        slow, regular = other.quick_drain(0.6, learn=False, **self.PROMPT)
        self.assertLess(took, slow * 0.85, (took, slow))
        # More polls, never more than one a quarter interval.
        self.assertGreater(len(polls), len(regular))
        self.assertLessEqual(len(polls), took / 0.5 + 1)

    def test_unkind_nova_never_polled_more_than_four_times_an_interval(self):
        # The fake's own delays: the record half a second after the 202,
        # the server saved after it, a one-second confirm. Nova's lengths
        # say less of what the client waits for; the late looks cover it.
        took, polls = self.quick_drain(0.6)
        self.assertLessEqual(len(polls), took / 0.5 + 1)
        gaps = [b - a for a, b in zip(polls, polls[1:])]
        self.assertGreaterEqual(min(gaps), 0.5 - 1e-6)

    def test_long_migrations_keep_the_interval(self):
        took, polls = self.quick_drain(30.0, n=2)
        gaps = [round(b - a, 1) for a, b in zip(polls, polls[1:])]
        self.assertEqual({2.0}, set(gaps[1:]))
