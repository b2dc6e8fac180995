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

"""The rolling run's pure parts: order, steps, estimate, replay."""

import testtools

from osc_migrate_plus.engine import hostcommand
from osc_migrate_plus.engine import plan
from osc_migrate_plus.engine import rolling
from osc_migrate_plus import model


def item(host, n, verdict=plan.PLANNED):
    server = model.Server('%s-%d' % (host, n), 'vm', 'ACTIVE', None, host,
                          'p1')
    return plan.PlanItem(server, model.Kind.COLD, verdict)


def options(hosts=('c1', 'c2', 'c3'), **kwargs):
    return rolling.RollingOptions(hosts=tuple(hosts), run_id='abc',
                                  **kwargs)


class TestOrder(testtools.TestCase):

    def test_emptiest_first_then_by_name(self):
        items = [item('c1', 0), item('c1', 1), item('c3', 0),
                 item('c3', 1), item('c2', 0),
                 item('c2', 1, plan.SKIPPED), item('c2', 2)]
        self.assertEqual(['c4', 'c1', 'c3', 'c2'], rolling.order_hosts(
            ['c1', 'c2', 'c3', 'c4'], items))
        self.assertIn('c4 (0 servers), c1 (2 servers)',
                      rolling.order_text(['c4', 'c1'], items))

    def test_steps_of_max_hosts(self):
        self.assertEqual([('c1', 'c2'), ('c3',)],
                         options(max_hosts=2).steps())

    def test_reason_carries_the_tag_within_nova_limit(self):
        o = options(disable_reason='x' * 400)
        reason = o.reason(waiting=True)
        self.assertEqual(rolling.REASON_MAX, len(reason))
        self.assertTrue(reason.endswith(' [osc-migrate-plus rolling abc]'))


class TestEstimate(testtools.TestCase):

    services = [
        {'host': h, 'status': 'enabled', 'state': 'up'}
        for h in ('c1', 'c2', 'c3', 'o1')] + [
        {'host': 'o2', 'status': 'enabled', 'state': 'down'},
        {'host': 'o3', 'status': 'disabled', 'state': 'up'}]

    def test_destinations_grow_with_done_hosts_if_enabled_after(self):
        asked = []

        def room(servers, hosts):
            asked.append(tuple(hosts))
            return True
        items = [item('c1', 0), item('c2', 0)]
        rolling.estimate(options(enable_after=True), items, self.services,
                         room)
        # Down or disabled hosts are no destinations.
        self.assertEqual([('o1',), ('c1', 'o1'), ('c1', 'c2', 'o1')], asked)
        asked.clear()
        rolling.estimate(options(), items, self.services, room)
        self.assertEqual([('o1',)] * 3, asked)

    def test_moves_without_room(self):
        steps = [rolling.StepEstimate(1, ('c1',), 2, (), False),
                 rolling.StepEstimate(2, ('c2',), 1, (), True),
                 rolling.StepEstimate(3, ('c3',), 3, (), None)]
        # c1's two may move at each of the two later steps.
        self.assertEqual((6, 2 * 3 + 1 + 3), rolling.planned_moves(steps))


class TestReplay(testtools.TestCase):

    def test_phases_from_records(self):
        hosts = rolling.replay_hosts(options(max_hosts=2), [
            {'type': 'host-disabled', 'host': 'c1', 'by_run': True},
            {'type': 'host-drained', 'host': 'c1', 'moved': ['a', 'b']},
            {'type': 'host-checked', 'host': 'c1', 'empty': True,
             'line': 'c1: empty'},
            {'type': 'host-command-started', 'host': 'c1'},
            {'type': 'host-disabled', 'host': 'c2', 'by_run': False},
            {'type': 'steer-fallback', 'hosts': ['c1', 'c2']},
        ])
        c1, c2, c3 = hosts['c1'], hosts['c2'], hosts['c3']
        self.assertEqual(('command started', 2, 1, 1),
                         (c1.phase, c1.moved, c1.command_tries, c1.step))
        self.assertEqual(('disabled', False, True, 2),
                         (c2.phase, c2.by_run, c2.fallback, c2.index))
        self.assertEqual(('waiting', 2, 3), (c3.phase, c3.step, c3.index))

    def test_a_finished_command_is_not_run_again(self):
        hosts = rolling.replay_hosts(options(), [
            {'type': 'host-command-started', 'host': 'c1'},
            {'type': 'host-command', 'host': 'c1', 'ok': False,
             'exit_code': 3, 'tail': 'no'},
            {'type': 'host-command-started', 'host': 'c1'},
            {'type': 'host-command', 'host': 'c1', 'ok': True,
             'exit_code': 0, 'tail': ''},
        ])
        self.assertEqual((True, 2, 'command done'), (
            hosts['c1'].command_ok, hosts['c1'].command_tries,
            hosts['c1'].phase))

    def test_options_changed_by_a_resume(self):
        saved = options(host_command='old').to_journal()
        found = rolling.resumed_options({'rolling': saved}, [
            {'type': 'rolling-options', 'host_command': 'new'}])
        self.assertEqual(('new', ('c1', 'c2', 'c3')),
                         (found.host_command, found.hosts))
        self.assertIsNone(rolling.resumed_options({}, []))


class TestHostCommandEnvironment(testtools.TestCase):

    def test_facts_only_in_the_environment(self):
        self.assertEqual({'OSC_MIGRATE_HOST': 'c2',
                          'OSC_MIGRATE_HOST_INDEX': '2',
                          'OSC_MIGRATE_HOSTS_TOTAL': '3'},
                         hostcommand.environment('c2', 2, 3))
        self.assertEqual('1', hostcommand.environment(
            'c2', 2, 3, resumed=True)['OSC_MIGRATE_RESUMED'])
