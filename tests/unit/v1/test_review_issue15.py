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

"""Review of issue 15's changes: a bad night in production.

Concurrent confirms, the host baseline, named servers read in bulk, through
the real command on the unkind fake Nova.
"""

import json
import os
import signal
import threading
import time

from osc_lib import exceptions

from osc_migrate_plus.engine import batch as engine_batch
from tests.unit.v1 import test_efficiency as eff
from tests.unit.v1 import test_unkind_nova as base


class TestHostBaseline(eff.EfficiencyTestCase):

    def test_listed_server_with_a_newer_record_elsewhere(self):
        """Listed at its host, yet its newest record is elsewhere.

        Migrated compute1 -> compute2 (listed at compute1), then compute2
        -> compute3 (not listed there), then shelved and unshelved onto
        compute1. The host's listing gives it the first record as baseline;
        the second, final and older than the listing, has a higher ID. The
        migrate answer is lost and Nova never carries it out: the old
        record must not be taken for ours (it would be adopted, nothing
        migrated); the request is sent again and the server migrated once.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.moved_before(sid, 'compute1', 'compute2')
        fake.moved_before(sid, 'compute2', 'compute3')
        fake.advance(300)
        fake.lose_reply('migrate', apply_after=None)
        rc, rows = self.batch('--source-host', 'compute1', '--confirm',
                              '--state-file', self.path)
        self.assertResult('confirmed', rows[sid])
        self.assertEqual(0, rc)
        self.assertEqual(2, fake.count('POST', 'migrate'))
        self.assertEqual(3, len(fake.records(sid)))
        self.assertNotEqual('compute1', fake._servers[sid]['host'])

    def test_host_records_over_several_pages(self):
        """More records at the host than one page (max_limit) holds."""
        fake = self.cloud(max_limit=2)
        ids = [fake.add_server('vm%d' % n) for n in range(4)]
        for sid in ids:
            fake.moved_before(sid, 'compute2', 'compute1')
        # The newest of one server is on the second page.
        fake.moved_before(ids[0], 'compute3', 'compute1')
        for n in range(3):
            other = fake.add_server('other%d' % n, host='compute2')
            fake.moved_before(other, 'compute1', 'compute2')
        fake.advance(300)
        fake.lose_reply('migrate', server=ids[0], apply_after=None)
        rc, rows = self.drain(4, '--confirm')
        self.assertEqual(0, rc)
        for sid in ids:
            self.assertResult('confirmed', rows[sid])
        self.assertEqual(3, len(fake.records(ids[0])))

    def test_nova_unreachable_during_the_host_listing(self):
        """The host's listing fails, past the gateway's read retries.

        The servers wait their turn, nothing is sent before a baseline,
        each migrated once.
        """
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(3)]
        armed = []

        def gate(method, url, body):
            # Once the run has begun: its first read is the host's listing.
            if not armed and method == 'GET' and \
                    url.endswith('/os-migrations') and \
                    self.journal_count('"type":"plan"'):
                armed.append(url)
                fake.fail_request(method='GET', path='/os-migrations',
                                  status='reset', times=6)
        fake.gate = gate
        rc, rows = self.drain(3, '--confirm')
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertEqual(3, fake.count('POST', 'migrate'))
        self.assertTrue(armed)


class TestConcurrentConfirmsUnkind(eff.EfficiencyTestCase):

    def test_lost_refused_and_failed_among_six(self):
        """Six confirms together: one lost (applied), a 409, a 503.

        Each ends confirmed, migrated once.
        """
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(6)]
        fake.gate = eff.ConcurrencyGate('confirmResize', linger=0.05)
        fake.lose_reply('confirmResize', server=ids[0], apply_after=0.0)
        fake.fail_request(action='confirmResize', status=409, times=1)
        fake.fail_request(action='confirmResize', status=503, times=1)
        rc, rows = self.drain(6, '--confirm')
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertGreaterEqual(fake.gate.peak, 2)

    def test_second_ctrl_c_while_a_confirm_hangs(self):
        """Ctrl-C twice while one confirm of the round hangs in Nova.

        "Quit at once" must quit at once, as it did when confirms went out
        from the main thread: not wait for the hung request's answer.
        """
        fake = self.cloud()
        for n in range(3):
            fake.add_server('vm%d' % n)
        release = threading.Event()
        self.addCleanup(release.set)
        hung = []

        def gate(method, url, body):
            if method != 'POST' or not isinstance(body, dict) or \
                    'confirmResize' not in body:
                return
            if not hung:
                hung.append(url)
                # Ctrl-C twice, from the terminal, while this one hangs.
                # (Two at once would be one: the handler runs between.)
                os.kill(os.getpid(), signal.SIGINT)
                threading.Event().wait(0.3)  # real time
                os.kill(os.getpid(), signal.SIGINT)
                release.wait(5)
        fake.gate = gate
        began = time.perf_counter()  # real time: the fake's is simulated
        self.assertRaises(KeyboardInterrupt, self.batch,
                          '--source-host', 'compute1', '--confirm',
                          '--max-parallel', '3', '--max-per-source', '3',
                          '--max-per-destination', '3',
                          '--state-file', self.path)
        took = time.perf_counter() - began
        release.set()
        self.assertTrue(hung)
        self.assertLess(took, 3.0)
        self.assertTrue(self.journal_count('"interrupted"'))

    def test_credentials_expire_on_one_confirm_of_the_round(self):
        """One confirm of four gets a 401.

        The three Nova took are journaled as sent before the run stops (a
        resume reads them).
        """
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(4)]
        fake.gate = eff.ConcurrencyGate('confirmResize', linger=0.05)
        fake.fail_request(action='confirmResize', status=401, times=1)
        rc, rows = self.drain(4, '--confirm')
        self.assertNotEqual(0, rc)
        self.assertEqual(4, fake.gate.seen)
        self.assertEqual(3, self.journal_count('"confirm-sent"'))
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)


class TestNamedInBulk(eff.EfficiencyTestCase):

    def test_named_twice_and_a_deleted_id(self):
        fake = self.cloud()
        a = fake.add_server('vm-a')
        b = fake.add_server('vm-b')
        gone = fake.add_server('vm-gone')
        fake.delete_server(gone)
        rc, rows = self.batch(a, 'vm-a', b.upper(), b, '--confirm',
                              '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertEqual({a, b}, set(rows))
        self.assertEqual(1, len(fake.records(a)))
        # As before the bulk read: a named server that is not there is
        # refused, by name, before anything is sent.
        error = self.assertRaises(exceptions.CommandError, self.batch, a,
                                  gone,
                                  '--confirm', '--state-file',
                                  self.path + '2')
        self.assertIn(gone, str(error))
        self.assertEqual(2, fake.count('POST', 'migrate'))


class TestResumeJournals(eff.EfficiencyTestCase):

    def _killed_after_one_submission(self, *extra):
        fake = self.cloud()
        fake.timing['cold_duration'] = 30
        sids = [fake.add_server('vm%d' % n) for n in range(6)]
        self.kill_when(lambda: self.journal_count('"event":"submitted"'))
        self.assertRaises(base.Kill, self.batch, '--source-host',
                          'compute1', '--confirm', '--state-file',
                          self.path, *extra)
        return fake, sids

    def _resume(self, *args):
        seen = []
        real = engine_batch.Runner.run

        def run(runner, *a, **kw):
            seen.append(runner)
            return real(runner, *a, **kw)

        with base.mock.patch.object(engine_batch.Runner, 'run', run):
            rc, rows = self.batch('--resume', self.path, *args)
        return rc, rows, [(r.options.max_per_source,
                           r.options.max_per_destination,
                           r.pace.ceiling if r.pace else None)
                          for r in seen]

    def test_auto_given_on_resume_lifts_the_defaults_per_host(self):
        """A batch run with the defaults, resumed with --max-parallel auto.

        As on a new run, auto's per-host limits are off unless given: the
        journal's (the defaults of the first run, 2 from one host) would
        hold this one-host drain at 2, auto or not.
        """
        fake, sids = self._killed_after_one_submission()
        rc, rows, seen = self._resume('--max-parallel', 'auto')
        self.assertEqual(0, rc)
        self.assertEqual(0, seen[0][0])
        self.assertEqual(0, seen[0][1])
        self.assertGreater(seen[0][2], 2)
        self.assertMovedOnce(fake, sids, rows)

    def test_auto_on_resume_keeps_per_host_limits_given_again(self):
        fake, sids = self._killed_after_one_submission()
        rc, rows, seen = self._resume('--max-parallel', 'auto',
                                      '--max-per-source', '3')
        self.assertEqual(0, rc)
        self.assertEqual((3, 0, 3), seen[0])

    def test_resume_of_a_journal_without_not_before(self):
        """A journal of before issue 15 has no not_before: resumed alike."""
        fake, sids = self._killed_after_one_submission()
        lines = self.journal_records()
        self.assertTrue([r for r in lines if r.get('not_before')])
        with open(self.path, 'w') as f:
            for record in lines:
                record.pop('not_before', None)
                f.write(json.dumps(record) + '\n')
        rc, rows, seen = self._resume()
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, sids, rows)
