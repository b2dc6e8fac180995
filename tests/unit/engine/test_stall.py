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

"""Live migrations that stall: the detector, the step, batch and resume."""

import json
import os
import re

import testtools

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import follower
from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import session
from osc_migrate_plus.engine import stall
from osc_migrate_plus.engine import step
from osc_migrate_plus import gateway as gw
from osc_migrate_plus import model
from tests.unit.engine import test_batch
from tests.unit import fakenova

R = model.Result
GIB = 1024 ** 3


def doc(remaining, total=4 * GIB, disk_remaining=0, disk_total=0, mid=7):
    return {'id': mid, 'memory_total_bytes': total,
            'memory_remaining_bytes': remaining,
            'memory_processed_bytes': None if remaining is None
            else total - remaining,
            'disk_total_bytes': disk_total,
            'disk_remaining_bytes': disk_remaining}


class TestDetector(testtools.TestCase):
    """stall.Tracker: when the figures say a migration is stuck."""

    def test_decreasing_is_never_stalled(self):
        t = stall.Tracker(migration_id=7)
        for second in range(0, 600, 10):
            t.look(doc(4 * GIB - second * 1024 ** 2), second)
            self.assertFalse(t.is_stalled(second, 120), second)

    def test_flat_is_stalled_after_stall_after(self):
        t = stall.Tracker(migration_id=7)
        t.look(doc(2 * GIB), 0)
        left = int(0.09 * 4 * GIB)
        t.look(doc(left), 10)
        for second in (20, 60, 129):
            t.look(doc(left), second)
            self.assertFalse(t.is_stalled(second, 120), second)
        t.look(doc(left), 130)
        self.assertTrue(t.is_stalled(130, 120))
        self.assertEqual('stalled 120 s at 91%', t.describe(130))

    def test_wobbling_around_the_same_low_is_stalled(self):
        # Dirtied pages make the figure rise and fall: no new low, no
        # progress.
        t = stall.Tracker(migration_id=7)
        t.look(doc(GIB), 0)
        for second, left in ((30, GIB + 5), (60, GIB - 0), (90, GIB + 9),
                             (120, GIB)):
            t.look(doc(left), second)
        self.assertTrue(t.is_stalled(120, 120))
        t.look(doc(GIB - 1), 121)
        self.assertFalse(t.is_stalled(121, 120))

    def test_no_figures(self):
        t = stall.Tracker(migration_id=7)
        for second in (0, 200, 400):
            self.assertIsNone(t.look(doc(None, total=None), second))
        self.assertFalse(t.is_stalled(400, 120))
        self.assertIsNone(stall.figures(doc(0, total=0)))
        self.assertIsNone(stall.figures({}))

    def test_a_disk_still_copying_is_progress(self):
        t = stall.Tracker(migration_id=7)
        t.look(doc(GIB, disk_remaining=10 * GIB, disk_total=20 * GIB), 0)
        t.look(doc(GIB, disk_remaining=5 * GIB, disk_total=20 * GIB), 100)
        self.assertFalse(t.is_stalled(150, 120))
        t.look(doc(GIB, disk_remaining=5 * GIB, disk_total=20 * GIB), 220)
        self.assertTrue(t.is_stalled(220, 120))
        # (24 - 6) of 24 GiB copied.
        self.assertEqual(75, t.percent)


class Reporter:
    wants_live_progress = False

    def __init__(self):
        self.notes = []
        self.ticks = []

    def phase(self, server, migration, phase, elapsed):
        self.notes.append(phase)

    def tick(self, server, migration, phase, elapsed, progress):
        self.ticks.append(progress)

    def note(self, server, text):
        self.notes.append(text)


class WatchCase(testtools.TestCase):
    """One server on the fake Nova, followed by watch's driver."""

    def setUp(self):
        super().setUp()
        self.nova = fakenova.FakeNova()
        self.useFixture(self.nova.client_time())
        self.gateway = gw.NovaGateway(self.nova.proxy)
        self.sid = self.nova.add_server('vm')
        self.reporter = Reporter()

    def cold(self, goal=model.Goal.CONFIRM, timeout=3600.0):
        """``watch --start`` of a cold migration, to its outcome."""
        loop = follower.Follower(self.gateway, self.reporter, interval=1.0,
                                 timeout=timeout)
        server = self.gateway.get_server(self.sid)
        f = step.Follow(server_id=self.sid, source=server.host,
                        original_status=server.status, goal=goal,
                        kind=model.Kind.COLD, server=server)
        loop.start(f, live=False, host=None, block_migration=None)
        return loop.follow(f)


class TestWatchStep(WatchCase):
    """The step as watch drives it, against the fake Nova."""

    def follow(self, on_stall, stall_after=5.0, timeout=120.0):
        loop = follower.Follower(
            self.gateway, self.reporter, interval=1.0, timeout=timeout,
            on_stall=stall.Policy(on_stall), stall_after=stall_after)
        server = self.gateway.get_server(self.sid)
        f = step.Follow(server_id=self.sid, source=server.host,
                        original_status=server.status,
                        kind=model.Kind.LIVE, server=server)
        loop.start(f, live=True, host=None, block_migration=None)
        return loop.follow(f)

    def forced(self):
        return self.nova.count('POST', 'force_complete')

    def test_flat_then_forced_to_complete(self):
        self.nova.stall_live(self.sid)
        out = self.follow('force-complete')
        self.assertEqual(R.MIGRATED, out.result, out.message)
        self.assertRegex(out.message,
                         r'^stalled [5-6] s at 91%: forced to complete$')
        self.assertEqual(1, self.forced())
        self.assertEqual(1, self.nova.records(self.sid)[0]['forced'])
        self.assertNotEqual('compute1',
                            self.nova.server(self.sid)[fakenova_host()])
        self.assertTrue(any('forcing it to complete' in n
                            for n in self.reporter.notes))

    def test_flat_then_aborted_stays_on_its_source(self):
        self.nova.stall_live(self.sid)
        out = self.follow('abort')
        self.assertEqual(R.ABORTED, out.result, out.message)
        self.assertRegex(out.message, r'^stalled [5-6] s at 91%: aborted, '
                         r'the server stays on compute1$')
        self.assertEqual('cancelled', self.nova.records(self.sid)[0][
            'status'])
        self.assertEqual('compute1',
                         self.nova.server(self.sid)[fakenova_host()])
        self.assertEqual(0, self.forced())
        self.assertEqual(1, self.nova.count('DELETE', '/migrations/'))

    def test_decreasing_is_left_alone(self):
        # The fake's figures decrease all along its 2 s copy.
        out = self.follow('abort', stall_after=1.5)
        self.assertEqual(R.MIGRATED, out.result, out.message)
        self.assertEqual('', out.message)
        self.assertEqual(0, self.nova.count('DELETE', '/migrations/'))

    def test_no_figures_is_never_stalled_and_says_so_once(self):
        self.nova.stall_live(self.sid, figures=False)
        out = self.follow('force-complete', stall_after=2, timeout=30)
        self.assertEqual(R.TIMEOUT, out.result)
        self.assertEqual(0, self.forced())
        self.assertEqual(1, self.reporter.notes.count(stall.NO_FIGURES))

    def test_no_figures_and_it_completes(self):
        self.nova.no_progress_figures(self.sid)
        out = self.follow('abort', stall_after=0.5)
        self.assertEqual((R.MIGRATED, ''), (out.result, out.message))
        self.assertEqual(1, self.reporter.notes.count(stall.NO_FIGURES))
        self.assertEqual(0, self.nova.count('DELETE', '/migrations/'))

    def test_wait_does_nothing(self):
        self.nova.stall_live(self.sid)
        out = self.follow('wait', stall_after=2, timeout=30)
        self.assertEqual(R.TIMEOUT, out.result)
        self.assertEqual((0, 0), (self.forced(), self.nova.count(
            'DELETE', '/migrations/')))
        # Nor reads the progress nobody needs.
        self.assertEqual(0, self.nova.count('GET', '/migrations'))

    def test_force_answer_lost_is_never_sent_again(self):
        self.nova.stall_live(self.sid)
        self.nova.lose_reply('force_complete', status=504, apply_after=3)
        out = self.follow('force-complete')
        self.assertEqual(R.MIGRATED, out.result, out.message)
        self.assertEqual(1, self.forced())
        self.assertTrue(any('not sent again' in n
                            for n in self.reporter.notes))

    def test_force_lost_and_never_applied_meets_the_deadline(self):
        self.nova.stall_live(self.sid)
        self.nova.lose_reply('force_complete', status='reset',
                             apply_after=None)
        out = self.follow('force-complete', stall_after=3, timeout=40)
        self.assertEqual(R.TIMEOUT, out.result)
        self.assertRegex(out.message, r'^stalled 3 s at 91%: forced to '
                         r'complete; timed out after 40s')
        self.assertEqual(1, self.forced())

    def test_forced_but_still_not_done_meets_the_deadline(self):
        self.nova.stall_live(self.sid, force_works=False)
        out = self.follow('force-complete', stall_after=3, timeout=40)
        self.assertEqual(R.TIMEOUT, out.result)
        self.assertEqual(1, self.forced())
        self.assertEqual(1, self.nova.records(self.sid)[0]['forced'])

    def test_refused_by_policy_is_reported_never_retried(self):
        self.nova.stall_live(self.sid)
        self.nova.fail_request(action='force_complete', status=403,
                               times=None)
        out = self.follow('force-complete', stall_after=3, timeout=30)
        self.assertEqual(R.TIMEOUT, out.result)
        self.assertIn('stalled 3 s at 91%: force-complete refused: HTTP '
                      '403', out.message)
        self.assertEqual(1, self.forced())

    def test_abort_refused_is_reported_never_retried(self):
        self.nova.stall_live(self.sid)
        self.nova.fail_request(method='DELETE', status=403, times=None)
        out = self.follow('abort', stall_after=3, timeout=30)
        self.assertEqual(R.TIMEOUT, out.result)
        self.assertIn('stalled 3 s at 91%: abort refused: HTTP 403',
                      out.message)
        self.assertEqual(1, self.nova.count('DELETE', '/migrations/'))


def fakenova_host():
    return 'OS-EXT-SRV-ATTR:host'


class TestFakeNova(WatchCase):
    """The fake answers force_complete as Nova does."""

    def test_not_running_is_400_not_migrating_is_409(self):
        self.nova.start_elsewhere(self.sid, live=True)
        self.nova.settle()
        mid = self.nova.records(self.sid)[0]['id']
        e = self.assertRaises(model.NovaError, self.gateway.force_complete,
                              self.sid, mid)
        self.assertEqual(409, e.status)
        self.nova.stall_live(self.sid)
        self.nova.start_elsewhere(self.sid, live=True)
        self.nova.advance(0.6)  # accepted, not yet running
        mid = self.nova.records(self.sid)[0]['id']
        e = self.assertRaises(model.NovaError, self.gateway.force_complete,
                              self.sid, mid)
        self.assertEqual(400, e.status)
        self.assertIn('Cannot force complete', str(e))

    def test_routes_exist_from_their_microversion(self):
        for method, path, before in (
                ('GET', '/servers/%s/migrations', '2.22'),
                ('POST', '/servers/%s/migrations/1/action', '2.21'),
                ('DELETE', '/servers/%s/migrations/1', '2.23')):
            r = self.nova.proxy.request(path % self.sid, method,
                                        json={'force_complete': None},
                                        microversion=before)
            self.assertEqual(404, r.status_code, (method, path))
        r = self.nova.proxy.request('/servers/%s/migrations' % self.sid,
                                    'GET', microversion='2.23')
        self.assertEqual(200, r.status_code)

    def test_member_is_refused_by_policy(self):
        self.nova.stall_live(self.sid)
        self.nova.start_elsewhere(self.sid, live=True)
        self.nova.settle()
        mid = self.nova.records(self.sid)[0]['id']
        self.nova.caller = fakenova.Caller('member', 'p1')
        e = self.assertRaises(model.NovaError, self.gateway.force_complete,
                              self.sid, mid)
        self.assertEqual(403, e.status)
        self.assertIn('force_complete', str(e))


class TestBatch(test_batch.RunnerTestCase):

    def events(self):
        with open(self.path) as f:
            return [json.loads(line) for line in f
                    if '"event"' in line]

    def test_stalled_live_migrations_aborted_cost_one_read_each(self):
        sids = self.servers(2)
        self.nova.stall_live(sids[0])
        ok, entries = self.run_batch(sids, mode='live', on_stall='abort',
                                     stall_after=3, timeout=60)
        self.assertTrue(ok)
        stuck, fine = entries[sids[0]], entries[sids[1]]
        self.assertEqual((R.ABORTED, R.MIGRATED),
                         (stuck.result, fine.result))
        self.assertRegex(stuck.message, r'^stalled [3-4] s at 91%: '
                         r'aborted, the server stays on compute1$')
        self.assertEqual('compute1', self.nova.server(sids[0])[
            fakenova_host()])
        names = [e['event'] for e in self.events()
                 if e['server'] == sids[0]]
        self.assertIn('stalled', names)
        self.assertLess(names.index('stalled'), names.index('abort-sent'))
        # One progress read per poll and running live migration, never
        # more: the polls themselves are counted by the bulk reads.
        polls = len([1 for _, m, p, extra in self.nova.requests
                     if p == '/os-migrations' and 'changes-since' in extra])
        for sid in sids:
            reads = self.nova.count('GET', '%s/migrations/' % sid)
            self.assertLessEqual(reads, polls)
        self.assertGreater(self.nova.count('GET', '/migrations/'), 0)
        self.assertEqual(3, batch_exit(entries))

    def test_wait_costs_nothing(self):
        sids = self.servers(1)
        ok, entries = self.run_batch(sids, mode='live', timeout=60)
        self.assertEqual(R.MIGRATED, entries[sids[0]].result)
        self.assertEqual(0, self.nova.count('GET', '/migrations/'))

    def test_force_complete_journaled_before_it_goes_out(self):
        sids = self.servers(1)
        self.nova.stall_live(sids[0])
        journaled = []
        original = self.nova._migration_action

        def spy(req, sid, mid):
            # What the journal holds as the request reaches Nova.
            journaled.extend(e['event'] for e in self.events())
            return original(req, sid, mid)
        self.nova._migration_action = spy
        ok, entries = self.run_batch(sids, mode='live',
                                     on_stall='force-complete',
                                     stall_after=3, timeout=60)
        self.assertEqual(R.MIGRATED, entries[sids[0]].result)
        self.assertRegex(entries[sids[0]].message,
                         r'^stalled [3-4] s at 91%: forced to complete$')
        self.assertIn('force-complete-sent', journaled)


def batch_exit(entries):
    from osc_migrate_plus.v1 import batch as batch_cmd
    return batch_cmd.batch_exit_code(list(entries.values()), True)


class TestResume(test_batch.FakeNovaTestCase):
    """A resume honours what the journal says was done of a stall."""

    header = {'options': {'mode': 'live', 'host': None,
                          'block_migration': None, 'confirm': False,
                          'verify_command': None}}

    def setUp(self):
        super().setUp()
        self.sid = self.nova.add_server('vm')
        self.journal.write({'type': 'plan', 'servers': [
            {'id': self.sid, 'name': 'vm', 'project_id': 'p1',
             'source': 'compute1', 'status': 'ACTIVE', 'mode': 'live',
             'verdict': 'planned', 'reason': ''}]})
        self.nova.stall_live(self.sid)
        self.journal.event(self.sid, 'submitting', baseline_id=0)
        self.nova.start_elsewhere(self.sid, live=True)
        self.journal.event(self.sid, 'submitted')
        self.nova.advance(5)
        self.mid = self.nova.records(self.sid)[0]['id']
        self.journal.event(self.sid, 'migration', migration_id=self.mid)
        self.journal.event(self.sid, 'stalled', note='stalled 120 s at 91%',
                           migration_id=self.mid, policy='force-complete')

    def resume(self, **options):
        self.journal.close()
        resumption = session.Resumption(self.path)
        self.addCleanup(resumption.close)
        resumed = resumption.start(self.gateway, test_batch.Reporter(),
                                   batch.Options(interval=1, mode='live',
                                                 **options))
        resumed.run()
        return resumed.entries[0]

    def test_replay_keeps_what_was_done(self):
        self.journal.event(self.sid, 'force-complete-sent',
                           note='stalled 120 s at 91%', migration_id=self.mid)
        saved = jrn.replay(self.path).servers[self.sid]
        self.assertEqual({'action': 'force-complete',
                          'note': 'stalled 120 s at 91%'}, saved.stall)

    def test_never_forces_twice(self):
        # The first run journaled it, then died: sent or not, never again.
        self.journal.event(self.sid, 'force-complete-sent',
                           note='stalled 120 s at 91%', migration_id=self.mid)
        entry = self.resume(on_stall='force-complete', stall_after=2,
                            timeout=20)
        self.assertEqual(0, self.nova.count('POST', 'force_complete'))
        self.assertEqual(R.TIMEOUT, entry.result)
        self.assertTrue(entry.message.startswith(
            'stalled 120 s at 91%: forced to complete; timed out'),
            entry.message)

    def test_an_abort_sent_ends_aborted(self):
        self.journal.event(self.sid, 'abort-sent', why='stall',
                           note='stalled 120 s at 91%', migration_id=self.mid)
        self.gateway.abort(self.sid, self.mid)  # it did go out
        entry = self.resume(on_stall='abort', stall_after=2, timeout=20)
        self.assertEqual(R.ABORTED, entry.result, entry.message)
        self.assertEqual('stalled 120 s at 91%: aborted, the server stays '
                         'on compute1', entry.message)
        self.assertEqual(1, self.nova.count('DELETE', '/migrations/'))


class TestMessages(testtools.TestCase):

    def test_no_figures_message_is_the_documented_one(self):
        path = os.path.join(os.path.dirname(__file__), '..', '..', '..',
                            'doc', 'source', 'user', 'stalls.rst')
        with open(path) as f:
            text = f.read()
        self.assertIn(stall.NO_FIGURES, text)
        for pattern in (r'stalled 120 s at 91%: forced to complete',
                        r'stalled 120 s at 91%: aborted, the server stays '
                        r'on compute1'):
            self.assertTrue(re.search(pattern, text), pattern)
