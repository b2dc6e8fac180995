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

"""Review: the due polls, and the server unread while Nova confirms.

engine/cadence.py, and Follow.server_matters with a confirm or revert in
Nova's hands (IN_HAND). Tests marked FAILS fail on 549587d.
"""

import datetime

import testtools

from osc_migrate_plus.engine import cadence
from osc_migrate_plus.engine import follower
from osc_migrate_plus.engine import step
from osc_migrate_plus import model
from tests.unit.engine import test_batch
from tests.unit.engine import test_cadence
from tests.unit.engine import test_stall

R = model.Result
LONG = 300.0  # a confirm Nova takes its time over (a busy source host)


def reads(nova, path, extra='', after=0.0):
    return [w for w, m, p, x in nova.requests
            if m == 'GET' and p == path and (not extra or extra in x)
            and w > after]


class TestLostConfirmReplyBatch(test_batch.RunnerTestCase):
    """The confirm's answer is lost; Nova applied it and takes its time."""

    def test_record_is_the_news_after_a_lost_reply_nova_applied(self):
        # FAILS on 549587d: look_again is never cleared when the fresh look
        # finds nothing to do (record confirming), and without f.sent the
        # IN_HAND rule does not apply: two direct reads and a bulk read of
        # the servers every poll for the whole confirm.
        self.nova.timing['cold_duration'] = 3.0
        self.nova.timing['confirm_delay'] = LONG
        self.nova.lose_reply('confirmResize', status=504, apply_after=0.5)
        sids = self.servers(1)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=1)
        self.assertTrue(ok)
        entry = entries[sids[0]]
        self.assertEqual(R.CONFIRMED, entry.result, entry.message)
        # One confirm sent, Nova applied it: never a second one that went
        # through.
        self.assertEqual(1, len([x for x in self.nova.late
                                 if x[3] < 300]))
        sent = self.nova.posts('confirmResize')[0]
        direct = reads(self.nova, '/servers/%s' % sids[0], after=sent + 5)
        bulk = reads(self.nova, '/servers/detail', after=sent + 5)
        # Once a fresh look showed Nova has it in hand (record
        # confirming), the record is the news, as after a clean answer:
        # neither a direct read of the server every poll (look_again never
        # cleared) nor the servers' bulk read every poll.
        self.assertLess(len(direct), LONG / 60 + 4, 'direct reads')
        self.assertLess(len(bulk), LONG / step.SERVER_AT_LEAST_EVERY + 4,
                        'bulk server reads')


class TestLostConfirmReplyWatch(test_stall.WatchCase):

    def test_record_is_the_news_after_a_lost_reply_nova_applied(self):
        # FAILS on 549587d (as the batch case): a get_server every poll.
        self.nova.timing['cold_duration'] = 3.0
        self.nova.timing['confirm_delay'] = LONG
        self.nova.lose_reply('confirmResize', status=504, apply_after=0.5)
        out = self.cold()
        self.assertEqual(R.CONFIRMED, out.result, out.message)
        sent = self.nova.posts('confirmResize')[0]
        servers = reads(self.nova, '/servers/%s' % self.sid, after=sent + 5)
        self.assertLess(len(servers), LONG / step.SERVER_AT_LEAST_EVERY + 4)


class TestLostConfirmHeldUp(test_batch.RunnerTestCase):
    """Held up: a confirm whose answer is lost is looked for, then resent.

    The server is still read, the confirm sent again or concluded.
    """

    def run_one(self, **lost):
        self.nova.timing['cold_duration'] = 3.0
        self.nova.lose_reply('confirmResize', status=504, **lost)
        sids = self.servers(1)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=1)
        self.assertTrue(ok)
        entry = entries[sids[0]]
        self.assertEqual(R.CONFIRMED, entry.result, entry.message)
        return entry

    def test_never_applied_is_sent_again(self):
        self.run_one(apply_after=None)
        self.assertEqual(2, len(self.nova.posts('confirmResize')))

    def test_applied_late_is_not_applied_twice(self):
        self.run_one(apply_after=45.0)
        # Sent again on the fresh look; the held one is refused by Nova
        # (the server is no longer resized: 409).
        self.nova.settle(100.0)
        self.assertEqual(2, len(self.nova.posts('confirmResize')))
        self.assertEqual([409], [x[3] for x in self.nova.late])


class CadenceCase(test_cadence.DrainCase):

    def assert_no_storm(self, polls, interval):
        gaps = [b - a for a, b in zip(polls, polls[1:])]
        self.assertGreaterEqual(min(gaps), interval / 4 - 1e-6)
        self.assertLessEqual(max(gaps), interval + 0.5)

    def skew_finished(self, seconds):
        """The conductor saving 'finished' has its clock ``seconds`` off."""
        save = self.nova._save

        def saved(obj, **changes):
            save(obj, **changes)
            if changes.get('status') == 'finished':
                obj['updated_at'] += datetime.timedelta(seconds=seconds)
        self.nova._save = saved


class TestCadenceHeldUp(CadenceCase):
    """Held up: no poll storm whatever Nova's stamps say."""

    def test_clock_behind_gives_tiny_lengths(self):
        self.nova.timing['cold_duration'] = 3.0
        self.skew_finished(-3.5)  # lengths of ~0.2 s
        took, polls = self.drain()
        self.assert_no_storm(polls, 2.0)
        self.assertLessEqual(len(polls), took / 0.5 + 1)

    def test_clock_ahead_gives_long_lengths(self):
        self.nova.timing['cold_duration'] = 0.6
        self.skew_finished(600.0)
        took, polls = self.drain()
        gaps = [b - a for a, b in zip(polls, polls[1:])]
        # Every interval (give or take the requests of a turn).
        self.assertGreater(min(gaps), 1.7)

    def test_mixed_quick_and_very_long(self):
        self.nova.timing['cold_duration'] = 0.6
        sids = self.servers(6)
        slow = sids[-1]
        # The last server's copy takes ten minutes (a big disk): each half
        # of it (fakenova's cold copy is two steps of half its length).
        step_ = self.nova._step

        def slow_step(record, delay, work):
            if record['instance_uuid'] == slow and abs(delay - 0.3) < 1e-9:
                delay = 300.0
            step_(record, delay, work)
        self.nova._step = slow_step
        start_at = self.nova.now
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=2,
                                     interval=2.0)
        self.assertTrue(ok)
        took = self.nova.now - start_at
        polls = self.polls()
        self.assert_no_storm(polls, 2.0)
        # While only the long one is left, the regular interval.
        late = [p for p in polls if start_at + 100 < p < start_at + 600]
        gaps = [b - a for a, b in zip(late, late[1:])]
        self.assertGreater(len(gaps), 100)
        self.assertGreater(min(gaps), 1.7)
        self.assertLessEqual(len(polls), took / 2.0 + 40)


def confirming(nova, sid):
    """``sid`` migrated to VERIFY_RESIZE, its confirm in Nova's hands.

    (Someone else's confirm, or this batch's before a --resume: the
    journal keeps no 'confirm sent' the resumed step would know.)
    """
    nova._apply(nova._internal('POST', sid, {'migrate': None}))
    nova.settle(60.0)
    nova.auto_confirm(sid)
    assert nova.records(sid)[0]['status'] == 'confirming'


class TestAdoptedConfirming(test_batch.RunnerTestCase):

    def test_batch_leaves_the_server_unread_while_nova_confirms(self):
        # FAILS on 549587d: IN_HAND only after a confirm this step sent.
        self.nova.timing['cold_duration'] = 3.0
        self.nova.timing['confirm_delay'] = LONG
        sids = self.servers(1)
        confirming(self.nova, sids[0])
        begin = self.nova.now
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=1)
        self.assertTrue(ok)
        entry = entries[sids[0]]
        self.assertEqual(R.CONFIRMED, entry.result, entry.message)
        self.assertGreater(self.nova.now - begin, LONG * 0.9)
        bulk = reads(self.nova, '/servers/detail', after=begin + 5)
        self.assertLess(len(bulk), LONG / step.SERVER_AT_LEAST_EVERY + 4)


class TestAdoptedConfirmingWatch(test_stall.WatchCase):

    def test_watch_leaves_the_server_unread_while_nova_confirms(self):
        # FAILS on 549587d (as the batch case).
        self.nova.timing['cold_duration'] = 3.0
        self.nova.timing['confirm_delay'] = LONG
        confirming(self.nova, self.sid)
        begin = self.nova.now
        loop = follower.Follower(self.gateway, self.reporter, interval=1.0)
        server = self.gateway.get_server(self.sid)
        f = step.Follow(server_id=self.sid, source=None,
                        original_status=None, goal=model.Goal.CONFIRM,
                        server=server)
        out = loop.follow(f)
        self.assertEqual(R.CONFIRMED, out.result, out.message)
        servers = reads(self.nova, '/servers/%s' % self.sid,
                        after=begin + 5)
        self.assertLess(len(servers), LONG / step.SERVER_AT_LEAST_EVERY + 4)


class TestExplainWait(test_batch.RunnerTestCase):
    """The wait for Nova's reason: EXPLAIN_POLLS looks and EXPLAIN_SECONDS.

    (It was a count of looks alone, which due polls spend in seconds.)

    Nova marks the record error (errors_out_migration) before
    wrap_instance_event finishes the event with the reason: two conductor
    round trips, under load seconds apart (5 s here: the regular polls
    wait for it, the due ones give up after 4). The server is back on
    its source (not ERROR), so Nova's API does not show its fault: the
    event is the reason.
    """

    def late_events(self, seconds):
        finish = self.nova._finish_event

        def finished(action, event, result, details=None):
            if result == 'Error':
                event['result'] = None  # in flight, not finished yet
                self.nova.after(seconds, lambda: finish(
                    action, event, result, details))
                return
            finish(action, event, result, details)
        self.nova._finish_event = finished

    def run_failing(self, learn):
        if not learn:
            self.patch(cadence, 'LEAST', 10 ** 6)
        self.nova.timing.update(cold_duration=0.6, record_delay=0.1,
                                lag=0.05, confirm_delay=0.3)
        self.late_events(5.0)
        sids = self.servers(6)
        self.nova.fail_migrations(servers=[sids[-1]],
                                  message='disk copy failed')
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=2,
                                     interval=2.0)
        self.assertTrue(ok)
        return entries[sids[-1]]

    def test_reason_found_with_regular_polls(self):
        """The measure can fail: with the regular polls it holds."""
        entry = self.run_failing(learn=False)
        self.assertEqual(R.FAILED, entry.result, entry.message)
        self.assertIn('disk copy failed', entry.message)

    def test_reason_found_with_due_polls(self):
        # FAILS on 549587d: three looks a quarter interval apart are over
        # before Nova has written the reason.
        entry = self.run_failing(learn=True)
        self.assertEqual(R.FAILED, entry.result, entry.message)
        self.assertIn('disk copy failed', entry.message)


class TestNotActedOnHeldUp(CadenceCase):
    """Held up: a server in flight that nothing moves keeps no fast polls."""

    def test_verify_command_running(self):
        self.nova.timing.update(cold_duration=0.6, record_delay=0.1,
                                lag=0.05, confirm_delay=0.3)
        sids = self.servers(4)
        start = self.nova.now
        ok, entries = self.run_batch(
            sids, confirm=True, max_parallel=2, interval=2.0,
            verify_command='[ "$OSC_MIGRATE_SERVER_NAME" != vm3 ] || '
                           'exec sleep 60')
        self.assertTrue(ok)
        hung = entries[sids[-1]]
        self.assertEqual(R.REVERTED, hung.result, hung.message)
        self.assertIn('timed out', hung.message)
        polls = self.polls()
        self.assert_no_storm(polls, 2.0)
        # The verify command's five minutes: polled every interval.
        late = [p for p in polls if start + 30 < p < start + 290]
        self.assertGreater(len(late), 100)
        self.assertLessEqual(len(late), 260 / 2.0 + 1)


class TestInHandHeldUp(test_batch.RunnerTestCase):
    """Held up: what Nova does with a confirm or revert it has in hand."""

    def test_confirm_never_carried_out_times_out_on_a_fresh_view(self):
        self.nova.timing['cold_duration'] = 3.0
        self.nova.timing['confirm_delay'] = 10 ** 6  # the cast is lost
        sids = self.servers(1)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=1,
                                     timeout=120)
        entry = entries[sids[0]]
        self.assertEqual(R.TIMEOUT, entry.result, entry.message)
        self.assertEqual('confirming', entry.follow.migration.status)
        # The deadline's poll read the servers.
        bulk = reads(self.nova, '/servers/detail')
        self.assertGreaterEqual(bulk[-1], entry.finished - 1.5)

    def test_error_while_reverting_shows_in_the_server(self):
        self.nova.timing['cold_duration'] = 3.0
        self.nova.timing['revert_delay'] = 10 * LONG
        sids = self.servers(1)
        self.nova.error_server(sids[0], at=100.0)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=1,
                                     verify_command='exit 1')
        entry = entries[sids[0]]
        self.assertEqual(R.FAILED, entry.result, entry.message)
        self.assertIn('ERROR', entry.message)
        self.assertEqual('reverting', entry.follow.migration.status)
        self.assertLessEqual(entry.finished - 100.0,
                             step.SERVER_AT_LEAST_EVERY + 2.5)

    def test_deleted_while_confirming(self):
        self.nova.timing['cold_duration'] = 3.0
        self.nova.timing['confirm_delay'] = 10 * LONG
        sids = self.servers(1)
        self.nova.delete_server(sids[0], at=100.0)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=1)
        entry = entries[sids[0]]
        self.assertEqual(R.DELETED, entry.result, entry.message)
        self.assertLessEqual(entry.finished - 100.0,
                             step.SERVER_AT_LEAST_EVERY + 2.5)


class TestInHandWatchHeldUp(test_stall.WatchCase):

    def test_deleted_while_confirming(self):
        self.nova.timing['cold_duration'] = 3.0
        self.nova.timing['confirm_delay'] = 10 * LONG
        self.nova.delete_server(self.sid, at=100.0)
        out = self.cold()
        self.assertEqual(R.DELETED, out.result, out.message)
        self.assertLessEqual(self.nova.now - 100.0,
                             step.SERVER_AT_LEAST_EVERY + 2.5)

    def test_error_while_confirming(self):
        self.nova.timing['cold_duration'] = 3.0
        self.nova.timing['confirm_delay'] = 10 * LONG
        self.nova.error_server(self.sid, at=100.0)
        out = self.cold()
        self.assertEqual(R.FAILED, out.result, out.message)
        self.assertIn('ERROR', out.message)
        self.assertLessEqual(self.nova.now - 100.0,
                             step.SERVER_AT_LEAST_EVERY + 2.5)


class TestResubmittedHeldUp(CadenceCase):
    """Held up: lost migrate replies amid quick migrations."""

    def test_lost_then_sent_again_and_lost_then_applied(self):
        self.nova.timing.update(cold_duration=0.6, record_delay=0.1,
                                lag=0.05, confirm_delay=0.3)
        sids = self.servers(6)
        self.nova.lose_reply('migrate', server=sids[3], apply_after=None)
        self.nova.lose_reply('migrate', server=sids[4], apply_after=45.0)
        took, polls = self.drain_these(sids, retries=2)
        self.assert_no_storm(polls, 2.0)
        self.assertLessEqual(len(polls), took / 0.5 + 1)
        # Never two migrations of one server.
        for sid in sids:
            self.assertEqual(1, len(self.nova.records(sid)), sid)


class TestCells(testtools.TestCase):

    def test_same_id_in_two_cells_is_two_migrations(self):
        # FAILS on 549587d: IDs grow per cell (each cell its own
        # database): two migrations of two cells share IDs; the second is
        # taken for the first seen again and its length never counts.
        c = cadence.Cadence(10.0)

        def record(uuid, sid, seconds):
            created = datetime.datetime(2026, 11, 30, 12, 0, 0)
            ended = created + datetime.timedelta(seconds=seconds)
            fmt = '%Y-%m-%dT%H:%M:%S.%f'
            return model.Migration(
                id=7, uuid=uuid, type='migration', status='finished',
                source='a', dest='b', created_at=created.strftime(fmt),
                updated_at=ended.strftime(fmt), server_id=sid)
        c.saw([record('u-cell1', 's1', 1.0), record('u-cell2', 's2', 3.0)])
        self.assertEqual(2.0, c.typical())


class TestConfirmErroredHeldUp(test_batch.RunnerTestCase):

    def test_record_error_after_the_confirm_is_read_at_once(self):
        """The record moving on (to error) is the news: no 30 s wait."""
        self.nova.timing['cold_duration'] = 3.0
        self.nova.timing['confirm_delay'] = 10 * LONG
        sids = self.servers(1)
        nova = self.nova

        def fail():
            record = next(m for m in nova._migrations
                          if m['instance_uuid'] == sids[0])
            nova._save(record, status='error')
            nova._save(nova._servers[sids[0]], vm_state='error',
                       task_state=None)
        nova.at(100.0, fail)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=1)
        entry = entries[sids[0]]
        self.assertEqual(R.FAILED, entry.result, entry.message)
        self.assertLessEqual(entry.finished - 100.0, 3.0)
