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

"""The follow step, fed observations one by one.

What Nova shows is scripted here, look by look; the command-level tests on
the fake Nova (tests/unit/fakenova.py) show the same step driven by real
reads. The only stand-in is for Nova's answers to the step's own requests
(confirm, revert, abort, the failure's reason).
"""

import dataclasses
import os
import time

import fixtures
import testtools

from osc_migrate_plus.engine import step
from osc_migrate_plus import model

R = model.Result
Obs = step.Observation


def srv(status, host='src', task_state=None, hidden=False):
    return model.Server('sid', 'vm', status, task_state,
                        None if hidden else host, 'p', host_hidden=hidden)


def rec(status, type_='migration', mid=5, source='src', dest='dst'):
    return model.Migration(mid, 'u%d' % mid, type_, status, source, dest,
                           '2026-01-01T00:00:00', '2026-01-01T00:00:09')


def look(status, host='src', task_state=None, record=None, **kw):
    return Obs(srv(status, host, task_state, **kw),
               [record] if record else [], fresh=True)


class Answers:
    """Nova's answers to the step's own requests, and what was asked."""

    def __init__(self, microversion='2.100'):
        self.calls = []
        self.errors = {}
        self.reasons = []
        self._mv = microversion

    def supports(self, version):
        return tuple(map(int, self._mv.split('.'))) >= tuple(
            map(int, version.split('.')))

    def _act(self, name, *args):
        self.calls.append((name,) + args)
        error = self.errors.get(name)
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

    def explain(self, server, migration):
        self.calls.append(('explain',))
        if self.reasons:
            return self.reasons.pop(0)
        return 'No valid host was found.'

    def sent(self, name):
        return [c for c in self.calls if c[0] == name]


class Events:
    def __init__(self):
        self.events = []

    def event(self, f, name, text, **fields):
        self.events.append((name, text, fields))

    def named(self, name):
        return [e for e in self.events if e[0] == name]


class StepTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.nova = Answers()
        self.events = Events()
        self.now = 0.0

    def stepper(self, timeout=3600.0, abort=False, verify=None):
        return step.Stepper(self.nova, self.events, timeout=timeout,
                            abort_on_timeout=abort, verify_command=verify)

    def follow(self, goal=model.Goal.MIGRATE, start=step.Start.SENT,
               baseline=0, original='ACTIVE', **kw):
        self.s = kw.pop('stepper', None) or self.stepper(**kw)
        f = step.Follow('sid', 'src', original, goal, baseline_id=baseline,
                        server=srv(original or 'ACTIVE'))
        self.s.begin(f, start, self.now)
        return f

    def drive(self, f, looks, interval=2.0):
        """Each look in turn (the last repeats) until a verdict."""
        looks = list(looks)
        for _ in range(100000):
            observation = looks.pop(0) if len(looks) > 1 else looks[0]
            found = self.s.step(f, observation, self.now)
            if found is not None:
                return found
            self.now += interval
        self.fail('no verdict')


class TestCold(StepTestCase):

    def test_confirm_end_to_end(self):
        f = self.follow(model.Goal.CONFIRM)
        out = self.drive(f, [
            look('RESIZE', task_state='resize_prep'),
            look('RESIZE', task_state='resize_migrating',
                 record=rec('migrating')),
            look('VERIFY_RESIZE', 'dst', record=rec('finished')),
            look('VERIFY_RESIZE', 'dst', record=rec('confirming')),
            look('VERIFY_RESIZE', 'dst', record=rec('confirmed')),
            look('ACTIVE', 'dst', record=rec('confirmed')),
        ])
        self.assertEqual((R.CONFIRMED, ''), (out.result, out.message))
        self.assertEqual([('confirm', 'sid')], self.nova.calls)
        self.assertEqual(['starting', 'migrating', 'verify_resize',
                          'confirming'],
                         [e[1] for e in self.events.named('phase')][:4])
        self.assertEqual([5], [e[2]['migration_id']
                               for e in self.events.named('migration')])

    def test_records_up_to_the_baseline_are_not_ours(self):
        f = self.follow(baseline=4)
        out = self.drive(f, [
            look('ACTIVE', record=rec('confirmed', mid=4)),
            look('RESIZE', task_state='resize_prep',
                 record=rec('confirmed', mid=4)),
            look('VERIFY_RESIZE', 'dst', record=rec('finished', mid=5)),
        ])
        self.assertEqual(R.MIGRATED, out.result)
        self.assertEqual(5, f.migration.id)
        self.assertIn('left in VERIFY_RESIZE', out.message)

    def test_once_pinned_only_that_record_counts(self):
        f = self.follow()
        f.migration_id = 5
        out = self.drive(f, [Obs(srv('VERIFY_RESIZE', 'dst'), [
            rec('migrating', mid=9), rec('finished', mid=5)], fresh=True)])
        self.assertEqual((R.MIGRATED, 5), (out.result, f.migration.id))

    def test_failure_carries_novas_reason(self):
        f = self.follow()
        out = self.drive(f, [
            look('RESIZE', task_state='resize_prep',
                 record=rec('pre-migrating')),
            look('ACTIVE', record=rec('error'))])
        self.assertEqual(R.FAILED, out.result)
        self.assertIn('No valid host was found.', out.message)

    def test_reason_recorded_after_the_record_says_error(self):
        self.nova.reasons = [None, None, 'compute_resize_instance failed']
        f = self.follow()
        out = self.drive(f, [look('ACTIVE', record=rec('error'))])
        self.assertIn('compute_resize_instance failed', out.message)
        self.assertEqual(3, len(self.nova.sent('explain')))

    def test_reason_never_recorded_is_said(self):
        self.nova.reasons = [None] * 10
        f = self.follow()
        out = self.drive(f, [look('ACTIVE', record=rec('error'))])
        self.assertIn('Nova has not recorded why', out.message)


class TestConfirmAndRevert(StepTestCase):
    """Confirm and revert tolerate races and lost answers."""

    at_verify = look('VERIFY_RESIZE', 'dst', record=rec('finished'))
    confirmed = look('ACTIVE', 'dst', record=rec('confirmed'))

    def test_conflict_retried_then_succeeds(self):
        self.nova.errors['confirm'] = [model.NovaError('HTTP 409: busy',
                                                       409)]
        f = self.follow(model.Goal.CONFIRM)
        out = self.drive(f, [self.at_verify] * 3 + [self.confirmed])
        self.assertEqual(R.CONFIRMED, out.result)
        self.assertEqual(2, len(self.nova.sent('confirm')))

    def test_refused_fails(self):
        self.nova.errors['confirm'] = model.NovaError('HTTP 403: Policy', 403)
        out = self.drive(self.follow(model.Goal.CONFIRM), [self.at_verify])
        self.assertEqual(R.FAILED, out.result)
        self.assertIn('confirm refused: HTTP 403', out.message)

    def test_nova_confirming_first_is_success(self):
        # resize_confirm_window: Nova got there between our look and our
        # confirm; Nova 34 answers 400, older ones 409.
        for error in (model.NovaError('HTTP 400: Instance has not been '
                                      'resized.', 400),
                      model.NovaError("HTTP 409: Cannot 'confirmResize' "
                                      "instance while it is in vm_state "
                                      "active", 409)):
            self.nova.errors['confirm'] = error
            out = self.drive(self.follow(model.Goal.CONFIRM),
                             [self.at_verify, self.confirmed])
            self.assertEqual(R.CONFIRMED, out.result)

    def test_a_400_that_persists_fails(self):
        self.nova.errors['confirm'] = [model.NovaError('HTTP 400: nope', 400)
                                       for _ in range(10)]
        out = self.drive(self.follow(model.Goal.CONFIRM), [self.at_verify])
        self.assertEqual(R.FAILED, out.result)
        self.assertIn('confirm refused: HTTP 400: nope', out.message)
        self.assertEqual(step.ACTION_CONFLICTS + 1,
                         len(self.nova.sent('confirm')))

    def test_no_answer_is_not_a_verdict(self):
        # A 5xx or a reset: the confirm may or may not have been carried
        # out. Look again; never call it failed (watch used to).
        self.nova.errors['confirm'] = [
            model.Transient('HTTP 503: unavailable', 503, False),
            model.Transient('cannot reach the compute API')]
        out = self.drive(self.follow(model.Goal.CONFIRM),
                         [self.at_verify] * 3 + [self.confirmed])
        self.assertEqual(R.CONFIRMED, out.result)
        self.assertEqual(3, len(self.nova.sent('confirm')))
        self.assertEqual(2, len(self.events.named('retry')))

    def test_revert(self):
        out = self.drive(self.follow(model.Goal.REVERT), [
            self.at_verify,
            look('REVERT_RESIZE', 'dst', 'resize_reverting',
                 record=rec('reverting')),
            look('ACTIVE', 'src', record=rec('reverted'))])
        self.assertEqual(R.REVERTED, out.result)
        self.assertEqual([('revert', 'sid')], self.nova.calls)


class TestDeadline(StepTestCase):

    migrating = look('RESIZE', task_state='resize_migrating',
                     record=rec('migrating'))
    running = look('MIGRATING', task_state='migrating',
                   record=rec('running', 'live-migration'))

    def test_timeout(self):
        out = self.drive(self.follow(timeout=10), [self.migrating])
        self.assertEqual(R.TIMEOUT, out.result)
        self.assertIn('goes on in Nova', out.message)
        self.assertGreaterEqual(self.now, 10)

    def test_none_when_zero(self):
        looks = [self.migrating] * 3000 + [
            look('VERIFY_RESIZE', 'dst', record=rec('finished'))]
        out = self.drive(self.follow(timeout=0), looks)
        self.assertEqual(R.MIGRATED, out.result)
        self.assertGreater(self.now, 3600)

    def test_cold_cannot_be_aborted(self):
        out = self.drive(self.follow(timeout=4, abort=True),
                         [self.migrating])
        self.assertIn('cold migrations cannot be aborted', out.message)
        self.assertEqual([], self.nova.sent('abort'))

    def test_live_abort_at_the_deadline(self):
        cancelled = look('ACTIVE', record=rec('cancelled', 'live-migration'))
        out = self.drive(self.follow(timeout=4, abort=True),
                         [self.running] * 3 + [cancelled])
        self.assertEqual(R.ABORTED, out.result)
        self.assertEqual([('abort', 'sid', 5)], self.nova.calls)

    def test_queued_live_migration_abortable_only_from_265(self):
        queued = look('MIGRATING', task_state='migrating',
                      record=rec('queued', 'live-migration'))
        self.nova = Answers('2.64')
        out = self.drive(self.follow(timeout=2, abort=True), [queued])
        self.assertIn('cannot be aborted', out.message)
        self.nova = Answers()
        out = self.drive(self.follow(timeout=2, abort=True), [
            queued, queued,
            look('ACTIVE', record=rec('cancelled', 'live-migration'))])
        self.assertEqual(R.ABORTED, out.result)

    def test_a_failed_read_still_meets_the_deadline(self):
        f = self.follow(timeout=10)
        out = self.drive(f, [Obs()])  # nothing read at all
        self.assertEqual(R.TIMEOUT, out.result)


class TestStartsNotSeen(StepTestCase):
    """A start Nova accepted but never carried out, and a lost answer."""

    idle = look('ACTIVE')

    def test_accepted_then_idle_without_record_fails_with_the_reason(self):
        self.nova.reasons = ['No valid host was found. There are not '
                             'enough hosts available.']
        out = self.drive(self.follow(), [self.idle])
        self.assertEqual(R.FAILED, out.result)
        self.assertIn('no migration record appeared', out.message)
        self.assertIn('not enough hosts', out.message)
        self.assertGreaterEqual(self.now, step.START_GRACE)
        self.assertLess(self.now, step.START_GRACE + 5)

    def test_a_bulk_read_that_says_nothing_decides_nothing(self):
        # Only a fresh look shows that nothing happened.
        f = self.follow(timeout=600)
        out = self.drive(f, [Obs()])
        self.assertEqual(R.TIMEOUT, out.result)

    def test_lost_answer_then_nova_carries_it_out(self):
        f = self.follow(start=step.Start.UNCERTAIN)
        out = self.drive(f, [
            self.idle, self.idle,
            look('RESIZE', task_state='resize_prep'),
            look('VERIFY_RESIZE', 'dst', record=rec('finished'))])
        self.assertEqual(R.MIGRATED, out.result)
        self.assertEqual(1, len(self.events.named('taken')))

    def test_lost_answer_and_nothing_in_nova_is_not_started(self):
        f = self.follow(start=step.Start.UNCERTAIN)
        out = self.drive(f, [self.idle])
        self.assertEqual(R.NOT_STARTED, out.result)
        self.assertIn('nothing was started', out.message)
        self.assertGreaterEqual(self.now, step.LOST_REPLY_WINDOW)

    def test_lost_answer_while_nova_is_busy_waits(self):
        busy = look('RESIZE', task_state='resize_prep')
        f = self.follow(start=step.Start.UNCERTAIN, timeout=600)
        out = self.drive(f, [busy])
        self.assertEqual(R.TIMEOUT, out.result)


class TestGoneAndHidden(StepTestCase):

    def test_deleted(self):
        for gone in (Obs(gone=True, fresh=True),
                     Obs(srv('DELETED', 'dst'), [rec('migrating')])):
            out = self.drive(self.follow(), [gone])
            self.assertEqual(R.DELETED, out.result)

    def test_hidden_hosts_success_says_so(self):
        f = self.follow(model.Goal.CONFIRM)
        out = self.drive(f, [
            look('VERIFY_RESIZE', hidden=True,
                 record=rec('finished', source=None, dest=None)),
            look('ACTIVE', hidden=True,
                 record=rec('confirmed', source=None, dest=None))])
        self.assertEqual(R.CONFIRMED, out.result)
        self.assertIn('hidden by policy', out.message)

    def test_someone_elses_resize_is_not_ours(self):
        f = self.follow(start=step.Start.ADOPTED)
        out = self.drive(f, [look('VERIFY_RESIZE', 'dst',
                                  record=rec('finished', 'resize'))])
        self.assertEqual(R.SKIPPED, out.result)
        self.assertIn('resize', out.message)
        self.assertEqual([], self.nova.calls)


class TestVerify(StepTestCase):

    at_verify = look('VERIFY_RESIZE', 'dst', record=rec('finished'))

    def drive_real(self, f, looks):
        # The command runs for real: give it real time between looks.
        looks = list(looks)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            observation = looks.pop(0) if len(looks) > 1 else looks[0]
            found = self.s.step(f, observation, self.now)
            if found is not None:
                return found
            self.now += 0.1
            time.sleep(0.02)
        self.fail('no verdict')

    def test_passing_confirms_failing_reverts(self):
        f = self.follow(model.Goal.CONFIRM, verify='exit 0')
        out = self.drive_real(f, [self.at_verify] * 20 + [look(
            'ACTIVE', 'dst', record=rec('confirmed'))])
        self.assertEqual(R.CONFIRMED, out.result)
        self.nova.calls = []
        f = self.follow(model.Goal.CONFIRM,
                        verify='echo "bad $OSC_MIGRATE_SERVER_ID"; exit 3')
        out = self.drive_real(f, [self.at_verify] * 20 + [look(
            'ACTIVE', 'src', record=rec('reverted'))])
        self.assertEqual(R.REVERTED, out.result)
        self.assertIn('verify command exited 3: bad sid', out.message)
        self.assertEqual([('revert', 'sid')], self.nova.calls)

    def test_more_output_than_a_pipe_holds(self):
        # It used to block on a full pipe until killed at 300 s, and a
        # healthy migration was reverted.
        f = self.follow(model.Goal.CONFIRM,
                        verify="head -c 300000 /dev/zero | tr '\\0' x; "
                               "echo; echo all good")
        out = self.drive_real(f, [self.at_verify] * 200 + [look(
            'ACTIVE', 'dst', record=rec('confirmed'))])
        self.assertEqual(R.CONFIRMED, out.result)
        [verified] = self.events.named('verified')
        self.assertTrue(verified[2]['passed'])
        self.assertTrue(verified[2]['output_tail'].endswith('all good'))

    def test_stopping_the_follow_kills_the_command_whole(self):
        pidfile = os.path.join(self.useFixture(fixtures.TempDir()).path,
                               'pid')
        f = self.follow(model.Goal.CONFIRM,
                        verify='sleep 600 >/dev/null 2>&1 & echo $! > %s; '
                               'wait' % pidfile)
        self.assertIsNone(self.s.step(f, self.at_verify, self.now))
        for _ in range(100):
            if os.path.exists(pidfile) and open(pidfile).read().strip():
                break
            time.sleep(0.05)
        with open(pidfile) as fh:
            child = int(fh.read())
        f.stop()
        for _ in range(50):
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            self.fail('verify command child %d still running' % child)


class TestAbandoned(StepTestCase):
    """A record Nova left under way, its server idle on the source."""

    def idle(self, record, fresh=True, host='src'):
        server = dataclasses.replace(srv('ACTIVE', host),
                                     updated='2026-01-01T00:01:00')
        return Obs(server, [record], fresh=fresh)

    def test_failed_after_the_grace_from_a_fresh_look(self):
        f = self.follow(model.Goal.CONFIRM)
        out = self.drive(f, [self.idle(rec('migrating'))])
        self.assertEqual(R.FAILED, out.result)
        self.assertIn('abandoned', out.message)
        self.assertGreaterEqual(self.now, step.ABANDONED_AFTER)
        self.assertLess(self.now, step.ABANDONED_AFTER + 4.5)

    def test_the_clock_restarts_when_the_record_moves(self):
        # The source restarted while the record was 'accepted'; the
        # conductor's cast runs it afterwards, task cleared: Nova at work.
        f = self.follow(model.Goal.CONFIRM)
        moved_at = step.ABANDONED_AFTER - 10
        looks = [self.idle(rec('accepted'))] * int(moved_at / 2) + [
            self.idle(rec('queued'))]
        out = self.drive(f, looks)
        self.assertEqual(R.FAILED, out.result)
        self.assertGreaterEqual(self.now, moved_at + step.ABANDONED_AFTER)

    def test_not_from_a_bulk_view(self):
        f = self.follow(model.Goal.CONFIRM)
        for _ in range(100):
            self.assertIsNone(self.s.step(f, self.idle(rec('migrating'),
                                                       fresh=False),
                                          self.now))
            self.now += 2.0
        self.assertTrue(f.needs_look)

    def test_never_with_hosts_hidden(self):
        f = self.follow(model.Goal.CONFIRM)
        server = dataclasses.replace(srv('ACTIVE', hidden=True),
                                     updated='2026-01-01T00:01:00')
        live = rec('running', 'live-migration')
        for _ in range(100):
            self.assertIsNone(self.s.step(f, Obs(server, [live], fresh=True),
                                          self.now))
            self.now += 2.0

    def test_never_from_a_view_older_than_the_record(self):
        f = self.follow(model.Goal.CONFIRM)
        server = dataclasses.replace(srv('ACTIVE'),
                                     updated='2025-12-31T23:59:00')
        for _ in range(100):
            self.assertIsNone(self.s.step(
                f, Obs(server, [rec('migrating')], fresh=True), self.now))
            self.now += 2.0
