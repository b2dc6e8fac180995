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

"""The state machine over the status combinations Nova produces."""

import testtools

from osc_migrate_plus.engine import step
from osc_migrate_plus.engine import verdict as v
from osc_migrate_plus import model

R = model.Result


def server(status='ACTIVE', host='src', task_state=None, fault=None,
           hidden=False):
    return model.Server('sid', 'vm', status, task_state,
                        None if hidden else host, 'p', fault,
                        host_hidden=hidden)


def record(status, type_='migration', source='src', dest='dst', mid=7):
    return model.Migration(mid, 'uuid-%d' % mid, type_, status, source, dest,
                           '2026-01-01T00:00:00', '2026-01-01T00:00:05')


def target(goal=model.Goal.MIGRATE, original='ACTIVE', sent=None,
           abort_sent=False, source='src'):
    return step.Follow('sid', source, original, goal, sent=sent,
                       abort_sent=abort_sent)


class TestNoRecord(testtools.TestCase):

    def test_right_after_202_is_starting(self):
        # The record may not exist yet; the server already shows the task.
        a = v.assess(target(), server('RESIZE', task_state='resize_prep'),
                     None)
        self.assertEqual(('starting', None), (a.phase, a.result))

    def test_idle_without_record_is_no_verdict(self):
        # Never success from nothing; the follower bounds the wait.
        a = v.assess(target(), server(), None)
        self.assertFalse(a.done)

    def test_error_without_record_fails(self):
        a = v.assess(target(), server('ERROR'), None)
        self.assertEqual(R.FAILED, a.result)


class TestCold(testtools.TestCase):

    def test_running_statuses_are_phases(self):
        for status in ('pre-migrating', 'migrating', 'post-migrating'):
            a = v.assess(target(), server('RESIZE'), record(status))
            self.assertEqual((status, None, None),
                             (a.phase, a.result, a.action))

    def test_finished_before_server_settles_is_not_done(self):
        a = v.assess(target(), server('RESIZE', 'dst', 'resize_finish'),
                     record('finished'))
        self.assertEqual(('finishing', None), (a.phase, a.result))

    def test_verify_resize_on_other_host_is_migrated(self):
        a = v.assess(target(), server('VERIFY_RESIZE', 'dst'),
                     record('finished'))
        self.assertEqual(R.MIGRATED, a.result)

    def test_verify_resize_on_source_fails(self):
        a = v.assess(target(), server('VERIFY_RESIZE', 'src'),
                     record('finished'))
        self.assertEqual(R.FAILED, a.result)

    def test_confirm_goal_asks_for_confirm_once(self):
        a = v.assess(target(model.Goal.CONFIRM),
                     server('VERIFY_RESIZE', 'dst'),
                     record('finished'))
        self.assertEqual((model.Action.CONFIRM, None), (a.action, a.result))
        a = v.assess(target(model.Goal.CONFIRM, sent=model.Action.CONFIRM),
                     server('VERIFY_RESIZE', 'dst'), record('finished'))
        self.assertEqual(('confirming', None, None),
                         (a.phase, a.action, a.result))

    def test_revert_goal_asks_for_revert(self):
        a = v.assess(target(model.Goal.REVERT), server('VERIFY_RESIZE', 'dst'),
                     record('finished'))
        self.assertEqual(model.Action.REVERT, a.action)

    def test_confirmed_and_settled_on_destination(self):
        a = v.assess(target(model.Goal.CONFIRM), server('ACTIVE', 'dst'),
                     record('confirmed'))
        self.assertEqual(R.CONFIRMED, a.result)

    def test_confirmed_record_before_server_leaves_verify_resize(self):
        # Race seen on a real Nova: record says confirmed, server not yet.
        a = v.assess(target(model.Goal.CONFIRM, sent=model.Action.CONFIRM),
                     server('VERIFY_RESIZE', 'dst'), record('confirmed'))
        self.assertEqual(('confirming', None), (a.phase, a.result))

    def test_stopped_server_stays_stopped(self):
        a = v.assess(target(model.Goal.CONFIRM, original='SHUTOFF'),
                     server('SHUTOFF', 'dst'), record('confirmed'))
        self.assertEqual(R.CONFIRMED, a.result)
        a = v.assess(target(model.Goal.CONFIRM, original='SHUTOFF'),
                     server('ACTIVE', 'dst'), record('confirmed'))
        self.assertEqual(R.FAILED, a.result)

    def test_auto_confirm_counts_for_confirm(self):
        # resize_confirm_window: Nova confirmed before we sent anything.
        a = v.assess(target(model.Goal.CONFIRM), server('ACTIVE', 'dst'),
                     record('confirmed'))
        self.assertEqual(R.CONFIRMED, a.result)

    def test_auto_confirm_fails_revert(self):
        a = v.assess(target(model.Goal.REVERT), server('ACTIVE', 'dst'),
                     record('confirmed'))
        self.assertEqual(R.FAILED, a.result)
        self.assertIn('resize_confirm_window', a.reason)

    def test_auto_confirm_while_only_migrating_is_confirmed(self):
        a = v.assess(target(model.Goal.MIGRATE), server('ACTIVE', 'dst'),
                     record('confirmed'))
        self.assertEqual(R.CONFIRMED, a.result)

    def test_reverted_back_on_source(self):
        a = v.assess(target(model.Goal.REVERT), server('ACTIVE', 'src'),
                     record('reverted'))
        self.assertEqual(R.REVERTED, a.result)

    def test_reverted_but_not_on_source_fails(self):
        a = v.assess(target(model.Goal.REVERT), server('ACTIVE', 'dst'),
                     record('reverted'))
        self.assertEqual(R.FAILED, a.result)

    def test_reverting_in_progress(self):
        a = v.assess(target(model.Goal.REVERT, sent=model.Action.REVERT),
                     server('REVERT_RESIZE', 'dst', 'resize_reverting'),
                     record('reverting'))
        self.assertEqual(('reverting', None), (a.phase, a.result))
        a = v.assess(target(model.Goal.REVERT),
                     server('REVERT_RESIZE', 'src', 'resize_reverting'),
                     record('reverted'))
        self.assertEqual(('reverting', None), (a.phase, a.result))

    def test_reverted_by_someone_else_fails_confirm(self):
        a = v.assess(target(model.Goal.CONFIRM), server('ACTIVE', 'src'),
                     record('reverted'))
        self.assertEqual(R.FAILED, a.result)

    def test_error_record_fails_even_with_active_server_on_source(self):
        # Driver failure: Nova puts the server back ACTIVE on its source.
        a = v.assess(target(), server('ACTIVE', 'src'), record('error'))
        self.assertEqual(R.FAILED, a.result)

    def test_server_error_fails(self):
        a = v.assess(target(), server('ERROR', 'dst'), record('migrating'))
        self.assertEqual(R.FAILED, a.result)

    def test_unknown_status_keeps_following(self):
        a = v.assess(target(), server('ACTIVE'), record('something-new'))
        self.assertFalse(a.done)

    def test_attached_without_original_status_accepts_settled(self):
        for status in ('ACTIVE', 'SHUTOFF'):
            a = v.assess(target(model.Goal.CONFIRM, original=None),
                         server(status, 'dst'), record('confirmed'))
            self.assertEqual(R.CONFIRMED, a.result)


class TestLive(testtools.TestCase):

    def live(self, status, **kw):
        return record(status, type_='live-migration', **kw)

    def test_running_statuses(self):
        for status in ('accepted', 'queued', 'preparing', 'running',
                       'post-migrating'):
            a = v.assess(target(), server('MIGRATING', 'src', 'migrating'),
                         self.live(status))
            self.assertEqual((status, None), (a.phase, a.result))

    def test_completed_on_new_host(self):
        a = v.assess(target(), server('ACTIVE', 'dst'),
                     self.live('completed'))
        self.assertEqual(R.MIGRATED, a.result)

    def test_completed_but_still_on_source_fails(self):
        a = v.assess(target(), server('ACTIVE', 'src'),
                     self.live('completed'))
        self.assertEqual(R.FAILED, a.result)
        self.assertIn('still on its source', a.reason)

    def test_completed_before_task_state_clears(self):
        a = v.assess(target(), server('MIGRATING', 'dst', 'migrating'),
                     self.live('completed'))
        self.assertFalse(a.done)

    def test_record_still_running_while_server_active_elsewhere(self):
        # Seen on a real Nova: the record lags the server; keep polling.
        a = v.assess(target(), server('ACTIVE', 'dst'), self.live('running'))
        self.assertFalse(a.done)

    def test_paused_server_stays_paused(self):
        a = v.assess(target(original='PAUSED'), server('PAUSED', 'dst'),
                     self.live('completed'))
        self.assertEqual(R.MIGRATED, a.result)

    def test_failed_and_error(self):
        for status in ('failed', 'error', 'cancelled'):
            a = v.assess(target(), server('ACTIVE', 'src'), self.live(status))
            self.assertEqual(R.FAILED, a.result)

    def test_cancelled_after_our_abort_is_aborted(self):
        a = v.assess(target(abort_sent=True), server('ACTIVE', 'src'),
                     self.live('cancelled'))
        self.assertEqual(R.ABORTED, a.result)


class TestHiddenHosts(testtools.TestCase):
    """Policy hides host names: the record and the server state decide."""

    def test_cold_verify_resize_is_migrated_not_failed(self):
        a = v.assess(target(source=None), server('VERIFY_RESIZE',
                                                 hidden=True),
                     record('finished', source=None, dest=None))
        self.assertEqual(R.MIGRATED, a.result)

    def test_confirm_is_asked_and_confirmed_is_success(self):
        a = v.assess(target(model.Goal.CONFIRM), server('VERIFY_RESIZE',
                                                        hidden=True),
                     record('finished', source=None, dest=None))
        self.assertEqual(model.Action.CONFIRM, a.action)
        a = v.assess(target(model.Goal.CONFIRM), server('ACTIVE',
                                                        hidden=True),
                     record('confirmed', source=None, dest=None))
        self.assertEqual(R.CONFIRMED, a.result)

    def test_live_completed_is_migrated(self):
        a = v.assess(target(), server('ACTIVE', hidden=True),
                     record('completed', 'live-migration', None, None))
        self.assertEqual(R.MIGRATED, a.result)

    def test_reverted_is_reverted(self):
        a = v.assess(target(model.Goal.REVERT), server('ACTIVE', hidden=True),
                     record('reverted', source=None, dest=None))
        self.assertEqual(R.REVERTED, a.result)

    def test_visible_source_still_catches_a_move_that_did_not_happen(self):
        # The record shows the source even if the server hides its host.
        a = v.assess(target(source=None), server('ACTIVE', 'src'),
                     record('completed', 'live-migration'))
        self.assertEqual(R.FAILED, a.result)


class TestInProgress(testtools.TestCase):

    def test_cases(self):
        cases = [
            (record('finished'), True),
            (record('confirmed'), False),
            (None, False),
            (record('running', 'live-migration'), True),
            (record('completed', 'live-migration'), False),
            (record('migrating'), True),
            # A tenant's resize, an evacuation: not migrations of ours.
            (record('finished', 'resize'), False),
            (record('migrating', 'evacuation'), False),
        ]
        for rec, expected in cases:
            self.assertEqual(expected, v.in_progress(rec), rec)
