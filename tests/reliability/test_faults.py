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

"""Faults during a batch: the API, the network, hosts, the driver, the
client itself. Each scenario ends with ``check`` (see base.py)."""

import signal
import time

from tests.reliability import base

LIMITS = ('--max-parallel', '3', '--max-per-source', '3',
          '--max-per-destination', '3')


class FaultTestCase(base.ReliabilityTestCase):

    def scenario(self, host, count, stopped=0):
        """Servers on a host, their records so far, their sources."""
        seeded = self.seed(host, count, stopped)
        ids = [s['id'] for s in seeded]
        return ids, self.newest_records(ids), {sid: host for sid in ids}


class TestApiFaults(FaultTestCase):

    def test_nova_api_unreachable_for_10s_mid_batch(self):
        ids, before, sources = self.scenario('compute1', 6)
        proxy = self.use_proxy()
        # Down at the first poll: 3 are in flight, and the other 3 not
        # sent yet (a run that went down before a submission ended the
        # batch, before the fix). Each server's baseline came with the
        # host's listing: no read of its own precedes its submission.
        hold = proxy.hold('GET', '/os-migrations?changes-since=')
        path = self.journal()
        self.cloud.set_delay(2)
        proc = self.start(*ids, '--confirm', '--interval', '1', *LIMITS,
                          '--state-file', path)
        self.assertTrue(hold.arrived.wait(120), 'no poll')
        proxy.down()  # connections refused
        hold.release(forward=False)  # and the read in progress reset
        time.sleep(10)
        proxy.up()
        run = self.finish(proc)
        results = self.check('nova-api unreachable 10 s', ids, run, before,
                             sources, path, faults=1)
        self.assertEqual({'confirmed'}, set(results.values()))

    def test_503s_and_connection_resets_all_run_long(self):
        ids, before, sources = self.scenario('compute1', 8)
        # Seed 7: the first 40 requests already draw each kind of fault.
        proxy = self.use_proxy(seed=7)
        proxy.error_rate = 0.05   # 503 instead of an answer
        proxy.reset_rate = 0.01   # reset before Nova saw the request
        proxy.lost_rate = 0.01    # reset after Nova acted on it
        path = self.journal()
        run = self.run_batch(*ids, '--confirm', '--interval', '1', *LIMITS,
                             '--state-file', path)
        for kind in ('503', 'reset', 'lost'):
            self.assertGreater(proxy.injected[kind], 0, proxy.injected)
        injected = sum(v for k, v in proxy.injected.items()
                       if k in ('503', 'reset', 'lost'))
        results = self.check('5% 503 + 2% resets', ids, run, before,
                             sources, path, faults=injected)
        self.assertEqual({'confirmed'}, set(results.values()))


class TestLostAnswers(FaultTestCase):
    """Answers lost between the client and Nova; Nova acts all the same."""

    def test_migrate_answered_504_and_carried_out_later(self):
        # A load balancer gives up on two migrate requests; Nova gets them
        # 3 s later. Never a second migration of those servers.
        ids, before, sources = self.scenario('compute1', 6)
        proxy = self.use_proxy()
        proxy.lose_reply('POST', '/action', 'migrate', status=504,
                         forward_after=3.0, times=2)
        path = self.journal()
        run = self.run_batch(*ids, '--confirm', '--interval', '1', *LIMITS,
                             '--state-file', path)
        self.assertEqual(2, proxy.injected['late'], proxy.injected)
        results = self.check('migrate answered 504, carried out 3 s later',
                             ids, run, before, sources, path, faults=2)
        self.assertEqual({'confirmed'}, set(results.values()))

    def test_confirm_carried_out_but_answered_502(self):
        ids, before, sources = self.scenario('compute1', 4)
        proxy = self.use_proxy()
        proxy.fail('POST', '/action', 'confirmResize', status=502,
                   forward=True, times=2)
        path = self.journal()
        run = self.run_batch(*ids, '--confirm', '--interval', '1', *LIMITS,
                             '--state-file', path)
        results = self.check('confirm carried out, answered 502', ids, run,
                             before, sources, path, faults=2)
        self.assertEqual({'confirmed'}, set(results.values()))


class TestHostFaults(FaultTestCase):
    COMPUTES = 4

    def tearDown(self):
        for host in self.cloud.hosts:
            self.cloud.service_up(host)
        super().tearDown()

    def test_hosts_down_before_and_during_the_batch(self):
        ids, before, sources = self.scenario('compute1', 4)
        stuck, stuck_before, stuck_sources = self.scenario('compute4', 1)
        # compute4 (with a server) and compute2 (a destination) are down
        # before the batch; compute3 goes down while it runs.
        self.cloud.service_down('compute4')
        self.cloud.service_down('compute2')
        path = self.journal()
        self.cloud.set_delay(3)
        proc = self.start(*(ids + stuck), '--confirm', '--interval', '1',
                          '--timeout', '30', *LIMITS, '--state-file', path)
        self.wait_for_event(path, 'submitted', 1)
        self.cloud.service_down('compute3')
        run = self.finish(proc)
        before.update(stuck_before)
        sources.update(stuck_sources)
        results = self.check('hosts down', ids + stuck, run, before,
                             sources, path, faults=3)
        self.assertEqual('failed', results[stuck[0]])
        # Nova's refusal names no host; the row's Source Host does.
        self.assertIn('Service is unavailable', run.rows[stuck[0]]['Message'])
        self.assertEqual('compute4', run.rows[stuck[0]]['Source Host'])

    def test_driver_fails_migrations_to_one_destination(self):
        ids, before, sources = self.scenario('compute1', 6)
        self.cloud.fail_migrations(['compute2'], 'to')
        path = self.journal()
        run = self.run_batch(*ids, '--confirm', '--interval', '1', *LIMITS,
                             '--state-file', path)
        results = self.check('driver fails to compute2', ids, run, before,
                             sources, path, faults=1)
        for sid, result in results.items():
            row = run.rows[sid]
            if row['Destination Host'] == 'compute2':
                self.assertEqual('failed', result)
                self.assertIn('set to fail', row['Message'])
            else:
                self.assertEqual('confirmed', result, row)


class TestClientKilled(FaultTestCase):
    """SIGKILL at exact points (held in the proxy), then --resume."""

    def kill_at(self, name, method, contains, action=None, forward=False,
                respond=False):
        ids, before, sources = self.scenario('compute2', 2)
        proxy = self.use_proxy()
        hold = proxy.hold(method, contains, action)
        path = self.journal()
        proc = self.start(*ids, '--confirm', '--interval', '1', *LIMITS,
                          '--state-file', path)
        self.assertTrue(hold.arrived.wait(120), 'never reached %s' % name)
        proc.kill()
        proc.communicate()
        # What became of the request the client was waiting on.
        hold.release(forward=forward, respond=respond)
        self.settle(ids)
        run = self.run_batch('--resume', path, '--interval', '1')
        results = self.check('SIGKILL %s' % name, ids, run, before,
                             sources, path, faults=1)
        self.assertEqual({'confirmed'}, set(results.values()))
        return run

    def test_before_the_first_submit(self):
        # Held on the read that precedes the first submission: the
        # source host's migration records, every server's baseline.
        self.kill_at('before the first submit', 'GET',
                     '/os-migrations?host=')

    def test_between_submit_and_the_record(self):
        # Nova gets the request after the client died: resume must find
        # the migration, not start another.
        self.kill_at('between submit and record', 'POST', '/action',
                     'migrate', forward=True)

    def test_mid_flight(self):
        ids, before, sources = self.scenario('compute3', 3)
        path = self.journal()
        self.cloud.set_delay(3)
        proc = self.start(*ids, '--confirm', '--interval', '1', *LIMITS,
                          '--state-file', path)
        self.wait_for_event(path, 'submitted', 2)
        proc.kill()
        proc.communicate()
        self.cloud.set_delay(0)
        run = self.run_batch('--resume', path, '--interval', '1')
        results = self.check('SIGKILL mid-flight', ids, run, before,
                             sources, path, faults=1)
        self.assertEqual({'confirmed'}, set(results.values()))

    def test_at_verify_resize_before_confirm(self):
        self.kill_at('at VERIFY_RESIZE', 'POST', '/action', 'confirmResize',
                     forward=False)

    def test_after_confirm_was_sent(self):
        self.kill_at('after confirm sent', 'POST', '/action',
                     'confirmResize', forward=True)


class TestInterrupt(FaultTestCase):

    def interrupt(self, name, signals):
        ids, before, sources = self.scenario('compute1', 3)
        path = self.journal()
        self.cloud.set_delay(3)
        proc = self.start(*ids, '--confirm', '--interval', '1',
                          '--max-parallel', '1', '--state-file', path)
        self.wait_for_event(path, 'submitted', 1)
        for _ in range(signals):
            proc.send_signal(signal.SIGINT)
            time.sleep(0.3)
        first = self.finish(proc)
        self.assertEqual(130, first.rc, first.stderr)
        self.assertIn('--resume %s' % path, first.stderr)
        self.cloud.set_delay(0)
        self.settle(ids)
        run = self.run_batch('--resume', path, '--interval', '1')
        results = self.check(name, ids, run, before, sources, path,
                             faults=1)
        self.assertEqual({'confirmed'}, set(results.values()))
        return first

    def test_sigint_once_graceful(self):
        first = self.interrupt('SIGINT once', 1)
        self.assertEqual(['interrupted', 'not-started', 'not-started'],
                         sorted(r['Result'] for r in first.rows.values()))

    def test_sigint_twice_immediate(self):
        self.interrupt('SIGINT twice', 2)


class TestNovaConfirmsByItself(FaultTestCase):
    CONFIRM_WINDOW = 1

    def test_auto_confirm_races_our_confirm(self):
        ids, before, sources = self.scenario('compute1', 2)
        proxy = self.use_proxy()
        hold = proxy.hold('POST', '/action', 'confirmResize')
        path = self.journal()
        proc = self.start(*ids, '--confirm', '--interval', '1', *LIMITS,
                          '--state-file', path)
        self.assertTrue(hold.arrived.wait(120))
        time.sleep(1.5)  # older than resize_confirm_window
        self.cloud.auto_confirm()  # Nova confirms first...
        hold.release()  # ...then our confirm arrives
        run = self.finish(proc)
        results = self.check('Nova auto-confirms first', ids, run, before,
                             sources, path, faults=1)
        self.assertEqual({'confirmed'}, set(results.values()))
