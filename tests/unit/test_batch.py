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

"""The batch runner against a simulated Nova, with a fake clock."""

import datetime
import os
import time

import fixtures
import testtools

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import plan
from osc_migrate_plus.engine import selection
from osc_migrate_plus.engine import verdict as v
from osc_migrate_plus import gateway as gw
from osc_migrate_plus.v1 import batch as batch_cmd
from osc_migrate_plus.v1 import common


class SimNova:
    """A tiny simulated Nova for the runner.

    Cold migrations take ``steps`` polls to VERIFY_RESIZE, live ones to
    completed; confirms land at the next poll.

    Counts requests by kind, records submissions and concurrency.
    """

    def __init__(self, servers, steps=2, fail=(), submit_errors=None):
        self.servers = {s.id: s for s in servers}
        self.steps = steps
        self.fail = set(fail)
        self.submit_errors = submit_errors or {}
        self.records = {}
        self.progress = {}
        self.submissions = []
        self.requests = []
        self.max_inflight = 0
        self.max_per_source = 0
        self.next_id = 100
        self.nova_confirms = set()

    def _inflight(self):
        # Migrations copying a server: a confirm under way is not one.
        return [r for r in self.records.values()
                if r.status not in v.FINAL_STATUSES + ('finished',
                                                       'confirming')]

    def tick(self):
        for sid, record in list(self.records.items()):
            if record.status in v.FINAL_STATUSES:
                continue
            server = self.servers[sid]
            self.progress[sid] += 1
            if record.kind == v.LIVE:
                if self.progress[sid] >= self.steps:
                    self.records[sid] = record._replace_status('completed')
                    self.servers[sid] = v.Server(sid, server.name, 'ACTIVE',
                                                 None, record.dest,
                                                 server.project_id)
            elif record.status == 'confirming':
                self.records[sid] = record._replace_status('confirmed')
                self.servers[sid] = v.Server(sid, server.name, self.was[sid],
                                             None, record.dest,
                                             server.project_id)
            elif record.status == 'migrating' and \
                    self.progress[sid] >= self.steps:
                if sid in self.fail:
                    self.records[sid] = record._replace_status('error')
                    self.servers[sid] = v.Server(sid, server.name,
                                                 self.was[sid], None,
                                                 record.source,
                                                 server.project_id)
                else:
                    self.records[sid] = record._replace_status('finished')
                    self.servers[sid] = v.Server(sid, server.name,
                                                 'VERIFY_RESIZE', None,
                                                 record.dest,
                                                 server.project_id)

    # -- the gateway's interface -------------------------------------------
    def newest_migration(self, sid):
        self.requests.append('newest')
        return self.records.get(sid)

    def migrations(self, sid):
        self.requests.append('migrations')
        return [self.records[sid]] if sid in self.records else []

    def get_server(self, sid):
        self.requests.append('server')
        return self.servers[sid]

    def start_migration(self, sid, live, host=None, block_migration=None):
        self.requests.append('POST migrate')
        errors = self.submit_errors.get(sid)
        if errors:
            raise errors.pop(0)
        self.submissions.append(sid)
        server = self.servers[sid]
        self.was = getattr(self, 'was', {})
        self.was[sid] = server.status
        self.next_id += 1
        dest = host or ('c2' if self.next_id % 2 else 'c3')
        record = Rec(self.next_id, 'live-migration' if live else 'migration',
                     'running' if live else 'migrating', server.host, dest,
                     sid)
        self.records[sid] = record
        self.progress[sid] = 0
        self.servers[sid] = v.Server(sid, server.name, 'MIGRATING' if live
                                     else 'RESIZE', 'migrating' if live
                                     else 'resize_migrating', server.host,
                                     server.project_id)
        inflight = self._inflight()
        self.max_inflight = max(self.max_inflight, len(inflight))
        per_source = {}
        for r in inflight:
            per_source[r.source] = per_source.get(r.source, 0) + 1
        self.max_per_source = max(self.max_per_source,
                                  max(per_source.values()))

    def confirm(self, sid):
        self.requests.append('POST confirm')
        self.records[sid] = self.records[sid]._replace_status('confirming')
        if sid in self.nova_confirms:
            # Nova's auto-confirm got there first; ours is refused the way
            # nova 34 refuses it.
            raise gw.NovaError('HTTP 400: Instance has not been resized.',
                               400)

    def revert(self, sid):
        self.requests.append('POST revert')
        record = self.records[sid]
        self.records[sid] = record._replace_status('reverted')
        server = self.servers[sid]
        self.servers[sid] = v.Server(sid, server.name, self.was[sid], None,
                                     record.source, server.project_id)

    def migrations_since(self, since):
        self.requests.append('GET os-migrations')
        self.tick()
        return [r.migration() for r in self.records.values()]

    def list_servers(self, changes_since=None, **kw):
        self.requests.append('GET servers')
        return list(self.servers.values())

    def explain(self, server, migration):
        return 'No valid host was found.'


class Rec:
    def __init__(self, mid, type_, status, source, dest, sid):
        self.id, self.type, self.status = mid, type_, status
        self.source, self.dest, self.sid = source, dest, sid

    @property
    def kind(self):
        return v.LIVE if self.type == 'live-migration' else v.COLD

    def _replace_status(self, status):
        return Rec(self.id, self.type, status, self.source, self.dest,
                   self.sid)

    def migration(self):
        return v.Migration(self.id, 'u', self.type, self.status, self.source,
                           self.dest, None, None, self.sid)


class Reporter:
    def __init__(self):
        self.events = []

    def event(self, entry, text):
        self.events.append((entry.server_id, text))

    def status(self, entries, elapsed):
        pass


class Clock:
    now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def servers(n, status='ACTIVE', host='c1'):
    return [v.Server('s%02d' % i, 'vm%d' % i, status, None, host, 'p')
            for i in range(n)]


class TestRunner(testtools.TestCase):

    def setUp(self):
        super().setUp()
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'j')
        self.journal = jrn.Journal.create(path, {'options': {}})
        self.addCleanup(self.journal.close)
        self.path = path

    def run_batch(self, nova, items, **options):
        opts = batch.Options(interval=1, **options)
        entries = [batch.new_entry(i, opts) for i in items]
        clock = Clock()
        runner = batch.Runner(
            nova, self.journal, Reporter(), opts, clock=clock,
            sleep=clock.sleep,
            utcnow=lambda: datetime.datetime(2026, 1, 1,
                                             tzinfo=datetime.timezone.utc))
        self.runner = runner
        completed = runner.run(entries)
        return completed, entries

    def plan(self, srvs, mode='cold'):
        return [plan.preflight(s, mode) for s in srvs]

    def test_cold_confirm_all_within_limits(self):
        nova = SimNova(servers(10))
        ok, entries = self.run_batch(nova, self.plan(nova.servers.values()),
                                     confirm=True, max_parallel=3,
                                     max_per_source=2)
        self.assertTrue(ok)
        self.assertEqual({'confirmed'}, {e.result for e in entries})
        self.assertEqual(sorted(nova.servers), sorted(nova.submissions))
        self.assertLessEqual(nova.max_inflight, 2)  # per-source binds first
        self.assertEqual(2, nova.max_per_source)
        self.assertEqual(0, batch_cmd.batch_exit_code(entries, ok))

    def test_a_slot_frees_when_the_confirm_is_sent_and_is_refilled_at_once(
            self):
        nova = SimNova(servers(3))
        ok, entries = self.run_batch(nova, self.plan(nova.servers.values()),
                                     confirm=True, max_parallel=1,
                                     max_per_source=1, max_per_destination=1)
        self.assertTrue(ok)
        self.assertEqual({'confirmed'}, {e.result for e in entries})
        self.assertEqual(1, nova.max_inflight)  # never two copies at once
        # The next server is submitted right after a confirm is sent, in
        # the same turn, before the next poll.
        r = nova.requests
        for n in range(2):
            confirm = [i for i, req in enumerate(r)
                       if req == 'POST confirm'][n]
            self.assertEqual(['newest', 'POST migrate'],
                             r[confirm + 1:confirm + 3])

    def test_poll_cost_is_independent_of_inflight_count(self):
        for n in (1, 10):
            nova = SimNova(servers(n))
            self.run_batch(nova, self.plan(nova.servers.values()),
                           max_parallel=n, max_per_source=n,
                           max_per_destination=n)
            polls = nova.requests.count('GET os-migrations')
            self.assertEqual(polls, nova.requests.count('GET servers'))
            reads = [r for r in nova.requests if r not in (
                'GET os-migrations', 'GET servers', 'POST migrate')]
            # One baseline read per server before its submission, nothing
            # per server per poll.
            self.assertEqual(n, len(reads), reads)

    def test_without_confirm_left_in_verify_resize(self):
        nova = SimNova(servers(2))
        ok, entries = self.run_batch(nova, self.plan(nova.servers.values()))
        self.assertEqual({'migrated'}, {e.result for e in entries})
        self.assertIn('left in VERIFY_RESIZE', entries[0].message)
        self.assertNotIn('POST confirm', nova.requests)

    def test_auto_mode_live_and_cold(self):
        srvs = servers(2) + [v.Server('off', 'off', 'SHUTOFF', None, 'c1',
                                      'p')]
        nova = SimNova(srvs)
        ok, entries = self.run_batch(nova, self.plan(srvs, 'auto'),
                                     confirm=True, max_parallel=5,
                                     max_per_source=5,
                                     max_per_destination=5)
        got = {e.server_id: (e.target.kind, e.result) for e in entries}
        self.assertEqual({'s00': ('live', 'migrated'),
                          's01': ('live', 'migrated'),
                          'off': ('cold', 'confirmed')}, got)
        self.assertEqual('SHUTOFF', nova.servers['off'].status)

    def test_failure_reason_and_max_failures(self):
        nova = SimNova(servers(6), fail={'s00', 's01'})
        ok, entries = self.run_batch(nova, self.plan(nova.servers.values()),
                                     confirm=True, max_parallel=2,
                                     max_per_source=2, max_failures=1)
        results = {e.server_id: e.result for e in entries}
        self.assertEqual('failed', results['s00'])
        self.assertIn('No valid host was found.', entries[0].message)
        self.assertEqual({'not-started'}, {results['s%02d' % i]
                                           for i in range(2, 6)})
        self.assertEqual(1, batch_cmd.batch_exit_code(entries, ok))

    def test_retry_policy(self):
        conflict = gw.NovaError("HTTP 409: Cannot 'migrate' instance s00 "
                                "while it is in task_state rebooting", 409)
        forbidden = gw.NovaError('HTTP 403: Policy', 403)
        bad = gw.NovaError('HTTP 400: No valid host', 400)
        nova = SimNova(servers(3), submit_errors={
            's00': [conflict, conflict], 's01': [forbidden], 's02': [bad]})
        ok, entries = self.run_batch(nova, self.plan(nova.servers.values()),
                                     confirm=True, max_parallel=3,
                                     max_per_source=3, max_per_destination=3)
        results = {e.server_id: (e.result, e.attempts) for e in entries}
        self.assertEqual(('confirmed', 3), results['s00'])  # 409 retried
        self.assertEqual(('failed', 1), results['s01'])     # 403 never
        self.assertEqual(('failed', 1), results['s02'])     # 400 never
        self.assertEqual(5, nova.requests.count('POST migrate'))

    def test_nova_confirming_first_is_a_success(self):
        nova = SimNova(servers(2))
        nova.nova_confirms = {'s00'}
        ok, entries = self.run_batch(nova, self.plan(nova.servers.values()),
                                     confirm=True, max_parallel=2,
                                     max_per_source=2, max_per_destination=2)
        self.assertTrue(ok)
        self.assertEqual({'confirmed'}, {e.result for e in entries})

    def test_vm_state_conflict_not_retried(self):
        paused = gw.NovaError("HTTP 409: Cannot 'migrate' instance s00 "
                              "while it is in vm_state paused", 409)
        nova = SimNova(servers(1), submit_errors={'s00': [paused]})
        ok, entries = self.run_batch(nova, self.plan(nova.servers.values()))
        self.assertEqual(('failed', 1), (entries[0].result,
                                         entries[0].attempts))
        self.assertIn('vm_state paused', entries[0].message)

    def test_transient_submit_that_reached_nova_is_adopted(self):
        # The POST timed out but Nova had started it: never submit again.
        nova = SimNova(servers(1))
        real = nova.start_migration

        def lost_answer(sid, *a, **kw):
            real(sid, *a, **kw)
            raise gw.Transient('cannot reach the compute API')
        nova.start_migration = lost_answer
        ok, entries = self.run_batch(nova, self.plan(nova.servers.values()),
                                     confirm=True, retries=3)
        self.assertEqual('confirmed', entries[0].result)
        self.assertEqual(['s00'], nova.submissions)

    def nova_away(self, nova, reads):
        """The first ``reads`` baseline reads find Nova unreachable."""
        real = nova.newest_migration
        self.away = []

        def newest(sid):
            if len(self.away) < reads:
                self.away.append(sid)
                raise gw.Transient('cannot reach the compute API')
            return real(sid)
        nova.newest_migration = newest

    def test_nova_unreachable_before_a_submission_delays_it(self):
        # Found by the reliability suite: the read before submitting raised
        # out of the runner and ended the batch with servers in flight.
        nova = SimNova(servers(4))
        self.nova_away(nova, 5)
        ok, entries = self.run_batch(nova, self.plan(nova.servers.values()),
                                     confirm=True, max_parallel=4,
                                     max_per_source=4, max_per_destination=4)
        self.assertTrue(ok)
        self.assertEqual({'confirmed'}, {e.result for e in entries})
        self.assertEqual(sorted(nova.servers), sorted(nova.submissions))
        # One failed read per turn, not one per waiting server.
        self.assertEqual(['s00'] * 5, self.away)

    def test_nova_unreachable_past_the_timeout_sends_nothing(self):
        nova = SimNova(servers(2))
        self.nova_away(nova, 10 ** 6)
        ok, entries = self.run_batch(nova, self.plan(nova.servers.values()),
                                     confirm=True, timeout=30)
        self.assertTrue(ok)
        self.assertEqual({'not-started'}, {e.result for e in entries})
        self.assertIn('Nova unreachable for 30s', entries[0].message)
        self.assertEqual([], nova.submissions)
        self.assertEqual(1, batch_cmd.batch_exit_code(entries, ok))

    def test_refused_read_before_a_submission_fails_that_server(self):
        nova = SimNova(servers(2))
        real = nova.newest_migration

        def newest(sid):
            if sid == 's00':
                raise gw.NovaError('HTTP 403: Policy does not allow', 403)
            return real(sid)
        nova.newest_migration = newest
        ok, entries = self.run_batch(nova, self.plan(nova.servers.values()),
                                     confirm=True)
        self.assertEqual(['failed', 'confirmed'],
                         [e.result for e in entries])
        self.assertIn('HTTP 403', entries[0].message)
        self.assertEqual(['s01'], nova.submissions)

    def test_skipped_and_timeout_exit_codes(self):
        srvs = servers(1) + [v.Server('bad', 'bad', 'ERROR', None, 'c1',
                                      'p')]
        nova = SimNova(srvs, steps=1000)
        ok, entries = self.run_batch(nova, self.plan(srvs), timeout=5)
        results = {e.server_id: e.result for e in entries}
        self.assertEqual({'s00': 'timeout', 'bad': 'skipped'}, results)
        self.assertEqual(1, batch_cmd.batch_exit_code(entries, ok))
        nova = SimNova(servers(1), steps=1000)
        ok, entries = self.run_batch(nova, self.plan(
            nova.servers.values()), timeout=5)
        self.assertEqual(3, batch_cmd.batch_exit_code(entries, ok))

    def test_stop_request_records_inflight_and_resumes(self):
        nova = SimNova(servers(4), steps=3)
        opts = batch.Options(interval=1, confirm=True, max_parallel=2,
                             max_per_source=2)
        items = self.plan(nova.servers.values())
        self.journal.write({'type': 'plan',
                            'servers': [i.to_journal() for i in items]})
        entries = [batch.new_entry(i, opts) for i in items]
        clock = Clock()

        def sleep(seconds):
            clock.sleep(seconds)
            runner.stop_requested = True
        runner = batch.Runner(nova, self.journal, Reporter(), opts,
                              clock=clock, sleep=sleep)
        self.assertFalse(runner.run(entries))
        self.assertEqual(130, batch_cmd.batch_exit_code(entries, False))
        results = sorted(e.result for e in entries)
        self.assertEqual(['interrupted', 'interrupted', 'not-started',
                          'not-started'], results)
        state = jrn.replay(self.path)
        states = sorted(s.state for s in state.servers.values())
        self.assertEqual([jrn.PLANNED, jrn.PLANNED, jrn.SUBMITTED,
                          jrn.SUBMITTED], states)

    def test_verify_command_failure_reverts(self):
        nova = SimNova(servers(1))
        ok, entries = self.run_batch(
            nova, self.plan(nova.servers.values()), confirm=True,
            verify_command='echo "checked $OSC_MIGRATE_SERVER_NAME" '
                           '"$OSC_MIGRATE_DEST_HOST"; exit 3')
        # The verify command runs asynchronously; the fake clock does not
        # wait for it, so the runner polls until it has ended.
        self.assertEqual('reverted', entries[0].result)
        self.assertIn('verify command exited 3: checked vm0', entries[0]
                      .message)
        self.assertIn('POST revert', nova.requests)
        self.assertNotIn('POST confirm', nova.requests)
        self.assertEqual(1, batch_cmd.batch_exit_code(entries, ok))

    def test_verify_command_timeout_reverts_and_kills_it_all(self):
        pidfile = os.path.join(self.useFixture(fixtures.TempDir()).path,
                               'pid')
        nova = SimNova(servers(1))
        ok, entries = self.run_batch(
            nova, self.plan(nova.servers.values()), confirm=True, timeout=0,
            verify_command='sleep 60 >/dev/null 2>&1 & echo $! > %s; wait'
            % pidfile)
        self.assertEqual('reverted', entries[0].result)
        self.assertIn('verify command timed out after 300s',
                      entries[0].message)
        with open(pidfile) as f:
            child = int(f.read())
        # Not only the shell: its children are gone too.
        for _ in range(50):
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        else:
            self.fail('verify command child %d still running' % child)

    def test_live_verify_failure_fails(self):
        nova = SimNova(servers(1))
        ok, entries = self.run_batch(nova, self.plan(nova.servers.values(),
                                                     'live'),
                                     verify_command='exit 1')
        self.assertEqual('failed', entries[0].result)
        self.assertIn('verify command exited 1', entries[0].message)
        self.assertNotEqual('c1', nova.servers['s00'].host)  # it moved

    def test_verify_command_gets_names_only_in_environment(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        evil = [v.Server('s00', '$(touch %s/pwned)' % tmp, 'ACTIVE', None,
                         'c1', 'p')]
        nova = SimNova(evil)
        ok, entries = self.run_batch(
            nova, self.plan(evil), confirm=True,
            verify_command='test -n "$OSC_MIGRATE_SERVER_NAME"')
        self.assertEqual('confirmed', entries[0].result)
        self.assertFalse(os.path.exists(os.path.join(tmp, 'pwned')))


class TestCommandValidation(testtools.TestCase):

    def parse(self, *args):
        cmd = batch_cmd.BatchMigrate(None, None)
        return cmd.get_parser('batch').parse_args(list(args))

    def check(self, args, text):
        parsed = self.parse(*args)
        e = self.assertRaises(common.UsageError,
                              batch_cmd.BatchMigrate.validate,
                              parsed)
        self.assertIn(text, str(e))

    def test_usage_errors(self):
        self.check([], 'select servers')
        self.check(['--mode', 'cold', '--live-migration', 'vm'],
                   'contradicts --mode cold')
        self.check(['vm', '--block-migration'], 'for live migrations')
        self.check(['vm', '--disable-reason', 'x'], 'needs --disable-source')
        self.check(['--resume', 'j', 'vm'], 'drop <server>')
        self.check(['--resume', 'j', '--dry-run'], 'drop --dry-run')

    def test_project_and_status_narrow_named_servers(self):
        args = self.parse('a', 'b', 'c', '--project', 'p1', '--status',
                          'active')
        batch_cmd.BatchMigrate.validate(args)
        srvs = [v.Server('a', 'a', 'ACTIVE', None, 'c1', 'p1'),
                v.Server('b', 'b', 'ACTIVE', None, 'c1', 'p2'),
                v.Server('c', 'c', 'SHUTOFF', None, 'c1', 'p1')]
        items = selection.plan_items(srvs, selection.Selection(
            names=args.servers, project=args.project, status=args.status,
            mode=args.mode))
        self.assertEqual([('planned', ''), ('skipped', 'not in project p1'),
                          ('skipped', 'status is SHUTOFF, not ACTIVE')],
                         [(i.verdict, i.reason) for i in items])

    def test_defaults_documented_and_conservative(self):
        args = self.parse('vm')
        batch_cmd.BatchMigrate.validate(args)
        self.assertEqual(('cold', 4, 2, 2, 3, 3600, 2.0),
                         (args.mode, args.max_parallel, args.max_per_source,
                          args.max_per_destination, args.retries,
                          args.timeout, args.interval))
        args = self.parse('vm', '--live-migration')
        batch_cmd.BatchMigrate.validate(args)
        self.assertEqual('live', args.mode)


class TestResumeDecisions(testtools.TestCase):
    """Where each journaled server stands decides what a resume does."""

    def decide(self, state, nova, **saved):
        saved = jrn.ServerState(state, plan={'id': 's00', 'name': 'vm0',
                                             'source': 'c1', 'mode': 'cold',
                                             'status': 'ACTIVE'}, **saved)
        return selection.resumed_entry(nova, 's00', saved,
                                       batch.Options(), None)

    def test_finished_is_kept(self):
        nova = SimNova(servers(1))
        entry, adopt = self.decide(jrn.FINISHED, nova, result='confirmed')
        self.assertEqual(('done', 'confirmed', None),
                         (entry.state, entry.result, adopt))
        self.assertEqual([], nova.requests)  # not even looked at

    def test_submitted_is_adopted(self):
        nova = SimNova(servers(1))
        entry, adopt = self.decide(jrn.SUBMITTED, nova, migration_id=7,
                                   baseline_id=3)
        self.assertEqual((7, 3), adopt)

    def test_submitting_that_reached_nova_is_adopted(self):
        nova = SimNova(servers(1))
        nova.start_migration('s00', live=False)  # it did land
        entry, adopt = self.decide(jrn.SUBMITTING, nova, baseline_id=3)
        self.assertEqual((None, 3), adopt)
        self.assertEqual('adopt', entry.item.verdict)

    def test_submitting_that_never_landed_is_planned_again(self):
        nova = SimNova(servers(1))
        entry, adopt = self.decide(jrn.SUBMITTING, nova, baseline_id=0)
        self.assertIsNone(adopt)
        self.assertEqual(('planned', 'queued'),
                         (entry.item.verdict, entry.state))
