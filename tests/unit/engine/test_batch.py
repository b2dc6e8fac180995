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

"""The batch runner against the fake Nova, through the real gateway."""

import os
import time

import fixtures
import testtools

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import plan
from osc_migrate_plus import gateway as gw
from osc_migrate_plus import model
from osc_migrate_plus.v1 import batch as batch_cmd
from tests.unit import fakenova

R = model.Result
# The fake's client_time patches time.sleep: waiting on a real process
# needs the real one.
real_sleep = time.sleep


class Reporter:
    def __init__(self):
        self.events = []
        self.infos = []

    def info(self, text):
        self.infos.append(text)

    def event(self, entry, text):
        self.events.append((entry.server_id, text))

    def status(self, entries, elapsed):
        pass


class FakeNovaTestCase(testtools.TestCase):
    """The fake Nova, the client on its clock, the real gateway."""

    header = {'options': {}}

    def setUp(self):
        super().setUp()
        self.nova = fakenova.FakeNova()
        self.useFixture(self.nova.client_time())
        self.gateway = gw.NovaGateway(self.nova.proxy)
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'j')
        self.journal = jrn.Journal.create(self.path, self.header)
        self.addCleanup(self.journal.close)


class RunnerTestCase(FakeNovaTestCase):

    def servers(self, n, status='ACTIVE', host='compute1'):
        return [self.nova.add_server('vm%d' % i, host, status)
                for i in range(n)]

    def run_batch(self, sids, mode='cold', stop_when=None, planned=None,
                  **options):
        options.setdefault('interval', 1)
        opts = batch.Options(mode=mode, **options)
        items = [plan.preflight(self.gateway.get_server(s), mode)
                 for s in sids]
        if planned is not None:
            planned()  # what changes in Nova between plan and run
        self.journal.write({'type': 'plan',
                            'servers': [i.to_journal() for i in items]})
        entries = [batch.new_entry(i, opts) for i in items]
        self.reporter = Reporter()
        self.runner = batch.Runner(self.gateway, self.journal, self.reporter,
                                   opts)
        if stop_when is not None:
            def stop():
                if stop_when():
                    self.runner.stop_requested = True
            self.nova.sleep_hooks.append(stop)
        for entry in entries:
            if entry.item.verdict == plan.ADOPT:
                self.runner.adopt(entry)
        completed = self.runner.run(entries)
        return completed, {e.server_id: e for e in entries}

    def requests(self, since=0.0):
        """What the client asked, in order, as short strings."""
        out = []
        for when, method, path, extra in self.nova.requests:
            if when < since:
                continue
            if method == 'POST':
                out.append('POST %s' % extra)
            elif path == '/os-migrations':
                out.append('GET os-migrations %s' % (
                    'changes-since' if 'changes-since' in extra
                    else 'of host' if 'host' in extra else 'of one'))
            elif path == '/servers/detail':
                out.append('GET servers')
            elif path.startswith('/servers/'):
                out.append('%s server' % method)
            else:
                out.append('%s %s' % (method, path.split('/')[1]))
        return out

    def most_in_flight(self):
        """The most migrations copying at once, as the runner counts them.

        From a submission to its confirm.
        """
        most = count = 0
        for _, method, _, extra in self.nova.requests:
            if method == 'POST' and extra == 'migrate':
                count += 1
                most = max(most, count)
            elif method == 'POST' and extra == 'confirmResize':
                count -= 1
        return most


class TestAdmission(RunnerTestCase):

    def test_cold_confirm_all_within_limits(self):
        sids = self.servers(6)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=3,
                                     max_per_source=2)
        self.assertTrue(ok)
        self.assertEqual({R.CONFIRMED}, {e.result for e in entries.values()})
        for sid in sids:
            [record] = self.nova.records(sid)
            self.assertEqual('confirmed', record['status'])
            self.assertNotEqual('compute1', self.nova.server(sid)[
                'OS-EXT-SRV-ATTR:host'])
        self.assertEqual(2, self.most_in_flight())  # per-source binds first
        self.assertEqual(0, batch_cmd.batch_exit_code(list(entries.values()),
                                                      ok))

    def test_a_slot_frees_when_the_confirm_is_sent_and_is_refilled_at_once(
            self):
        sids = self.servers(3)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=1,
                                     max_per_source=1, max_per_destination=1)
        self.assertEqual({R.CONFIRMED}, {e.result for e in entries.values()})
        self.assertEqual(1, self.most_in_flight())
        r = self.requests()
        confirms = [i for i, req in enumerate(r)
                    if req == 'POST confirmResize']
        for n in range(2):
            # The next server goes right after a confirm, in the same turn
            # (its baseline came with the host's listing).
            self.assertEqual(['POST migrate'],
                             r[confirms[n] + 1:confirms[n] + 2])

    def test_poll_cost_is_independent_of_inflight_count(self):
        for n in (1, 10):
            self.nova = fakenova.FakeNova()
            self.useFixture(self.nova.client_time())
            self.gateway = gw.NovaGateway(self.nova.proxy)
            sids = self.servers(n)
            self.run_batch(sids, max_parallel=n, max_per_source=n,
                           max_per_destination=n)
            r = [q for q in self.requests() if q != 'GET server']  # plan
            polls = r.count('GET os-migrations changes-since')
            # The servers only in the rounds where one may tell more.
            self.assertLessEqual(r.count('GET servers'), polls)
            self.assertGreater(r.count('GET servers'), 0)
            per_server = [q for q in r if q not in (
                'GET os-migrations changes-since', 'GET servers',
                'POST migrate')]
            # One read of the source host's records gives every server its
            # baseline; nothing per server, nothing per server per poll.
            self.assertEqual(['GET os-migrations of host'], per_server)

    def test_destinations_being_picked_count_on_the_busiest_host(self):
        """--max-per-destination without --host: Nova picks destinations.

        A migration whose destination is not known yet (the scheduler is
        slow: its record comes 3 s after the 202) may land on the busiest
        host, so the limit holds back what could take that host past it,
        and no more. It used to hold the whole batch to one host's limit
        while any destination was being picked (4 in flight at most here).
        """
        self.nova = fakenova.FakeNova(hosts=4)
        self.useFixture(self.nova.client_time())
        self.gateway = gw.NovaGateway(self.nova.proxy)
        self.nova.timing['cold_duration'] = 3
        self.nova.timing['record_delay'] = 3
        sids = self.servers(12)
        busiest = []

        def look():
            per_dest = {}
            for e in self.runner._entries.values():
                if e.state == batch.State.INFLIGHT and e.follow.sent is None \
                        and e.destination:
                    per_dest[e.destination] = per_dest.get(
                        e.destination, 0) + 1
            busiest.append(max(per_dest.values(), default=0))
        self.nova.sleep_hooks.append(look)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=8,
                                     max_per_source=8, max_per_destination=3)
        self.assertEqual({R.CONFIRMED}, {e.result for e in entries.values()})
        self.assertLessEqual(max(busiest), 3)
        # More than one host's limit at once, over three destinations.
        self.assertGreaterEqual(self.most_in_flight(), 5)

    def test_without_confirm_left_in_verify_resize(self):
        sids = self.servers(2)
        ok, entries = self.run_batch(sids)
        self.assertEqual({R.MIGRATED}, {e.result for e in entries.values()})
        self.assertIn('left in VERIFY_RESIZE', entries[sids[0]].message)
        self.assertEqual(0, self.nova.count('POST', 'confirmResize'))

    def test_auto_mode_live_and_cold(self):
        sids = self.servers(2) + self.servers(1, 'SHUTOFF')
        ok, entries = self.run_batch(sids, 'auto', confirm=True,
                                     max_parallel=5, max_per_source=5,
                                     max_per_destination=5)
        got = [(e.follow.kind, e.result) for e in entries.values()]
        self.assertEqual([(model.Kind.LIVE, R.MIGRATED)] * 2 +
                         [(model.Kind.COLD, R.CONFIRMED)], got)
        self.assertEqual('SHUTOFF', self.nova.server(sids[2])['status'])

    def test_failure_reason_and_max_failures(self):
        sids = self.servers(6)
        self.nova.fail_migrations(servers=sids[:2],
                                  message='No valid host was found.')
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=2,
                                     max_per_source=2, max_failures=1)
        results = [entries[s].result for s in sids]
        self.assertEqual([R.FAILED, R.FAILED] + [R.NOT_STARTED] * 4,
                         results)
        self.assertIn('No valid host was found.', entries[sids[0]].message)
        for sid in sids[2:]:
            self.assertEqual([], self.nova.records(sid))
        self.assertEqual(1, batch_cmd.batch_exit_code(
            list(entries.values()), ok))


class TestSubmissions(RunnerTestCase):

    def busy(self, sid, task_state, until):
        """The server has a task of someone else's until then."""
        server = self.nova._servers[sid]
        server['task_state'] = task_state
        self.nova.at(until, lambda: server.update(task_state=None))

    def test_retry_policy(self):
        sids = self.servers(3)

        def planned():
            # 409 task_state, over before the first retry: retried once.
            self.busy(sids[0], 'rebooting', self.nova.now + 0.5)
            self.nova.fail_request('migrate', path=sids[1], status=403)
            self.nova._servers[sids[2]]['vm_state'] = 'paused'  # vm_state
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=3,
                                     max_per_source=3, max_per_destination=3,
                                     planned=planned)
        got = {s: (entries[s].result, entries[s].attempts) for s in sids}
        self.assertEqual((R.CONFIRMED, 2), got[sids[0]])
        self.assertEqual((R.FAILED, 1), got[sids[1]])
        self.assertEqual((R.FAILED, 1), got[sids[2]])
        self.assertIn('vm_state paused', entries[sids[2]].message)
        self.assertEqual(4, self.nova.count('POST', 'migrate'))

    def test_the_plan_is_checked_again_at_each_turn(self):
        # Planned while ACTIVE (live, in auto mode); stopped by its owner
        # before its turn: migrated cold, its SHUTOFF kept. Another
        # shelved meanwhile: skipped with the reason, no request sent.
        sids = self.servers(3)

        def planned():
            stopped, shelved = sids[1], sids[2]
            self.nova._servers[stopped]['vm_state'] = 'stopped'
            self.nova._save(self.nova._servers[shelved],
                            vm_state='shelved_offloaded', host=None)
            self.nova._save(self.nova._servers[stopped], task_state=None)
        ok, entries = self.run_batch(sids, 'auto', confirm=True,
                                     max_parallel=1, planned=planned)
        got = [(entries[s].follow.kind, entries[s].result) for s in sids]
        self.assertEqual([(model.Kind.LIVE, R.MIGRATED),
                          (model.Kind.COLD, R.CONFIRMED),
                          (None, R.SKIPPED)], got)
        self.assertEqual('SHUTOFF', self.nova.server(sids[1])['status'])
        self.assertIn('changed since the plan', entries[sids[2]].message)
        self.assertEqual([], self.nova.records(sids[2]))

    def test_a_lost_answer_nova_carried_out_is_followed(self):
        [sid] = self.servers(1)
        self.nova.lose_reply('migrate', apply_after=0.0, status='reset')
        ok, entries = self.run_batch([sid], confirm=True)
        self.assertEqual(R.CONFIRMED, entries[sid].result)
        self.assertEqual(1, self.nova.count('POST', 'migrate'))
        self.assertEqual(1, len(self.nova.records(sid)))
        state = jrn.replay(self.path).servers[sid]
        self.assertEqual((jrn.FINISHED, 'confirmed'), (state.state,
                                                       state.result))

    def test_a_lost_answer_applied_late_is_never_sent_twice(self):
        # Nova gets to it 30 s later; meanwhile it shows nothing.
        sids = self.servers(2)
        self.nova.timing['cold_duration'] = 60
        self.nova.lose_reply('migrate', server=sids[0], apply_after=30)
        ok, entries = self.run_batch(sids, confirm=True)
        self.assertEqual({R.CONFIRMED}, {e.result for e in entries.values()})
        self.assertEqual(2, len(self.nova.posts('migrate')))  # one each
        for sid in sids:
            self.assertEqual(1, len(self.nova.records(sid)), sid)

    def test_a_lost_answer_never_carried_out_is_sent_again_after_a_while(
            self):
        [sid] = self.servers(1)
        self.nova.lose_reply('migrate', apply_after=None)
        ok, entries = self.run_batch([sid], confirm=True)
        self.assertEqual(R.CONFIRMED, entries[sid].result)
        first, second = self.nova.posts('migrate')
        self.assertGreaterEqual(second - first, 60)
        self.assertEqual(1, len(self.nova.records(sid)))
        events = [json_event for json_event in open(self.path).read()
                  .splitlines() if '"not-taken"' in json_event]
        self.assertEqual(1, len(events))

    def test_lost_every_time_is_not_started(self):
        [sid] = self.servers(1)
        self.nova.lose_reply('migrate', apply_after=None, times=None)
        ok, entries = self.run_batch([sid], confirm=True, retries=1)
        self.assertEqual(R.NOT_STARTED, entries[sid].result)
        self.assertIn('2 migrate request(s) went unanswered',
                      entries[sid].message)
        self.assertEqual([], self.nova.records(sid))

    def test_busy_after_a_lost_answer_means_ours(self):
        # The lost request lands just before the second one: Nova's 409
        # over its task is our first request at work.
        [sid] = self.servers(1)
        self.nova.lose_reply('migrate', apply_after=None)
        self.nova.apply_lost(after=('GET', '/os-migrations'))
        ok, entries = self.run_batch([sid], confirm=True)
        self.assertEqual(R.CONFIRMED, entries[sid].result)
        self.assertEqual(1, len(self.nova.records(sid)))

    def nova_away(self, reads):
        """The first ``reads`` baseline reads find Nova unreachable."""
        self.nova.fail_reads('/os-migrations', status='reset', times=reads)

    def test_nova_unreachable_before_a_submission_delays_it(self):
        sids = self.servers(4)
        self.nova_away(5)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=4,
                                     max_per_source=4, max_per_destination=4)
        self.assertTrue(ok)
        self.assertEqual({R.CONFIRMED}, {e.result for e in entries.values()})
        # One failed read per turn, not one per waiting server: the host's
        # listing, 5 failed, then it; never one per server.
        reads = [extra.get('host') or extra.get('instance_uuid')
                 for _, m, p, extra in self.nova.requests
                 if p == '/os-migrations' and 'changes-since' not in extra]
        self.assertEqual(['compute1'] * 6, reads)

    def test_nova_unreachable_past_the_timeout_sends_nothing(self):
        sids = self.servers(2)
        self.nova.fail_reads('instance_uuid', status='reset', times=None)
        self.nova.fail_reads('/os-migrations', status='reset', times=None)
        ok, entries = self.run_batch(sids, confirm=True, timeout=30)
        results = {e.result for e in entries.values()}
        self.assertEqual({R.NOT_STARTED}, results)
        self.assertIn('Nova unreachable for 30s', entries[sids[0]].message)
        self.assertEqual(0, self.nova.count('POST', 'migrate'))

    def test_refused_read_before_a_submission_fails_that_server(self):
        sids = self.servers(2)
        # The host's listing refused, then the first server's own read.
        self.nova.fail_reads('/os-migrations', status=403, times=2)
        ok, entries = self.run_batch(sids, confirm=True)
        self.assertEqual([R.FAILED, R.CONFIRMED],
                         [entries[s].result for s in sids])
        self.assertIn('HTTP 403', entries[sids[0]].message)


class TestFollowing(RunnerTestCase):

    def test_client_clock_off_by_an_hour_either_way(self):
        for offset in (-3600, 3600):
            self.nova.nova_offset = offset
            sids = self.servers(3)
            self.nova.timing['cold_duration'] = 10
            ok, entries = self.run_batch(sids, confirm=True)
            self.assertEqual({R.CONFIRMED},
                             {e.result for e in entries.values()}, offset)
            # Found by the bulk reads, not by waiting to read each one.
            self.assertLess(self.nova.now, 200)

    def test_nova_confirming_first_is_a_success(self):
        sids = self.servers(2)

        def auto_confirm():
            for sid in sids:
                if self.nova.server(sid)['status'] == 'VERIFY_RESIZE':
                    self.nova.auto_confirm(sid)
        self.nova.sleep_hooks.append(auto_confirm)
        ok, entries = self.run_batch(sids, confirm=True, max_parallel=2)
        self.assertEqual({R.CONFIRMED}, {e.result for e in entries.values()})

    def test_deleted_while_migrating(self):
        sids = self.servers(2)
        self.nova.timing['cold_duration'] = 60
        self.nova.delete_server(sids[0], at=5)
        ok, entries = self.run_batch(sids, confirm=True)
        self.assertEqual([R.DELETED, R.CONFIRMED],
                         [entries[s].result for s in sids])
        self.assertEqual(0, batch_cmd.batch_exit_code(list(entries.values()),
                                                      ok))

    def test_a_refusal_of_the_bulk_read_ends_following_with_a_report(self):
        # Policy changed mid-run: nothing left to follow with. What is in
        # flight is journaled for --resume, not dropped.
        sids = self.servers(2)
        self.nova.timing['cold_duration'] = 30
        self.nova.fail_reads('/servers/detail', status=403, times=None)
        ok, entries = self.run_batch(sids, confirm=True)
        self.assertFalse(ok)
        self.assertEqual(403, self.runner.fatal.status)
        results = {e.result for e in entries.values()}
        self.assertEqual({R.INTERRUPTED}, results)
        self.assertIn("following stopped by Nova's answer: HTTP 403",
                      entries[sids[0]].message)
        states = {s.state for s in jrn.replay(self.path).servers.values()}
        self.assertEqual({jrn.SUBMITTED}, states)

    def test_accepted_then_nothing_fails_with_novas_reason(self):
        [sid] = self.servers(1)
        self.nova.fail_before_record(sid)
        ok, entries = self.run_batch([sid], confirm=True)
        self.assertEqual(R.FAILED, entries[sid].result)
        self.assertIn('No valid host was found', entries[sid].message)
        self.assertLess(self.nova.now, 200)

    def test_skipped_and_timeout_exit_codes(self):
        sids = self.servers(1) + self.servers(1, 'ERROR')
        self.nova.timing['cold_duration'] = 1000
        ok, entries = self.run_batch(sids, timeout=5)
        self.assertEqual([R.TIMEOUT, R.SKIPPED],
                         [entries[s].result for s in sids])
        self.assertEqual(1, batch_cmd.batch_exit_code(
            list(entries.values()), ok))
        ok, entries = self.run_batch(self.servers(1), timeout=5)
        self.assertEqual(3, batch_cmd.batch_exit_code(
            list(entries.values()), ok))

    def test_stop_request_records_inflight_and_resumes(self):
        sids = self.servers(4)
        self.nova.timing['cold_duration'] = 10
        ok, entries = self.run_batch(
            sids, confirm=True, max_parallel=2, max_per_source=2,
            stop_when=lambda: self.nova.count('POST', 'migrate') >= 2)
        self.assertFalse(ok)
        self.assertEqual(130, batch_cmd.batch_exit_code(
            list(entries.values()), ok))
        self.assertEqual(['interrupted', 'interrupted', 'not-started',
                          'not-started'],
                         sorted(e.result.value for e in entries.values()))
        states = sorted(s.state for s in jrn.replay(
            self.path).servers.values())
        self.assertEqual([jrn.PLANNED, jrn.PLANNED, jrn.SUBMITTED,
                          jrn.SUBMITTED], states)


class TestVerify(RunnerTestCase):

    def setUp(self):
        super().setUp()
        # The command runs for real: give it real time between polls.
        self.useFixture(self.nova.client_time(real_sleep=0.01))

    def test_failure_reverts(self):
        [sid] = self.servers(1)
        ok, entries = self.run_batch(
            [sid], confirm=True,
            verify_command='echo "checked $OSC_MIGRATE_SERVER_NAME" '
                           '"$OSC_MIGRATE_DEST_HOST"; exit 3')
        entry = entries[sid]
        self.assertEqual(R.REVERTED, entry.result)
        self.assertIn('verify command exited 3: checked vm0 compute',
                      entry.message)
        self.assertEqual(1, self.nova.count('POST', 'revertResize'))
        self.assertEqual(0, self.nova.count('POST', 'confirmResize'))
        self.assertEqual(1, batch_cmd.batch_exit_code([entry], ok))

    def test_timeout_reverts_and_kills_it_all(self):
        pidfile = os.path.join(self.useFixture(fixtures.TempDir()).path,
                               'pid')
        [sid] = self.servers(1)
        self.useFixture(self.nova.client_time(real_sleep=0.0005))
        ok, entries = self.run_batch(
            [sid], confirm=True, timeout=0,
            verify_command='sleep 60 >/dev/null 2>&1 & echo $! > %s; wait'
            % pidfile)
        self.assertEqual(R.REVERTED, entries[sid].result)
        self.assertIn('verify command timed out after 300s',
                      entries[sid].message)
        self.assert_gone(pidfile)

    def assert_gone(self, pidfile):
        for _ in range(50):
            if os.path.exists(pidfile) and open(pidfile).read().strip():
                break
            real_sleep(0.1)
        with open(pidfile) as f:
            child = int(f.read())
        for _ in range(50):
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return
            real_sleep(0.1)
        self.fail('verify command child %d still running' % child)

    def test_still_running_when_the_entry_ends_is_killed(self):
        pidfile = os.path.join(self.useFixture(fixtures.TempDir()).path,
                               'pid')
        [sid] = self.servers(1)
        ok, entries = self.run_batch(
            [sid], confirm=True, timeout=30,
            verify_command='sleep 600 >/dev/null 2>&1 & echo $! > %s; wait'
            % pidfile)
        self.assertEqual(R.TIMEOUT, entries[sid].result)
        self.assert_gone(pidfile)

    def test_live_verify_failure_fails(self):
        [sid] = self.servers(1)
        ok, entries = self.run_batch([sid], 'live', verify_command='exit 1')
        self.assertEqual(R.FAILED, entries[sid].result)
        self.assertIn('verify command exited 1', entries[sid].message)
        self.assertNotEqual('compute1', self.nova.server(sid)[
            'OS-EXT-SRV-ATTR:host'])  # it moved

    def test_names_reach_it_only_through_its_environment(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        sid = self.nova.add_server('$(touch %s/pwned)' % tmp)
        ok, entries = self.run_batch(
            [sid], confirm=True,
            verify_command='test -n "$OSC_MIGRATE_SERVER_NAME"')
        self.assertEqual(R.CONFIRMED, entries[sid].result)
        self.assertFalse(os.path.exists(os.path.join(tmp, 'pwned')))
