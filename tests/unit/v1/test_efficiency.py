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

import json
import threading

from tests.unit.v1 import test_unkind_nova as base


def is_action(method, body, action):
    """A POST of this server action (``migrate``, ``confirmResize``...)."""
    return method == 'POST' and isinstance(body, dict) and action in body


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
        if not is_action(method, body, self.action):
            return
        with self._lock:
            self.now += 1
            self.seen += 1
            self.peak = max(self.peak, self.now)
        threading.Event().wait(self.linger)
        with self._lock:
            self.now -= 1


class EfficiencyTestCase(base.UnkindNovaTestCase):

    def journal_records(self):
        with open(self.path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def drain(self, width, *args):
        """batch --source-host compute1, every limit at ``width``."""
        n = str(width)
        return self.batch('--source-host', 'compute1', *args,
                          '--max-parallel', n, '--max-per-source', n,
                          '--max-per-destination', n,
                          '--state-file', self.path)

    def assertMovedOnce(self, fake, ids, rows):  # noqa: N802
        """Each confirmed, with one migration record: moved once."""
        for sid in ids:
            self.assertResult('confirmed', rows[sid])
            self.assertEqual(1, len(fake.records(sid)))


class TestConcurrentActions(EfficiencyTestCase):

    def _drain(self, action_arg, action):
        # Six servers, all submitted at once: their migrations take the
        # same time, so all reach VERIFY_RESIZE in the same round.
        fake = self.cloud()
        ids = [fake.add_server('vm%d' % n) for n in range(6)]
        gate = ConcurrencyGate(action)
        fake.gate = gate
        rc, rows = self.drain(6, action_arg)
        return fake, ids, gate, rc, rows

    def test_confirms_of_one_round_go_out_together(self):
        """Six migrations reach VERIFY_RESIZE in the same poll round.

        Sent one after another, no two confirms are ever on the wire at
        once (peak 1) and the last waits for five answers.
        """
        fake, ids, gate, rc, rows = self._drain('--confirm', 'confirmResize')
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)
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
        rc, rows = self.drain(4, '--confirm')
        self.assertEqual(0, rc)
        self.assertMovedOnce(fake, ids, rows)


class TestBaselineFromTheHost(EfficiencyTestCase):
    """One read of the source host's records instead of one per server."""

    def test_one_read_of_the_host_serves_every_server(self):
        """However long the host's history: one record, one request.

        Nova's pages here hold 2 records; the host has 8 from before.
        """
        fake = self.cloud(max_limit=2)
        ids = [fake.add_server('vm%d' % n) for n in range(5)]
        for sid in ids:
            fake.moved_before(sid, 'compute2', 'compute1')
        for sid in ids[:3]:
            fake.moved_before(sid, 'compute1', 'compute3')  # and back
        rc, rows = self.drain(5, '--confirm')
        self.assertEqual(0, rc)
        for sid in ids:
            self.assertResult('confirmed', rows[sid])
            self.assertEqual(3 if sid in ids[:3] else 2,
                             len(fake.records(sid)))
        reads = [extra for _, m, path, extra in fake.requests
                 if m == 'GET' and path == '/os-migrations'
                 and ('host' in extra or 'instance_uuid' in extra)]
        self.assertEqual([], [r for r in reads if 'instance_uuid' in r])
        # The baseline before submitting: one record. Then the host
        # check's listing at the end, every page: 7 of up to 2 records
        # (the 8 from before and the 5 of this batch).
        self.assertEqual({'host': 'compute1', 'limit': 1}, reads[0])
        self.assertEqual([{'host': 'compute1'}] * 7,
                         [{k: v for k, v in r.items() if k == 'host'}
                          for r in reads[1:]])

    def test_a_record_from_before_the_server_came_is_never_ours(self):
        """Its newest record is elsewhere, newer than any of this host's.

        The migrate request's answer is lost and Nova never carries it
        out: the direct look after the wait must not take the old record
        (its ID above the host's baseline) for ours; the request is sent
        again and the server migrated once.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.moved_before(sid, 'compute2', 'compute3')  # then unshelved
        fake.advance(300)
        fake.lose_reply('migrate', apply_after=None)
        rc, rows = self.batch('--source-host', 'compute1', '--confirm',
                              '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertResult('confirmed', rows[sid])
        self.assertEqual(2, fake.count('POST', 'migrate'))
        self.assertEqual(2, len(fake.records(sid)))  # the old one, ours

    def test_someone_elses_failed_migration_after_the_listing(self):
        """Someone else's migration of a queued server fails meanwhile.

        Its record comes after the host's listing: the bulk reads showed
        it, so it is older than ours, never taken for ours when our
        request's answer is lost and Nova shows nothing of ours.
        """
        fake = self.cloud()
        ids = [fake.add_server('vm1'), fake.add_server('vm2')]
        fake.timing['cold_duration'] = 20
        fake.fail_migrations(to=('compute3',))
        queued = []

        def meanwhile():
            # While the first migrates, someone sends the other to
            # compute3, where it fails; ours of it will show late.
            posted = fake.requests[-1][2]
            queued.extend(s for s in ids if s not in posted)
            fake.start_elsewhere(queued[0], host='compute3',
                                 at=fake.now + 1)
            # Ours of it: the answer lost, never carried out; the look
            # after the wait sees only the failed one.
            fake.lose_reply('migrate', server=queued[0], apply_after=None)
        fake._after.append((('POST', '/action'), meanwhile))
        rc, rows = self.batch('--source-host', 'compute1', '--confirm',
                              '--host', 'compute2', '--max-parallel', '1',
                              '--state-file', self.path)
        for sid in ids:
            self.assertResult('confirmed', rows[sid])
        self.assertEqual(['confirmed', 'error'],
                         [r['status'] for r in fake.records(queued[0])])
        self.assertEqual(3, fake.count('POST', 'migrate'))


class TestNamedServers(base.UnkindNovaTestCase):
    """Servers named by ID: one read per host, not one per server."""

    def reads(self, fake):
        one = [p for _, m, p, extra in fake.requests
               if m == 'GET' and p.startswith('/servers/')
               and p != '/servers/detail']
        listed = [extra for _, m, p, extra in fake.requests
                  if m == 'GET' and p == '/servers/detail']
        return one, listed

    def test_ids_on_two_hosts_and_a_name(self):
        fake = self.cloud()
        here = [fake.add_server('a%d' % n) for n in range(10)]
        there = [fake.add_server('b%d' % n, host='compute2')
                 for n in range(2)]
        fake.add_server('by-name', host='compute2')
        named = here + there + ['by-name']
        rc, rows = self.batch(*named, '--dry-run')
        self.assertEqual(0, rc)
        self.assertEqual(set(here + there) | {
            s for s in fake._servers if fake._servers[s]['name'] ==
            'by-name'}, set(rows))
        one, listed = self.reads(fake)
        # One read and one listing per host; the name, looked up alone.
        self.assertEqual(2, len(one))
        self.assertEqual(['compute1', 'compute2'],
                         [x.get('host') for x in listed if 'host' in x])
        self.assertEqual(1, len([x for x in listed if 'name' in x]))

    def test_ids_each_on_its_own_host_cost_one_read_each_plus_one(self):
        fake = self.cloud(hosts=4)
        ids = [fake.add_server('s%d' % n, host='compute%d' % (n + 1))
               for n in range(4)]
        # Every host is a source: no room is left, and that is beside
        # the point here.
        rc, rows = self.batch(*ids, '--dry-run', '--ignore-capacity')
        self.assertEqual(0, rc)
        self.assertEqual(set(ids), set(rows))
        one, listed = self.reads(fake)
        self.assertEqual(4, len(one))
        # The first listing found no other: no more listings.
        self.assertEqual(1, len([x for x in listed if 'host' in x]))

    def test_hidden_hosts_read_each_server(self):
        """Policy hides host names: no host to list, one read each."""
        fake = self.cloud(hide_hosts=True)
        ids = [fake.add_server('a%d' % n) for n in range(3)]
        rc, rows = self.batch(*ids, '--dry-run', '--ignore-capacity')
        self.assertEqual(set(ids), set(rows))
        one, listed = self.reads(fake)
        self.assertEqual(3, len(one))
        self.assertEqual([], [x for x in listed if 'host' in x])


class TestCadence(base.UnkindNovaTestCase):

    def test_polls_keep_their_cadence_whatever_a_turn_takes(self):
        """Each request takes 0.3 s: a turn takes over half a second.

        Sleeping a whole interval after each turn would space the polls
        2.6 s or more apart, and a server reaching VERIFY_RESIZE just after
        one would wait that long for its confirm.
        """
        fake = self.cloud(latency=0.3)
        for n in range(4):
            fake.add_server('vm%d' % n)
        rc, rows = self.batch('--source-host', 'compute1', '--confirm',
                              '--interval', '2', '--state-file', self.path)
        self.assertEqual(0, rc)
        polls = [t for t, m, p, extra in fake.requests
                 if p == '/os-migrations' and 'changes-since' in extra]
        gaps = sorted(b - a for a, b in zip(polls, polls[1:]))
        self.assertGreater(len(gaps), 3)
        # A turn that submits before its poll moves that poll by 0.3 s
        # a submission; the cadence holds.
        self.assertLessEqual(gaps[len(gaps) // 2], 2.0 + 1e-6, gaps)
        self.assertGreaterEqual(gaps[0], 2.0 * 0.25, gaps)
