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

"""A poll reads the servers only when one may tell more than its record.

While a migration is under way (its record pre-migrating, migrating,
running...) nothing the verdict needs changes in the server: a poll is the
one read of the records, and the servers are read at least every
SERVER_AT_LEAST_EVERY seconds (a deletion shows only there). On a real
cloud, where a migration takes minutes, that halves what following costs.
"""

from osc_migrate_plus.engine import step
from osc_migrate_plus import model
from tests.unit.engine import test_batch
from tests.unit.engine import test_stall

R = model.Result
LONG = 300.0  # a cold migration's copy, seconds


class Moments:
    """When the fake's servers reached VERIFY_RESIZE (its clock)."""

    def __init__(self, nova):
        self.resized = {}
        save = nova._save

        def saved(obj, **changes):
            save(obj, **changes)
            if changes.get('vm_state') == 'resized':
                self.resized[obj['id']] = nova.now

        nova._save = saved


class TestBatchPolls(test_batch.RunnerTestCase):

    def setUp(self):
        super().setUp()
        self.nova.timing['cold_duration'] = LONG
        self.moments = Moments(self.nova)

    def reads(self, path, extra=''):
        return [when for when, method, p, x in self.nova.requests
                if method == 'GET' and p == path and (not extra or extra in x)]

    def test_one_request_a_poll_while_under_way(self):
        sids = self.servers(2)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=2)
        self.assertTrue(ok)
        self.assertEqual({R.CONFIRMED}, {e.result for e in entries.values()})
        polls = self.reads('/os-migrations', 'changes-since')
        servers = self.reads('/servers/detail')
        # About LONG seconds of polls, one a second (interval 1).
        self.assertGreater(len(polls), LONG * 0.9)
        # The servers: every 30 s while under way, and in the few rounds
        # around each start and verdict.
        self.assertLess(len(servers), LONG / step.SERVER_AT_LEAST_EVERY + 12)
        self.assertGreaterEqual(len(servers),
                                LONG / step.SERVER_AT_LEAST_EVERY - 1)
        gaps = [b - a for a, b in zip(servers, servers[1:])]
        self.assertLessEqual(max(gaps), step.SERVER_AT_LEAST_EVERY + 1.5)
        # Nothing waits for that: each confirm goes within two polls of
        # the server showing VERIFY_RESIZE.
        confirms = {path.split('/')[2]: when
                    for when, method, path, extra in self.nova.requests
                    if extra == 'confirmResize'}
        for sid in sids:
            self.assertLessEqual(confirms[sid] - self.moments.resized[sid],
                                 2.5, sid)

    def test_every_poll_reads_both_when_a_record_has_moved_on(self):
        """The measure can fail: servers read every round without it."""
        sids = self.servers(1)
        self.patch(step.Follow, 'server_matters',
                   lambda f, records, now: True)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=1)
        self.assertTrue(ok)
        self.assertEqual(len(self.reads('/os-migrations', 'changes-since')),
                         len(self.reads('/servers/detail')))

    def test_deleted_while_under_way(self):
        """Its record vanishes with it: only the server shows it."""
        sids = self.servers(1)
        deleted_at = 100.0
        self.nova.delete_server(sids[0], at=deleted_at)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=1)
        self.assertTrue(ok)
        entry = entries[sids[0]]
        self.assertEqual(R.DELETED, entry.result)
        self.assertLessEqual(entry.finished - deleted_at,
                             step.SERVER_AT_LEAST_EVERY + 2.5)

    def test_one_request_a_poll_while_nova_confirms(self):
        """A confirm in hand (record confirming): the record is the news."""
        self.nova.timing['cold_duration'] = 3.0
        self.nova.timing['confirm_delay'] = LONG
        sids = self.servers(1)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=1)
        self.assertTrue(ok)
        self.assertEqual(R.CONFIRMED, entries[sids[0]].result)
        sent = next(w for w, m, p, x in self.nova.requests
                    if x == 'confirmResize')
        polls = [w for w in self.reads('/os-migrations', 'changes-since')
                 if w > sent]
        servers = [w for w in self.reads('/servers/detail') if w > sent]
        self.assertGreater(len(polls), LONG * 0.9)
        self.assertLess(len(servers), LONG / step.SERVER_AT_LEAST_EVERY + 4)
        # Seen confirmed within a poll or two of Nova's end of it.
        self.assertLessEqual(entries[sids[0]].finished - (sent + LONG), 2.5)

    def test_error_while_confirming_shows_in_the_server(self):
        """Record left confirming, server in ERROR: failed, not waited on."""
        self.nova.timing['cold_duration'] = 3.0
        self.nova.timing['confirm_delay'] = 10 * LONG
        sids = self.servers(1)
        self.nova.error_server(sids[0], at=100.0)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=1)
        self.assertTrue(ok)
        entry = entries[sids[0]]
        self.assertEqual(R.FAILED, entry.result, entry.message)
        self.assertIn('ERROR', entry.message)
        self.assertLessEqual(entry.finished - 100.0,
                             step.SERVER_AT_LEAST_EVERY + 2.5)


class TestWatchPolls(test_stall.WatchCase):

    def test_one_request_a_poll_while_under_way(self):
        self.nova.timing['cold_duration'] = LONG
        moments = Moments(self.nova)
        out = self.cold()
        self.assertEqual(R.CONFIRMED, out.result, out.message)
        records = [w for w, m, p, x in self.nova.requests
                   if m == 'GET' and p == '/os-migrations']
        servers = [w for w, m, p, x in self.nova.requests
                   if m == 'GET' and p == '/servers/%s' % self.sid]
        self.assertGreater(len(records), LONG * 0.9)
        self.assertLess(len(servers), LONG / step.SERVER_AT_LEAST_EVERY + 12)
        confirm = next(w for w, m, p, x in self.nova.requests
                       if x == 'confirmResize')
        self.assertLessEqual(confirm - moments.resized[self.sid], 2.5)

    def test_deleted_while_under_way(self):
        self.nova.timing['cold_duration'] = LONG
        self.nova.delete_server(self.sid, at=100.0)
        out = self.cold(goal=model.Goal.MIGRATE)
        self.assertEqual(R.DELETED, out.result)
        self.assertLessEqual(self.nova.now - 100.0,
                             step.SERVER_AT_LEAST_EVERY + 2.5)


class TestAbandoned(test_stall.WatchCase):
    """nova-compute restarts mid-copy: the record is left migrating.

    (``fakenova.restart_compute``, after ComputeManager._init_instance.)
    """

    def test_watch_fails_it_within_two_minutes(self):
        self.nova.timing['cold_duration'] = LONG
        self.nova.restart_compute('compute1', at=100.0)
        out = self.cold()
        self.assertEqual(R.FAILED, out.result, out.message)
        self.assertIn('abandoned', out.message)
        self.assertEqual('migrating', out.migration.status)
        self.assertLessEqual(self.nova.now - 100.0,
                             step.SERVER_AT_LEAST_EVERY +
                             step.ABANDONED_AFTER + 3)

    def test_a_copy_that_goes_on_is_never_called_abandoned(self):
        """The plan's view (idle, older than the record) proves nothing."""
        self.nova.timing['cold_duration'] = LONG
        out = self.cold()
        self.assertEqual(R.CONFIRMED, out.result, out.message)
