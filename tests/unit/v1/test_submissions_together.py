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

"""The migrate requests of one turn go out together, and nothing is lost.

A cold migrate request waits for Nova's scheduler: sent one after another,
a turn that fills ten slots took seconds, and the next poll (with its
confirms) waited for it. On the unkind fake Nova, through the real command
and gateway.
"""

import os
import signal
import threading
import time

from tests.unit.v1 import test_efficiency as eff


def _is_migrate(method, body):
    return eff.is_action(method, body, 'migrate')


class TestSubmissionsTogether(eff.EfficiencyTestCase):

    def test_migrate_requests_of_one_turn_go_out_together(self):
        """Six slots free at the start: six requests on the wire at once.

        Sent one after another, no two are ever on the wire together
        (peak 1).
        """
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(6)]
        gate = eff.ConcurrencyGate('migrate')
        fake.gate = gate
        rc, rows = self.drain(6, '--confirm')
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertEqual(6, gate.seen)
        self.assertGreaterEqual(gate.peak, 3)

    def test_each_journaled_before_any_goes_out(self):
        """A crash while the requests are out leaves each one journaled."""
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(4)]
        journaled = []

        def gate(method, url, body):
            if _is_migrate(method, body):
                journaled.append(self.journal_count('"submitting"'))
        fake.gate = gate
        rc, rows = self.drain(4, '--confirm')
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertEqual([4] * 4, journaled)

    def test_lost_and_failed_among_one_turn(self):
        """Six requests together: one lost, one lost for good, one 503.

        The first lost is applied late. Each server ends confirmed, moved
        once.
        """
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(6)]
        fake.gate = eff.ConcurrencyGate('migrate', linger=0.05)
        fake.lose_reply('migrate', server=ids[0], apply_after=3.0)
        fake.lose_reply('migrate', server=ids[1], apply_after=None)
        fake.fail_request(action='migrate', status=503, times=1)
        rc, rows = self.drain(6, '--confirm')
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertGreaterEqual(fake.gate.peak, 2)
        # The one lost for good and the 503 were sent again; the one Nova
        # applied late was followed, not sent again.
        self.assertEqual(8, fake.count('POST', 'migrate'))

    def test_credentials_expire_on_one_request_of_the_turn(self):
        """One migrate request of four gets a 401.

        The three Nova took are journaled as submitted before the run
        stops, and the refused one as refused: a resume follows the three
        and submits the fourth, each moved once.
        """
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(4)]
        fake.gate = eff.ConcurrencyGate('migrate', linger=0.05)
        fake.fail_request(action='migrate', status=401, times=1)
        rc, rows = self.drain(4, '--confirm')
        self.assertNotEqual(0, rc)
        self.assertEqual(4, fake.gate.seen)
        self.assertEqual(3, self.journal_count('"event":"submitted"'))
        refused = [r for r in self.journal_records()
                   if r.get('event') == 'submit-failed']
        self.assertEqual(1, len(refused))
        self.assertTrue(refused[0]['refused'])
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertEqual(5, fake.count('POST', 'migrate'))

    def test_second_ctrl_c_while_a_migrate_request_hangs(self):
        """Ctrl-C twice while one request of the turn hangs in Nova.

        The batch quits at once, each server whose request was out is
        reported interrupted (not "before submission"), and a resume
        finds every migration Nova carried out: none is sent twice.
        """
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(3)]
        release = threading.Event()
        self.addCleanup(release.set)
        hung = []
        out = []

        def gate(method, url, body):
            if not _is_migrate(method, body):
                return
            out.append(url)
            if not hung:
                hung.append(url)
                # Every request of the turn out first: after a Ctrl-C none
                # is sent (real time).
                for _ in range(100):
                    if len(out) == 3:
                        break
                    threading.Event().wait(0.02)
                os.kill(os.getpid(), signal.SIGINT)
                threading.Event().wait(0.3)  # real time
                os.kill(os.getpid(), signal.SIGINT)
                release.wait(5)
        fake.gate = gate
        began = time.perf_counter()  # real time: the fake's is simulated
        self.assertRaises(KeyboardInterrupt, self.drain, 3, '--confirm')
        took = time.perf_counter() - began
        release.set()
        # The hung request reaches Nova after all, from its thread.
        for _ in range(100):
            if fake.count('POST', 'migrate') == 3:
                break
            threading.Event().wait(0.05)  # real time
        self.assertTrue(hung)
        self.assertLess(took, 3.0)
        self.assertEqual(3, fake.count('POST', 'migrate'))
        interrupted = [r for r in self.journal_records()
                       if r.get('event') == 'interrupted']
        self.assertEqual(3, len(interrupted))
        for record in interrupted:
            self.assertIn('migrate request was out', record['message'])
        fake.gate = None
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertEqual(3, fake.count('POST', 'migrate'))
