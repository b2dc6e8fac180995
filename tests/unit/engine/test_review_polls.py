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

"""Review of the poll that reads the servers only when they may tell more.

Each test here is a night in production the change must survive.
"""

from osc_migrate_plus import model
from tests.unit.engine import test_batch
from tests.unit.engine import test_stall

R = model.Result
LONG = 300.0  # a cold migration's copy, seconds


def setting(test, holds, what):
    """A precondition of the scenario (not what the test proves)."""
    test.assertTrue(holds, 'the scenario did not happen: %s' % what)


def server_reads(nova, path='/servers/detail'):
    return [w for w, m, p, x in nova.requests if m == 'GET' and p == path]


class TestQueuedViews(test_batch.RunnerTestCase):
    """A server waiting its turn is checked against the plan from its view.

    ``Runner._still_planned``: "The bulk reads keep queued servers' views
    current". A slot can free in a poll that read no servers (a timeout,
    a start that never showed): the next server is then judged from a view
    up to SERVER_AT_LEAST_EVERY seconds old.
    """

    def live_moved_by_someone_else(self, at):
        a, b = self.servers(2)
        # A's live migration stalls: its record says running until the
        # deadline, so no poll needs the servers.
        self.nova.stall_live(a)
        # Someone (core OSC) live-migrates B meanwhile; done in ~3 s.
        self.nova.start_elsewhere(b, live=True, at=at)
        return a, b

    def run_two(self, at):
        a, b = self.live_moved_by_someone_else(at=at)
        ok, entries = self.run_batch([a, b], mode='live', max_parallel=1,
                                     timeout=100)
        self.assertTrue(ok)
        self.assertEqual(R.TIMEOUT, entries[a].result)
        # The setting: no poll read the servers between the other
        # operator's migration of B being over and A's deadline (the look
        # at the deadline itself aside).
        reads = [w for w, m, p, x in self.nova.requests
                 if m == 'GET' and p == '/servers/detail']
        between = [w for w in reads
                   if at + 3.5 < w < entries[a].finished - 0.5]
        setting(self, at + 3.5 < entries[a].finished and not between,
                'servers read at %s, B moved by %.1f, A ended %.1f'
                % (between, at + 3.5, entries[a].finished))
        return a, b, entries

    def test_moved_since_plan_not_migrated_again_after_a_timeout(self):
        """Idle at the last servers read, moved by its turn."""
        a, b, entries = self.run_two(at=94.0)
        # Only the other operator's migration: never a second one of ours.
        self.assertEqual(1, len(self.nova.records(b)),
                         [(r['id'], r['status']) for r in
                          self.nova.records(b)])
        self.assertEqual(R.SKIPPED, entries[b].result, entries[b].message)
        self.assertIn('moved since the plan', entries[b].message)

    def test_migrating_at_last_read_then_moved_is_no_failure(self):
        """Migrating at the last servers read, moved by its turn.

        The stale view says "already migrating": adopted, and the direct
        read shows no migration under way (the other one is over), so the
        step waits START_GRACE for a record that never comes and fails a
        server that is fine.
        """
        a, b, entries = self.run_two(at=92.5)
        self.assertEqual(1, len(self.nova.records(b)))
        self.assertNotEqual(R.FAILED, entries[b].result, entries[b].message)
        self.assertEqual(R.SKIPPED, entries[b].result, entries[b].message)


class TestDeadline(test_batch.RunnerTestCase):
    """At the deadline the verdict is drawn from the views in hand."""

    def test_deleted_shortly_before_the_deadline_is_deleted(self):
        """Not "timed out; the migration goes on in Nova" (exit 3).

        A deleted server needs no goal (exit 0); before the change the
        poll before the deadline listed it DELETED.
        """
        self.nova.timing['cold_duration'] = LONG
        [sid] = self.servers(1)
        deleted_at = 95.0
        self.nova.delete_server(sid, at=deleted_at)
        ok, entries = self.run_batch([sid], confirm=True, timeout=100)
        self.assertTrue(ok)
        entry = entries[sid]
        # The setting: no poll read the servers between the deletion and
        # the deadline (the look at the deadline itself aside).
        between = [w for w in server_reads(self.nova)
                   if deleted_at < w < entry.finished - 0.5]
        setting(self, deleted_at < entry.finished - 1 and not between,
                'servers read at %s, deleted %.1f, ended %.1f'
                % (between, deleted_at, entry.finished))
        self.assertEqual(R.DELETED, entry.result, entry.message)


class TestWatchDeadline(test_stall.WatchCase):

    def test_deleted_shortly_before_the_deadline_is_deleted(self):
        self.nova.timing['cold_duration'] = LONG
        deleted_at = 95.0
        self.nova.delete_server(self.sid, at=deleted_at)
        out = self.cold(timeout=100)
        between = [w for w in server_reads(self.nova, '/servers/%s'
                                           % self.sid)
                   if deleted_at < w < self.nova.now - 0.5]
        setting(self, deleted_at < self.nova.now - 1 and not between,
                'server read at %s, deleted %.1f, ended %.1f'
                % (between, deleted_at, self.nova.now))
        self.assertEqual(R.DELETED, out.result, out.message)


class TestRecordLeftUnderWay(test_batch.RunnerTestCase):
    """nova-compute restarts during the copy: the record is never moved on.

    ComputeManager._init_instance rolls the server back onto its source
    and clears its task, and leaves the record ``migrating`` for good
    (fakenova.restart_compute). Only the server tells the migration is
    over; the step waits for the record (UNDER_WAY), and the verdict comes
    at --timeout, saying the migration goes on.
    """

    def test_failed_soon_not_timed_out_an_hour_later(self):
        self.nova.timing['cold_duration'] = LONG
        [sid] = self.servers(1)
        restarted_at = 100.0
        self.nova.restart_compute('compute1', at=restarted_at)
        ok, entries = self.run_batch([sid], confirm=True, timeout=3600)
        self.assertTrue(ok)
        entry = entries[sid]
        [record] = self.nova.records(sid)
        server = self.nova.server(sid)
        setting(self, record['status'] == 'migrating' and
                server['status'] == 'ACTIVE' and
                server['OS-EXT-SRV-ATTR:host'] == 'compute1',
                'record %s, server %s' % (record['status'],
                                          server['status']))
        self.assertNotIn('goes on in Nova', entry.message)
        self.assertEqual(R.FAILED, entry.result, entry.message)
        self.assertLess(entry.finished - restarted_at, 600)


class TestServersReadFails(test_batch.RunnerTestCase):
    """The records read answers, the servers read right after does not."""

    def test_no_change_skipped_and_confirm_in_time(self):
        self.nova.timing['cold_duration'] = LONG
        [sid] = self.servers(1)
        resized = {}
        save = self.nova._save

        def saved(obj, **changes):
            save(obj, **changes)
            if changes.get('vm_state') == 'resized':
                resized[obj['id']] = self.nova.now
        self.nova._save = saved
        # From the moment the record says finished (the servers are due
        # then), the next servers reads fail, past the gateway's retries.
        self.nova.at(LONG + 0.6, lambda: self.nova.fail_reads(
            '/servers/detail', times=12))
        ok, entries = self.run_batch([sid], confirm=True)
        self.assertTrue(ok)
        self.assertEqual(R.CONFIRMED, entries[sid].result,
                         entries[sid].message)
        failed = [t for t in self.reporter.infos if 'poll failed' in t]
        setting(self, len(failed) >= 2, failed)
        [confirm] = self.nova.posts('confirmResize')
        # Had a failed read moved the servers' window on, VERIFY_RESIZE
        # would show only in the direct read of a server not heard of for
        # STALE_AFTER (60 s).
        self.assertLess(confirm - resized[sid], 30)


class TestLostStart(test_batch.RunnerTestCase):
    """The answer to the migrate request is lost; Nova applies it late."""

    def test_applied_late_followed_once(self):
        self.nova.timing['cold_duration'] = LONG
        [sid] = self.servers(1)
        self.nova.lose_reply('migrate', status=504, apply_after=None)
        self.nova.apply_lost(at=45.0)
        ok, entries = self.run_batch([sid], confirm=True)
        self.assertTrue(ok)
        self.assertEqual(R.CONFIRMED, entries[sid].result,
                         entries[sid].message)
        self.assertEqual(1, len(self.nova.records(sid)))
        self.assertEqual(1, len(self.nova.posts('migrate')))
