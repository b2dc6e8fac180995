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

"""What batch costs the cloud: concurrent confirms, reads it can do without.

On the unkind fake Nova, through the real command and gateway.
"""

import threading

from tests.unit.v1 import test_unkind_nova as base


class ConcurrencyGate:
    """Counts how many requests of one kind are on the wire at once.

    Each one lingers (in real time, outside the fake's lock) so that
    requests sent together meet; requests sent one after another never do.
    """

    def __init__(self, action: str, linger: float = 0.3) -> None:
        self.action = action
        self.linger = linger
        self.now = 0
        self.peak = 0
        self.seen = 0
        self._lock = threading.Lock()

    def __call__(self, method, url, body):
        if method != 'POST' or not isinstance(body, dict) or \
                self.action not in body:
            return
        with self._lock:
            self.now += 1
            self.seen += 1
            self.peak = max(self.peak, self.now)
        threading.Event().wait(self.linger)
        with self._lock:
            self.now -= 1


class TestConcurrentActions(base.UnkindNovaTestCase):

    def _drain(self, action_arg, action):
        # Six servers, all submitted at once: their migrations take the
        # same time, so all reach VERIFY_RESIZE in the same round.
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(6)]
        gate = ConcurrencyGate(action)
        fake.gate = gate
        rc, rows = self.batch('--source-host', 'compute1', action_arg,
                              '--max-parallel', '6', '--max-per-source', '6',
                              '--max-per-destination', '6',
                              '--state-file', self.path)
        return fake, ids, gate, rc, rows

    def test_confirms_of_one_round_go_out_together(self):
        """Six migrations reach VERIFY_RESIZE in the same poll round.

        Sent one after another, no two confirms are ever on the wire at
        once (peak 1) and the last waits for five answers.
        """
        fake, ids, gate, rc, rows = self._drain('--confirm', 'confirmResize')
        self.assertEqual(0, rc)
        for sid in ids:
            self.assertResult('confirmed', rows[sid])
            self.assertEqual(1, len(fake.records(sid)))
        self.assertEqual(6, gate.seen)
        self.assertGreaterEqual(gate.peak, 3)

    def test_reverts_of_one_round_go_out_together(self):
        # A verify command that fails: each server is reverted.
        fake, ids, gate, rc, rows = self._drain(
            '--verify-command=false', 'revertResize')
        for sid in ids:
            self.assertResult('reverted', rows[sid])
        self.assertEqual(6, gate.seen)
        self.assertGreaterEqual(gate.peak, 3)

    def test_a_refused_confirm_among_concurrent_ones(self):
        """One confirm of the round is refused (409): the rest stand."""
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(4)]
        fake.gate = ConcurrencyGate('confirmResize', linger=0.1)
        fake.fail_request(action='confirmResize', status=409, times=1)
        rc, rows = self.batch('--source-host', 'compute1', '--confirm',
                              '--max-parallel', '4', '--max-per-source', '4',
                              '--max-per-destination', '4',
                              '--state-file', self.path)
        self.assertEqual(0, rc)
        for sid in ids:
            self.assertResult('confirmed', rows[sid])
            self.assertEqual(1, len(fake.records(sid)))
