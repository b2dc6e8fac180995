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

"""The poll loop with a scripted Nova and a fake clock."""

import testtools

from osc_migrate_plus.engine import follower
from osc_migrate_plus.engine import verdict as v
from osc_migrate_plus import gateway as gw

R = v.Result


def srv(status, host, task_state=None, fault=None):
    return v.Server('sid', 'vm', status, task_state, host, 'p', fault)


def rec(status, type_='migration', mid=5, source='src', dest='dst'):
    return v.Migration(mid, 'u%d' % mid, type_, status, source, dest,
                       '2026-01-01T00:00:00', '2026-01-01T00:00:09')


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class FakeGateway:
    """Nova as a script: each poll pops the next (server, record) state.

    The last state repeats. Calls are recorded, requests counted.
    """

    def __init__(self, states, microversion='2.100'):
        self.states = list(states)
        self.calls = []
        self.requests = 0
        self.errors = {}
        self._mv = microversion

    def supports(self, version):
        return tuple(map(int, self._mv.split('.'))) >= tuple(
            map(int, version.split('.')))

    def _state(self):
        state = self.states[0]
        if len(self.states) > 1:
            self.states.pop(0)
        if isinstance(state, Exception):
            raise state
        return state

    def get_server(self, server_id):
        self.requests += 1
        self._current = self._state()
        return self._current[0]

    def newest_migration(self, server_id):
        self.requests += 1
        return self._current[1]

    def migrations(self, server_id):
        self.requests += 1
        return [self._current[1]] if self._current[1] else []

    def live_progress(self, server_id, migration_id):
        self.requests += 1
        return {'memory_total_bytes': 100, 'memory_processed_bytes': 50}

    def _act(self, name, *args):
        self.calls.append((name,) + args)
        error = self.errors.get(name)
        if error:
            if isinstance(error, list):
                error = error.pop(0) if error else None
            if error:
                raise error

    def confirm(self, server_id):
        self._act('confirm', server_id)

    def revert(self, server_id):
        self._act('revert', server_id)

    def abort(self, server_id, migration_id):
        self._act('abort', server_id, migration_id)

    reasons = None

    def explain(self, server, migration):
        self.calls.append(('explain',))
        if self.reasons:
            return self.reasons.pop(0)
        return 'No valid host was found.'


class Reporter:
    def __init__(self, live=False):
        self.wants_live_progress = live
        self.phases = []
        self.notes = []
        self.progress = []

    def phase(self, server, migration, phase, elapsed):
        self.phases.append(phase)

    def tick(self, server, migration, phase, elapsed, progress):
        if progress:
            self.progress.append(progress)

    def note(self, server, text):
        self.notes.append(text)


class TestFollower(testtools.TestCase):

    def follow(self, states, goal=v.Goal.MIGRATE, timeout=3600.0,
               abort=False, after_id=0, live=False, original='ACTIVE',
               mv='2.100'):
        self.gateway = FakeGateway(states, mv)
        self.reporter = Reporter(live)
        self.clock = Clock()
        loop = follower.Follower(self.gateway, self.reporter, interval=2,
                                 timeout=timeout, abort_on_timeout=abort,
                                 clock=self.clock, sleep=self.clock.sleep)
        target = v.Target('sid', 'src', original, goal)
        return loop.follow(target, after_id)

    def test_cold_confirm_end_to_end(self):
        out = self.follow([
            (srv('RESIZE', 'src', 'resize_prep'), None),
            (srv('RESIZE', 'src', 'resize_migrating'), rec('migrating')),
            (srv('VERIFY_RESIZE', 'dst'), rec('finished')),
            (srv('VERIFY_RESIZE', 'dst'), rec('confirming')),
            (srv('VERIFY_RESIZE', 'dst'), rec('confirmed')),
            (srv('ACTIVE', 'dst'), rec('confirmed')),
        ], goal=v.Goal.CONFIRM)
        self.assertEqual(R.CONFIRMED, out.result)
        self.assertEqual([('confirm', 'sid')], self.gateway.calls)
        self.assertEqual(['starting', 'migrating', 'verify_resize',
                          'confirming'], self.reporter.phases[:4])
        # Two requests a poll, six polls.
        self.assertEqual(12, self.gateway.requests)

    def test_stale_record_is_ignored_until_ours_appears(self):
        # The newest record predates our start: never a verdict from it.
        out = self.follow([
            (srv('ACTIVE', 'src'), rec('confirmed', mid=4)),
            (srv('RESIZE', 'src', 'resize_prep'), rec('confirmed', mid=4)),
            (srv('VERIFY_RESIZE', 'dst'), rec('finished', mid=5)),
        ], after_id=4)
        self.assertEqual(R.MIGRATED, out.result)
        self.assertEqual(5, out.migration.id)

    def test_failure_carries_novas_reason(self):
        out = self.follow([
            (srv('RESIZE', 'src', 'resize_prep'), rec('pre-migrating')),
            (srv('ACTIVE', 'src'), rec('error')),
        ])
        self.assertEqual(R.FAILED, out.result)
        self.assertIn('No valid host was found.', out.message)
        self.assertIn(('explain',), self.gateway.calls)

    def test_reason_recorded_after_the_record_says_error(self):
        gateway = FakeGateway([(srv('ACTIVE', 'src'), rec('error'))])
        gateway.reasons = [None, None, 'compute_resize_instance failed']
        clock = Clock()
        loop = follower.Follower(gateway, Reporter(), clock=clock,
                                 sleep=clock.sleep)
        out = loop.follow(v.Target('sid', 'src', 'ACTIVE'))
        self.assertEqual(R.FAILED, out.result)
        self.assertIn('compute_resize_instance failed', out.message)
        self.assertEqual(3, len([c for c in gateway.calls
                                 if c == ('explain',)]))

    def test_reason_never_recorded_is_said(self):
        gateway = FakeGateway([(srv('ACTIVE', 'src'), rec('error'))])
        gateway.reasons = [None] * 10
        clock = Clock()
        loop = follower.Follower(gateway, Reporter(), clock=clock,
                                 sleep=clock.sleep)
        out = loop.follow(v.Target('sid', 'src', 'ACTIVE'))
        self.assertIn('Nova has not recorded why', out.message)

    def test_timeout(self):
        out = self.follow([(srv('RESIZE', 'src', 'resize_migrating'),
                            rec('migrating'))], timeout=10)
        self.assertEqual(R.TIMEOUT, out.result)
        self.assertIn('goes on in Nova', out.message)
        self.assertGreaterEqual(self.clock.now, 10)

    def test_no_timeout_when_zero(self):
        states = [(srv('RESIZE', 'src', 'resize_migrating'),
                   rec('migrating'))] * 3000
        states.append((srv('VERIFY_RESIZE', 'dst'), rec('finished')))
        out = self.follow(states, timeout=0)
        self.assertEqual(R.MIGRATED, out.result)
        self.assertGreater(self.clock.now, 3600)

    def test_cold_cannot_be_aborted(self):
        out = self.follow([(srv('RESIZE', 'src', 'resize_migrating'),
                            rec('migrating'))], timeout=4, abort=True)
        self.assertEqual(R.TIMEOUT, out.result)
        self.assertIn('cold migrations cannot be aborted', out.message)
        self.assertEqual([], [c for c in self.gateway.calls
                              if c[0] == 'abort'])

    def test_live_abort_on_timeout(self):
        running = (srv('MIGRATING', 'src', 'migrating'),
                   rec('running', 'live-migration'))
        cancelled = (srv('ACTIVE', 'src'), rec('cancelled', 'live-migration'))
        out = self.follow([running, running, running, cancelled],
                          timeout=4, abort=True)
        self.assertEqual(R.ABORTED, out.result)
        self.assertEqual([('abort', 'sid', 5)], self.gateway.calls)

    def test_queued_live_migration_abortable_only_from_265(self):
        queued = (srv('MIGRATING', 'src', 'migrating'),
                  rec('queued', 'live-migration'))
        out = self.follow([queued], timeout=2, abort=True, mv='2.64')
        self.assertEqual(R.TIMEOUT, out.result)
        self.assertIn('cannot be aborted', out.message)
        out = self.follow([queued, queued, (srv('ACTIVE', 'src'), rec(
            'cancelled', 'live-migration'))], timeout=2, abort=True)
        self.assertEqual(R.ABORTED, out.result)

    def test_transient_poll_errors_are_retried(self):
        out = self.follow([
            gw.Transient('HTTP 503: down'),
            gw.Transient('cannot reach the compute API'),
            (srv('VERIFY_RESIZE', 'dst'), rec('finished')),
        ])
        self.assertEqual(R.MIGRATED, out.result)

    def test_forbidden_poll_is_not_retried(self):
        self.assertRaises(gw.NovaError, self.follow,
                          [gw.NovaError('HTTP 403: Policy', 403),
                           (srv('VERIFY_RESIZE', 'dst'), rec('finished'))])

    def test_confirm_conflict_retried_then_succeeds(self):
        states = [(srv('VERIFY_RESIZE', 'dst'), rec('finished'))] * 3 + [
            (srv('ACTIVE', 'dst'), rec('confirmed'))]
        self.gateway = None
        gateway = FakeGateway(states)
        gateway.errors['confirm'] = [gw.NovaError('HTTP 409: busy', 409)]
        reporter = Reporter()
        clock = Clock()
        loop = follower.Follower(gateway, reporter, clock=clock,
                                 sleep=clock.sleep)
        out = loop.follow(v.Target('sid', 'src', 'ACTIVE', v.Goal.CONFIRM))
        self.assertEqual(R.CONFIRMED, out.result)
        self.assertEqual(2, len([c for c in gateway.calls
                                 if c[0] == 'confirm']))

    def test_confirm_refused_fails(self):
        gateway = FakeGateway([(srv('VERIFY_RESIZE', 'dst'),
                                rec('finished'))])
        gateway.errors['confirm'] = gw.NovaError('HTTP 403: Policy', 403)
        clock = Clock()
        loop = follower.Follower(gateway, Reporter(), clock=clock,
                                 sleep=clock.sleep)
        out = loop.follow(v.Target('sid', 'src', 'ACTIVE', v.Goal.CONFIRM))
        self.assertEqual(R.FAILED, out.result)
        self.assertIn('HTTP 403', out.message)

    def test_auto_confirm_race_with_confirm(self):
        # Nova confirmed by itself between our poll and our confirm: the
        # confirm gets 409, the next poll shows confirmed: success.
        gateway = FakeGateway([
            (srv('VERIFY_RESIZE', 'dst'), rec('finished')),
            (srv('ACTIVE', 'dst'), rec('confirmed'))])
        gateway.errors['confirm'] = gw.NovaError(
            "HTTP 409: Cannot 'confirmResize' instance while it is in "
            "vm_state active", 409)
        clock = Clock()
        loop = follower.Follower(gateway, Reporter(), clock=clock,
                                 sleep=clock.sleep)
        out = loop.follow(v.Target('sid', 'src', 'ACTIVE', v.Goal.CONFIRM))
        self.assertEqual(R.CONFIRMED, out.result)

    def test_auto_confirm_race_nova_answers_400(self):
        # What a real Nova 34 answers when its periodic auto-confirm got
        # there first (found by the reliability suite).
        gateway = FakeGateway([
            (srv('VERIFY_RESIZE', 'dst'), rec('finished')),
            (srv('ACTIVE', 'dst'), rec('confirmed'))])
        gateway.errors['confirm'] = gw.NovaError(
            'HTTP 400: Instance has not been resized.', 400)
        clock = Clock()
        loop = follower.Follower(gateway, Reporter(), clock=clock,
                                 sleep=clock.sleep)
        out = loop.follow(v.Target('sid', 'src', 'ACTIVE', v.Goal.CONFIRM))
        self.assertEqual(R.CONFIRMED, out.result)

    def test_confirm_400_that_persists_fails(self):
        gateway = FakeGateway([(srv('VERIFY_RESIZE', 'dst'),
                                rec('finished'))])
        gateway.errors['confirm'] = [gw.NovaError('HTTP 400: nope', 400)
                                     for _ in range(10)]
        clock = Clock()
        loop = follower.Follower(gateway, Reporter(), clock=clock,
                                 sleep=clock.sleep)
        out = loop.follow(v.Target('sid', 'src', 'ACTIVE', v.Goal.CONFIRM))
        self.assertEqual(R.FAILED, out.result)
        self.assertIn('confirm refused: HTTP 400: nope', out.message)
        self.assertEqual(follower.ACTION_CONFLICTS + 1, len(
            [c for c in gateway.calls if c[0] == 'confirm']))

    def test_lost_start_fails_after_grace(self):
        out = self.follow([(srv('ACTIVE', 'src'), None)])
        self.assertEqual(R.FAILED, out.result)
        self.assertIn('no migration record appeared', out.message)
        self.assertGreater(self.clock.now, follower.START_GRACE)

    def test_live_progress_read_only_when_wanted(self):
        running = (srv('MIGRATING', 'src', 'migrating'),
                   rec('running', 'live-migration'))
        done = (srv('ACTIVE', 'dst'), rec('completed', 'live-migration'))
        self.follow([running, running, done], live=True)
        self.assertEqual(2, len(self.reporter.progress))
        self.assertEqual(3 * 2 + 2, self.gateway.requests)
        self.follow([running, running, done], live=False)
        self.assertEqual(3 * 2, self.gateway.requests)
