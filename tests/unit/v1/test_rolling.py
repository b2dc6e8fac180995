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

"""batch --rolling against the fake Nova (and the fake Placement).

Host commands are real shell commands; the client is on the fake's clock
(its sleeps also really sleep a little so that they get to run).
"""

import json
import os
import signal

import fixtures

from osc_migrate_plus.engine import rolling_seams as seams
from osc_migrate_plus import placement
from tests.unit import fakeplacement
from tests.unit.v1 import test_unkind_nova

HOSTS = ('compute1', 'compute2', 'compute3')
# compute1: 2 servers, compute2: 1, compute3: 3 -> order 2, 1, 3.
LOAD = (('compute1', 2), ('compute2', 1), ('compute3', 3))


class RollingCase(test_unkind_nova.UnkindNovaTestCase):

    def setUp(self):
        super().setUp()
        # None: the stand-in Placement estimate; else answers in turn.
        self.answers = None
        self.room_asked = []
        # A host whose check is never answered (the client killed).
        self.kill_in_check = None
        self.useFixture(fixtures.MonkeyPatch(
            'osc_migrate_plus.v1.rolling.seams_for', self._seams))
        self.out = os.path.join(self.tmp, 'ran.txt')

    def _seams(self, placement_, gateway, require_empty=False):
        placement_room = seams.capacity_room(
            gateway, placement.PlacementGateway(self.placement.proxy))

        def room(servers, hosts):
            self.room_asked.append((sorted(s.name for s in servers),
                                    tuple(hosts)))
            if self.answers is None:
                return placement_room(servers, hosts)
            return self.answers.pop(0) if self.answers else None
        servers_left = seams.host_check(
            gateway, placement.PlacementGateway(self.placement.proxy),
            require_empty)

        def check(host, entries):
            if host == self.kill_in_check:
                self.kill_in_check = None
                raise test_unkind_nova.Kill()
            return servers_left(host, entries)
        return room, check

    def cloud(self, hosts=5, real_sleep=0.005, **kwargs):
        fake = super().cloud(real_sleep=real_sleep, hosts=hosts, **kwargs)
        self.placement = fakeplacement.FakePlacement(fake)
        self.sids = {}
        for host, n in LOAD:
            for i in range(n):
                name = '%s-%d' % (host, i)
                self.sids[name] = fake.add_server(name, host=host)
        return fake

    def rolling(self, *args):
        hosts = []
        for host in HOSTS:
            hosts += ['--source-host', host]
        return self.batch(*(hosts + ['--rolling', '--state-file', self.path]
                            + list(args)))

    def records(self, kind=None):
        with open(self.path) as f:
            found = [json.loads(line) for line in f if line.strip()]
        return [r for r in found if kind is None or r['type'] == kind]

    def ran(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out) as f:
            return f.read().split()

    def stderr(self, run=None):
        details = self.getDetails()
        keys = [k for k in details if k.startswith('run ')]
        key = keys[-1] if run is None else keys[run - 1]
        return details[key].as_text()

    def status(self, host):
        service = self.fake.services[host]
        return service['status'], service['disabled_reason']

    def moves_of(self, sid):
        return len([r for r in self.fake.records(sid)
                    if r['status'] == 'confirmed'])

    # -- log of a host command: "host:index:total:resumed" per run ------------
    LOG = ('echo "$OSC_MIGRATE_HOST:$OSC_MIGRATE_HOST_INDEX:'
           '$OSC_MIGRATE_HOSTS_TOTAL:${OSC_MIGRATE_RESUMED:-0}" >> %s')


class TestRollingRun(RollingCase):

    def test_each_server_moved_once_hosts_in_order_enabled_after(self):
        """Emptiest first, waiting hosts steered away, all enabled again."""
        fake = self.cloud()
        rc, rows = self.rolling('--enable-after',
                                '--host-command', self.LOG % self.out)
        self.assertEqual(0, rc, self.stderr())
        self.assertEqual(['compute2:1:3:0', 'compute1:2:3:0',
                          'compute3:3:3:0'], self.ran())
        for name, sid in self.sids.items():
            self.assertResult('confirmed', rows[sid])
            self.assertEqual(1, rows[sid]['Moves'], name)
            self.assertEqual(1, len(fake.records(sid)), name)
            # Off its host; maybe onto a host done before its own.
            self.assertNotEqual(name.split('-')[0], fake._servers[sid]['host'])
        for host in HOSTS:
            self.assertEqual(('enabled', None), self.status(host))
        self.assertEqual(
            ['compute2', 'compute1', 'compute3'],
            [r['host'] for r in self.records('host-done')])
        # The waiting hosts were disabled while the first step drained.
        self.assertEqual(['compute1', 'compute3'], sorted(
            r['host'] for r in self.records('steer-disabled')))
        err = self.stderr()
        self.assertIn('host order, emptiest first', err)
        self.assertIn('Host compute3: step 3, done, 3 moved off, empty (0 '
                      'servers, 0 migrations, 0 allocations)', err)

    def test_moves_column_only_in_rolling_runs(self):
        fake = self.cloud(hosts=3)
        fake.add_server('alone', host='compute1')
        rc, rows = self.batch('--source-host', 'compute1', '--confirm',
                              '--state-file', self.path)
        self.assertNotIn('Moves', list(rows.values())[0])

    def test_dry_run_plans_and_changes_nothing(self):
        fake = self.cloud()
        rc, rows = self.rolling('--dry-run', '--enable-after')
        self.assertEqual(0, rc)
        self.assertEqual(
            ['compute2', 'compute1', 'compute1', 'compute3', 'compute3',
             'compute3'], [r['Source Host'] for r in rows.values()])
        self.assertEqual({1}, {r['Moves'] for r in rows.values()})
        self.assertEqual({'cold'}, {r['Mode'] for r in rows.values()})
        err = self.stderr()
        self.assertIn('compute2 (1 server), compute1 (2 servers), '
                      'compute3 (3 servers)', err)
        self.assertIn('moves: 6 for 6 server(s) (each moved once)', err)
        self.assertIn('step 2: compute1, 2 server(s) to move; room on '
                      'compute2, compute4, compute5: yes', err)
        self.assertEqual(0, fake.count('POST', 'migrate'))
        self.assertEqual(0, fake.count('PUT', 'os-services'))
        self.assertFalse(os.path.exists(self.path))

    def test_dry_run_without_room_counts_the_moves_again(self):
        self.cloud()
        self.answers = [False, True, True]
        rc, rows = self.rolling('--dry-run')
        self.assertEqual(0, rc)
        # compute2's server may land on compute1 and then on compute3.
        self.assertIn('moves: 6 to 8 for 6 server(s)', self.stderr())

    def test_no_room_falls_back_and_says_so(self):
        """Without room the waiting hosts stay destinations: moved twice."""
        fake = self.cloud()
        self.answers = [False, False, False]
        rc, rows = self.rolling('--enable-after')
        self.assertEqual(0, rc, self.stderr())
        self.assertEqual([], self.records('steer-disabled'))
        self.assertIn('fallback: not enough room on compute4, compute5 for '
                      'the servers of compute2', self.stderr())
        total = sum(len(fake.records(s)) for s in self.sids.values())
        self.assertEqual(total, sum(r['Moves'] for r in rows.values()))
        # The fake scheduler takes every enabled host in turn: some landed
        # on a host still waiting its turn and moved again.
        self.assertGreater(total, len(self.sids))
        for name, sid in self.sids.items():
            self.assertNotEqual(name.split('-')[0],
                                fake._servers[sid]['host'])
        self.assertIn('drained without steering (fallback)', self.stderr())

    def test_fallback_enables_only_what_the_run_disabled(self):
        fake = self.cloud()
        fake.services['compute3']['status'] = 'disabled'
        fake.services['compute3']['disabled_reason'] = 'RMA ticket 42'
        self.answers = [True, False, False]
        rc, rows = self.rolling('--enable-after')
        self.assertEqual(0, rc, self.stderr())
        # Step 1 kept compute1 disabled; step 2's fallback enabled it
        # again; compute3, disabled by hand, was never touched.
        self.assertEqual(['compute1'], [
            r['host'] for r in self.records('steer-disabled')])
        self.assertEqual(('disabled', 'RMA ticket 42'),
                         self.status('compute3'))
        self.assertIn('compute3 was already disabled by hand (RMA ticket '
                      '42)', self.stderr())
        self.assertEqual(('enabled', None), self.status('compute1'))

    def test_left_disabled_without_enable_after_and_listed(self):
        self.cloud()
        rc, rows = self.rolling()
        self.assertEqual(0, rc, self.stderr())
        for host in HOSTS:
            status, reason = self.status(host)
            self.assertEqual('disabled', status)
            self.assertIn('rolling maintenance [osc-migrate-plus rolling ',
                          reason)
        self.assertIn('left disabled by this run: compute1, compute2, '
                      'compute3', self.stderr())

    def test_disable_reason_names_the_run(self):
        self.cloud()
        rc, rows = self.rolling('--disable-reason', 'kernel 6.12')
        run_id = self.records('header')[0]['rolling']['run_id']
        self.assertEqual(('disabled', 'kernel 6.12 [osc-migrate-plus '
                          'rolling %s]' % run_id), self.status('compute1'))

    def test_max_hosts_two_at_a_time(self):
        fake = self.cloud()
        rc, rows = self.rolling('--max-hosts', '2', '--enable-after',
                                '--host-command', self.LOG % self.out)
        self.assertEqual(0, rc, self.stderr())
        self.assertEqual(['compute1:2:3:0', 'compute2:1:3:0',
                          'compute3:3:3:0'], sorted(self.ran()))
        self.assertIn('step 1 of 2: compute2, compute1', self.stderr())
        for sid in self.sids.values():
            self.assertEqual(1, len(fake.records(sid)))

    def test_aggregate(self):
        fake = self.cloud()
        fake.aggregates['rack7'] = list(HOSTS)
        rc, rows = self.batch('--aggregate', 'rack7', '--rolling',
                              '--enable-after', '--state-file', self.path)
        self.assertEqual(0, rc, self.stderr())
        self.assertEqual(list(HOSTS), sorted(
            self.records('header')[0]['rolling']['hosts']))
        for sid in self.sids.values():
            self.assertEqual(1, rows[sid]['Moves'])

    def test_server_found_at_its_turn_is_drained_too(self):
        """A server that landed on a waiting host meanwhile goes too."""
        fake = self.cloud()
        late = []

        def hook():
            if not late and self.journal_count('"host-done"') == 1:
                late.append(fake.add_server('late', host='compute3'))
        fake.sleep_hooks.append(hook)
        rc, rows = self.rolling('--enable-after')
        self.assertEqual(0, rc, self.stderr())
        self.assertResult('confirmed', rows[late[0]])
        self.assertNotEqual('compute3', fake._servers[late[0]]['host'])


class TestHostCommandFailure(RollingCase):

    def test_failing_command_stops_before_the_next_host(self):
        fake = self.cloud()
        failing = (self.LOG % self.out + '; test "$OSC_MIGRATE_HOST" != '
                   'compute1 || { echo disk sdb is broken; exit 4; }')
        rc, rows = self.rolling('--enable-after', '--host-command', failing)
        self.assertEqual(1, rc)
        err = self.stderr()
        self.assertIn('host command failed, the run stops here and the host '
                      'stays disabled: compute1: host command exited 4: disk '
                      'sdb is broken', err)
        self.assertEqual(['compute2:1:3:0', 'compute1:2:3:0'], self.ran())
        self.assertEqual('disabled', self.status('compute1')[0])
        self.assertEqual(('enabled', None), self.status('compute2'))
        # compute3 was not drained: its servers are where they were.
        for name in ('compute3-0', 'compute3-1', 'compute3-2'):
            self.assertEqual('compute3',
                             fake._servers[self.sids[name]]['host'])
            self.assertResult('not-started', rows[self.sids[name]])
        self.assertIn('left disabled by this run: compute1, compute3', err)
        [record] = [r for r in self.records('host-command')
                    if r['host'] == 'compute1']
        self.assertEqual((4, False, 'disk sdb is broken'),
                         (record['exit_code'], record['ok'], record['tail']))

        # The fix: the command works now. The resume runs it again on
        # compute1 only (compute2's finished), then compute3.
        rc, rows = self.batch('--resume', self.path, '--host-command',
                              self.LOG % self.out)
        self.assertEqual(0, rc, self.stderr())
        self.assertEqual(['compute2:1:3:0', 'compute1:2:3:0',
                          'compute1:2:3:1', 'compute3:3:3:0'], self.ran())
        for host in HOSTS:
            self.assertEqual(('enabled', None), self.status(host))
        for sid in self.sids.values():
            self.assertEqual(1, len(fake.records(sid)))
            self.assertEqual(1, rows[sid]['Moves'])

    def test_command_past_the_timeout_is_killed(self):
        self.cloud()
        rc, rows = self.rolling('--timeout', '20', '--host-command',
                                'echo rebooting; sleep 600')
        self.assertEqual(1, rc)
        self.assertIn('compute2: host command timed out after 20s',
                      self.stderr())
        [record] = self.records('host-command')
        self.assertEqual((None, False, 'rebooting'),
                         (record['exit_code'], record['ok'], record['tail']))
        self.assertEqual([], self.records('host-drained')[1:])

    def test_not_empty_after_drain_runs_no_command(self):
        """Never reboot a host with servers on it."""
        fake = self.cloud()
        broken = fake.add_server('broken', host='compute1', status='ERROR')
        rc, rows = self.rolling('--enable-after', '--host-command',
                                self.LOG % self.out)
        self.assertEqual(1, rc)
        self.assertEqual(['compute2:1:3:0'], self.ran())
        self.assertIn('not empty after the drain, so no host command ran '
                      'and it stays disabled: compute1: NOT empty: 1 server '
                      '(broken: ERROR, skipped: server is in ERROR state)',
                      self.stderr())
        self.assertIn(broken, self.records('host-checked')[1]['line'] +
                      json.dumps(rows))
        self.assertEqual('disabled', self.status('compute1')[0])
        self.assertEqual(0, len(fake.records(self.sids['compute3-0'])))


class TestEnableAfter(RollingCase):

    def reboot_during_command(self, host, up_after):
        """The host command reboots ``host``: nova-compute down, then up."""
        fake = self.fake
        done = []

        def hook():
            started = [r for r in self.records('host-command-started')
                       if r['host'] == host]
            if started and not done:
                done.append(fake.now)
                fake.service_down(host)
                fake.after(up_after, back)

        def back():
            # What the run did meanwhile: nothing (still disabled).
            done.append(fake.services[host]['status'])
            fake.service_up(host)
        fake.sleep_hooks.append(hook)
        return done

    def test_waits_for_nova_compute_to_come_back(self):
        self.cloud()
        down = self.reboot_during_command('compute2', 90)
        rc, rows = self.rolling('--enable-after', '--host-command',
                                'sleep 0.05')
        self.assertEqual(0, rc, self.stderr())
        self.assertIn('compute2: nova-compute is down, waiting for it to '
                      'come back', self.stderr())
        # compute2 was still disabled when it came back, enabled after.
        self.assertEqual('disabled', down[1])
        self.assertEqual(('enabled', None), self.status('compute2'))

    def test_not_back_within_the_timeout(self):
        fake = self.cloud()
        self.reboot_during_command('compute2', 10 ** 6)
        rc, rows = self.rolling('--enable-after', '--timeout', '120',
                                '--host-command', 'true')
        self.assertEqual(1, rc)
        self.assertIn('compute2: nova-compute did not report up within '
                      '120s after the host command; it stays disabled',
                      self.stderr())
        self.assertEqual('disabled', self.status('compute2')[0])
        self.assertEqual('compute1', fake._servers[
            self.sids['compute1-0']]['host'])

    def test_hand_disabled_host_is_drained_but_not_enabled(self):
        fake = self.cloud()
        fake.services['compute1']['status'] = 'disabled'
        fake.services['compute1']['disabled_reason'] = 'bad DIMM'
        rc, rows = self.rolling('--enable-after')
        self.assertEqual(0, rc, self.stderr())
        self.assertEqual(('disabled', 'bad DIMM'), self.status('compute1'))
        self.assertNotEqual('compute1', fake._servers[
            self.sids['compute1-0']]['host'])
        self.assertIn('Host compute1: step 2, done, 2 moved off, empty (0 '
                      'servers, 0 migrations, 0 allocations), left disabled: '
                      'it was disabled by hand before the run', self.stderr())


class TestRollingResume(RollingCase):
    """Killed (SIGKILL) at each phase, then --resume."""

    def kill_at(self, condition, *args):
        self.kill_when(condition)
        self.assertRaises(test_unkind_nova.Kill, self.rolling,
                          '--enable-after', '--host-command',
                          self.LOG % self.out, *args)
        return self.batch('--resume', self.path)

    def assertAllOnce(self, rc, rows):  # noqa: N802
        self.assertEqual(0, rc, self.stderr())
        for name, sid in self.sids.items():
            self.assertEqual(1, len(self.fake.records(sid)), name)
            self.assertEqual(1, rows[sid]['Moves'], name)
            self.assertResult('confirmed', rows[sid])
        for host in HOSTS:
            self.assertEqual(('enabled', None), self.status(host))

    def test_killed_while_draining(self):
        fake = self.cloud()
        fake.timing['cold_duration'] = 30
        rc, rows = self.kill_at(
            lambda: fake.count('POST', 'migrate') >= 2)
        self.assertAllOnce(rc, rows)
        self.assertEqual(['compute2:1:3:0', 'compute1:2:3:0',
                          'compute3:3:3:0'], self.ran())

    def test_killed_after_disable_before_drain(self):
        self.cloud()
        rc, rows = self.kill_at(
            lambda: self.journal_count('"host-disabled"') == 1)
        self.assertAllOnce(rc, rows)

    def test_killed_after_drain_before_check(self):
        self.cloud()
        self.kill_in_check = 'compute1'
        self.assertRaises(test_unkind_nova.Kill, self.rolling,
                          '--enable-after', '--host-command',
                          self.LOG % self.out)
        self.assertEqual(['compute2', 'compute1'],
                         [r['host'] for r in self.records('host-drained')])
        rc, rows = self.batch('--resume', self.path)
        self.assertAllOnce(rc, rows)
        # Drained once: the resume checked it and went on.
        self.assertEqual(['compute2', 'compute1', 'compute3'],
                         [r['host'] for r in self.records('host-drained')])
        self.assertEqual(['compute2:1:3:0', 'compute1:2:3:0',
                          'compute3:3:3:0'], self.ran())

    def test_killed_during_the_host_command(self):
        """Started, never seen to finish: run again, told it is resumed."""
        self.cloud()
        first = ('test "$OSC_MIGRATE_HOST" != compute1 || sleep 3600; '
                 + self.LOG % self.out)
        self.kill_when(
            lambda: self.journal_count('"host-command-started"') == 2)
        self.assertRaises(test_unkind_nova.Kill, self.rolling,
                          '--enable-after', '--host-command', first)
        # compute2's ran (slowly); compute1's was killed with the client.
        self.assertEqual(['compute2:1:3:0'], self.ran())
        rc, rows = self.batch('--resume', self.path, '--host-command',
                              self.LOG % self.out)
        self.assertAllOnce(rc, rows)
        self.assertEqual(['compute2:1:3:0', 'compute1:2:3:1',
                          'compute3:3:3:0'], self.ran())

    def test_killed_after_the_command_never_runs_it_again(self):
        self.cloud()
        rc, rows = self.kill_at(
            lambda: self.journal_count('"host-command"') == 2)
        self.assertAllOnce(rc, rows)
        self.assertEqual(['compute2:1:3:0', 'compute1:2:3:0',
                          'compute3:3:3:0'], self.ran())

    def test_killed_while_waiting_for_nova_compute(self):
        fake = self.cloud()
        fake.service_down('compute1')  # never beats until the test says
        up = []

        def hook():
            if self.journal_count('"host-command"') == 2 and not up:
                up.append(1)
                raise test_unkind_nova.Kill()
        fake.sleep_hooks.append(hook)
        self.assertRaises(test_unkind_nova.Kill, self.rolling,
                          '--enable-after', '--host-command',
                          self.LOG % self.out)
        self.assertEqual('disabled', self.status('compute1')[0])
        fake.after(30, lambda: fake.service_up('compute1'))
        rc, rows = self.batch('--resume', self.path)
        self.assertAllOnce(rc, rows)
        self.assertEqual(['compute2:1:3:0', 'compute1:2:3:0',
                          'compute3:3:3:0'], self.ran())


class TestCtrlC(RollingCase):

    def test_ctrl_c_stops_after_the_current_host(self):
        fake = self.cloud()
        sent = []

        def hook():
            if not sent and self.journal_count('"host-drained"') == 1:
                sent.append(1)
                os.kill(os.getpid(), signal.SIGINT)
        fake.sleep_hooks.append(hook)
        rc, rows = self.rolling('--enable-after', '--host-command',
                                'sleep 0.05; ' + self.LOG % self.out)
        self.assertEqual(130, rc)
        # The command that was running finished; nothing more started.
        self.assertEqual(['compute2:1:3:0'], self.ran())
        self.assertEqual(0, len(fake.records(self.sids['compute1-0'])))
        err = self.stderr()
        self.assertIn('interrupted: resume with', err)
        self.assertIn('left disabled by this run: compute1, compute2, '
                      'compute3', err)
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc, self.stderr())
        self.assertEqual(['compute2:1:3:0', 'compute1:2:3:0',
                          'compute3:3:3:0'], self.ran())
        for host in HOSTS:
            self.assertEqual(('enabled', None), self.status(host))


class TestRollingUsage(RollingCase):

    def usage(self, *args):
        rc, rows = self.batch(*args)
        self.assertEqual(2, rc)
        self.assertEqual(0, self.fake.count('POST', 'migrate'))
        self.assertEqual(0, self.fake.count('PUT', 'os-services'))
        return self.stderr()

    def test_usage_errors(self):
        self.cloud()
        self.assertIn('--rolling maintains several hosts one after another',
                      self.usage('--source-host', 'compute1', '--rolling'))
        self.assertIn('--host-command needs --rolling',
                      self.usage('--source-host', 'compute1',
                                 '--host-command', 'true'))
        self.assertIn('--max-hosts, --enable-after need --rolling',
                      self.usage('--source-host', 'compute1',
                                 '--max-hosts', '2', '--enable-after'))
        self.assertIn('--rolling drains whole hosts and disables each at its '
                      'turn: drop --project, --disable-source',
                      self.usage('--source-host', 'compute1',
                                 '--source-host', 'compute2', '--rolling',
                                 '--project', 'p1', '--disable-source'))
        self.assertIn('--host-command is empty',
                      self.usage('--source-host', 'compute1',
                                 '--source-host', 'compute2', '--rolling',
                                 '--host-command', ' '))

    def test_resume_of_a_plain_batch_refuses_rolling_options(self):
        fake = self.cloud()
        rc, rows = self.batch('compute1-0', '--confirm', '--state-file',
                              self.path)
        self.assertEqual(0, rc)
        rc, rows = self.batch('--resume', self.path, '--host-command',
                              'true')
        self.assertEqual(2, rc)
        self.assertIn('is not a rolling run', self.stderr())
        self.assertEqual(1, fake.count('POST', 'migrate'))


class TestNovaRefuses(RollingCase):

    def test_refused_service_update_stops_then_resume(self):
        fake = self.cloud()
        fake.fail_request(method='PUT', path='os-services', status=403)
        rc, rows = self.rolling('--enable-after')
        self.assertEqual(1, rc)
        self.assertIn("stopped by Nova's answer", self.stderr())
        self.assertIn('--resume continues at this phase', self.stderr())
        self.assertEqual(0, fake.count('POST', 'migrate'))
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc, self.stderr())
        for sid in self.sids.values():
            self.assertEqual(1, rows[sid]['Moves'])
