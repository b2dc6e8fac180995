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

"""A review of the migrate requests sent together: a bad night's turns.

More servers chosen in one turn than requests go out at once (8): the
rest wait in the queue of the sending threads. A stop (Ctrl-C once, or
twice) must keep them from going out after it. On the unkind fake Nova,
through the real command and gateway.
"""

import json
import os
import signal
import threading

from osc_migrate_plus.engine import batch as engine
from osc_migrate_plus.engine import journal as jrn
from tests.unit.v1 import test_efficiency as eff
from tests.unit.v1 import test_report

TURN = engine.SEND_WORKERS + 4


def _is_migrate(method, body):
    return eff.is_action(method, body, 'migrate')


def _sigint():
    os.kill(os.getpid(), signal.SIGINT)


class FirstMigrate:
    """Counts migrate requests; the first does ``first`` (the Ctrl-Cs).

    The others linger (real time) so that requests sent together meet.
    """

    def __init__(self, first, linger=0.3):
        self.first = first
        self.linger = linger
        self.seen = []
        self._lock = threading.Lock()

    def __call__(self, method, url, body):
        if not _is_migrate(method, body):
            return
        with self._lock:
            self.seen.append(url)
            first = len(self.seen) == 1
        if first:
            self.first()
        else:
            threading.Event().wait(self.linger)


class TestStopWhileTheTurnGoesOut(test_report.ReportTestCase,
                                  eff.EfficiencyTestCase):

    def _servers(self, fake):
        # Two sources: each destination host takes at most TURN.
        return [fake.add_server('vm%d' % n) for n in range(TURN)]

    def test_ctrl_c_once_sends_no_request_after_it(self):
        """Ctrl-C once while the first 8 of 12 requests are out.

        "No new submissions": the 4 still queued in the turn never go
        out; the journal says so (a resume plans them again, with no
        wait for a lost answer), and a resume moves every server once.
        """
        fake = self.cloud()
        ids = self._servers(fake)

        def first():
            _sigint()
            threading.Event().wait(0.3)  # real time: the others meet it
        fake.gate = FirstMigrate(first)
        rc, rows = self.drain(TURN, '--confirm')
        self.assertEqual(130, rc)
        sent = fake.count('POST', 'migrate')
        self.assertLessEqual(sent, engine.SEND_WORKERS)
        unsent = [sid for sid in ids if rows[sid]['Result'] == 'not-started']
        self.assertEqual(TURN - sent, len(unsent))
        replayed = jrn.replay(self.path).servers
        for sid in unsent:
            self.assertEqual(jrn.PLANNED, replayed[sid].state)
            self.assertEqual(0, rows[sid]['Attempts'])
        # The report tells the same from the journal.
        rrc, rebuilt, _ = self.rows(self.path)
        self.assertEqual(130, rrc)
        self.assertSameAsBatch(rows, rebuilt)
        fake.gate = None
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertEqual(TURN, fake.count('POST', 'migrate'))

    def test_ctrl_c_twice_sends_no_request_after_it(self):
        """Ctrl-C twice while one request of 12 hangs in Nova.

        The batch quits at once; the sending threads, left behind, must
        not send what was still queued in the turn. A resume moves every
        server once.
        """
        fake = self.cloud()
        ids = self._servers(fake)
        release = threading.Event()
        self.addCleanup(release.set)

        def first():
            _sigint()
            threading.Event().wait(0.2)  # real time
            _sigint()
            release.wait(5)
        gate = FirstMigrate(first)
        fake.gate = gate
        self.assertRaises(KeyboardInterrupt, self.drain, TURN, '--confirm')
        release.set()
        # What the threads left behind still do (real time).
        threading.Event().wait(1.5)
        self.assertLessEqual(len(gate.seen), engine.SEND_WORKERS)
        interrupted = {r['server'] for r in self.journal_records()
                       if r.get('event') == 'interrupted'}
        replayed = jrn.replay(self.path).servers
        for sid in ids:
            if sid not in interrupted:
                # Never sent: planned again, not looked for.
                self.assertEqual(jrn.PLANNED, replayed[sid].state, sid)
        # The report of that journal: what was out is interrupted (its
        # migration may go on in Nova), the rest not started.
        rrc, rebuilt, _ = self.rows(self.path)
        self.assertEqual(130, rrc)
        for sid in ids:
            self.assertEqual('interrupted' if sid in interrupted
                             else 'not-started', rebuilt[sid]['Result'])
        self.assertTrue(interrupted)
        fake.gate = None
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertEqual(TURN, fake.count('POST', 'migrate'))


class InFlight:
    """What truly holds a slot in Nova: migrate taken, confirm not yet.

    Sampled at every request Nova works on (under its lock), lost ones
    applied late included. Per source (the server's host when taken) and
    per destination (the host the scheduler claimed), and the peaks.
    """

    def __init__(self, fake):
        self.fake = fake
        self.held = {}  # server: source
        self.peak = 0
        self.peak_source = 0
        self.peak_dest = 0
        route = fake._route

        def traced(req):
            status, body = route(req)
            sid = req.server_id
            if req.action in ('migrate', 'os-migrateLive'):
                self.held[sid] = fake._servers[sid]['host']
            elif req.action in ('confirmResize', 'revertResize'):
                self.held.pop(sid, None)
            self.sample()
            return status, body
        fake._route = traced

    def sample(self):
        sources, dests = {}, {}
        for sid, source in self.held.items():
            sources[source] = sources.get(source, 0) + 1
            record = next((m for m in self.fake._migrations
                           if m['instance_uuid'] == sid
                           and m['status'] != 'confirmed'), None)
            dest = record and (record.get('dest_compute')
                               or record.get('claimed'))
            if dest:
                dests[dest] = dests.get(dest, 0) + 1
        self.peak = max(self.peak, len(self.held))
        self.peak_source = max([self.peak_source] + list(sources.values()))
        self.peak_dest = max([self.peak_dest] + list(dests.values()))


class TestLimitsWithRequestsTogether(eff.EfficiencyTestCase):
    """Limits hold for what is truly in flight in Nova, on a bad night."""

    def _night(self, fake, ids):
        fake.gate = eff.ConcurrencyGate('migrate', linger=0.05)
        fake.lose_reply('migrate', server=ids[0], apply_after=3.0)
        fake.lose_reply('migrate', server=ids[3], apply_after=None)
        fake.fail_request(action='migrate', status=503, times=2)
        fake.fail_request(action='migrate', status='reset', times=1)

    def test_fixed_limits(self):
        fake = self.cloud(hosts=4)
        ids = [fake.add_server('a%d' % n) for n in range(6)]
        ids += [fake.add_server('b%d' % n, host='compute2')
                for n in range(6)]
        self._night(fake, ids)
        seen = InFlight(fake)
        # Named (not drained: one source's servers may land on the other).
        rc, rows = self.batch(*ids, '--confirm', '--max-parallel', '4',
                              '--max-per-source', '2',
                              '--max-per-destination', '3',
                              '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertGreaterEqual(fake.gate.peak, 2)
        self.assertEqual(4, seen.peak)
        self.assertEqual(2, seen.peak_source)
        self.assertLessEqual(seen.peak_dest, 3)

    def test_auto_never_past_its_ceiling(self):
        fake = self.cloud(hosts=4)
        ids = [fake.add_server('a%d' % n) for n in range(8)]
        ids += [fake.add_server('b%d' % n, host='compute2')
                for n in range(8)]
        self._night(fake, ids)
        seen = InFlight(fake)
        rc, rows = self.batch(*ids, '--confirm', '--max-parallel',
                              'auto', '--max-per-source', '3',
                              '--max-per-destination', '6',
                              '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertLessEqual(seen.peak, 6)
        self.assertLessEqual(seen.peak_source, 3)


class TestCrashMidSend(eff.EfficiencyTestCase):

    def test_resume_from_a_journal_of_requests_all_out(self):
        """The client dies while four requests are out (SIGKILL, power).

        The journal then holds four 'submitting' and nothing after. Nova
        took two at once, one late (its answer lost), and never got the
        fourth (lost before Nova): a resume follows the three, sends the
        fourth again once Nova shows nothing of it, each moved once.
        """
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(4)]
        fake.lose_reply('migrate', server=ids[2], apply_after=20.0)
        fake.lose_reply('migrate', server=ids[3], apply_after=None)
        release = threading.Event()
        self.addCleanup(release.set)
        lock = threading.Lock()
        out = []
        crash = []

        def gate(method, url, body):
            if not _is_migrate(method, body):
                return
            with lock:
                out.append(url)
                first = len(out) == 1
            if not first:
                return
            for _ in range(100):  # real time: all four out
                if len(out) == 4:
                    break
                threading.Event().wait(0.02)
            with open(self.path) as f:
                crash.append(f.read())  # what a crash leaves
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(0.2)
            os.kill(os.getpid(), signal.SIGINT)
            release.wait(5)
        fake.gate = gate
        self.assertRaises(KeyboardInterrupt, self.drain, 4, '--confirm')
        release.set()
        for _ in range(100):  # the hung one reaches Nova (real time)
            if fake.count('POST', 'migrate') == 4:
                break
            threading.Event().wait(0.05)
        fake.gate = None
        self.assertEqual(4, crash[0].count('"submitting"'))
        self.assertEqual(0, crash[0].count('"submitted"'))
        with open(self.path, 'w') as f:
            f.write(crash[0])
        replayed = jrn.replay(self.path).servers
        self.assertEqual([jrn.SUBMITTING] * 4,
                         [replayed[sid].state for sid in ids])
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertEqual(5, fake.count('POST', 'migrate'))


class TestSomeoneElseInTheTurn(eff.EfficiencyTestCase):

    def test_started_elsewhere_between_the_check_and_the_send(self):
        """Someone starts migrating one server of the turn meanwhile.

        The checks of the turn all come before its requests: ours reaches
        Nova after theirs (409, task_state). Theirs is followed; the
        server is never sent again, and moved once.
        """
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(4)]
        fake.gate = eff.ConcurrencyGate('migrate', linger=0.05)
        gate = fake.gate
        taken = []

        def meanwhile(method, url, body):
            if _is_migrate(method, body) and ids[1] in url and not taken:
                taken.append(url)
                with fake._lock:
                    fake.start_elsewhere(ids[1])
            gate(method, url, body)
        fake.gate = meanwhile
        rc, rows = self.drain(4, '--confirm')
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
        self.assertEqual(4, fake.count('POST', 'migrate'))
        self.assertEqual(1, len(fake.late))  # theirs, applied by Nova
        # Ours came second: refused over the task state.
        with open(self.path) as f:
            refused = [json.loads(line) for line in f
                       if '"submit-failed"' in line]
        self.assertEqual([ids[1]], [r['server'] for r in refused])
        self.assertIn('task_state', refused[0]['message'])
