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

"""Review of c5c0022: a bad night in production, one test per finding.

Each test asserts the CORRECT behaviour: it fails on c5c0022 if the bug is
real. The docstring says what goes wrong today.
"""

import datetime
import json
import os
import types

import fixtures
from keystoneauth1 import discover
from keystoneauth1 import session as ksa_session
from keystoneauth1 import token_endpoint
from openstack.compute.v2 import _proxy as compute_proxy
from osc_lib import exceptions
import requests
import testtools

from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import session
from osc_migrate_plus import gateway as gw
from osc_migrate_plus import model

from tests.unit.engine import test_batch as engine_batch

from tests.unit.v1 import test_unkind_nova as unkind

Kill = unkind.Kill


class ReviewCase(unkind.UnkindNovaTestCase):
    pass


class TestHiddenHostFilterDropped(ReviewCase):

    def test_source_host_drain_when_nova_drops_the_host_filter(self):
        """Hidden hosts: --source-host migrates servers of OTHER hosts.

        Nova silently drops the admin-only ``host`` filter of GET
        /servers/detail for a user without
        os_compute_api:servers:allow_all_filters (remove_invalid_options),
        the very user to whom policy hides host names. selection.select
        then stamps every listed server with ``host=--source-host``
        ("Nova listed it by host"), so draining compute1 migrates every
        server of every project.
        """
        fake = self.cloud(hide_hosts=True)
        listing = fake._list_servers

        def no_host_filter(req):
            # servers.py remove_invalid_options for a non-admin: the
            # unknown 'host' option is stripped, without an error.
            params = dict(req.params)
            params.pop('host', None)
            return listing(req._replace(params=params))
        fake._list_servers = no_host_filter
        mine = fake.add_server('on-compute1', host='compute1')
        other = fake.add_server('on-compute2', host='compute2')
        # Nothing tells the servers of compute1 from the others: refused
        # before anything changes, naming the policies.
        e = self.assertRaises(exceptions.CommandError, self.batch,
                              '--source-host', 'compute1', '--mode', 'live',
                              '--state-file', self.path)
        self.assertIn('os_compute_api:servers:allow_all_filters', str(e))
        self.assertEqual([], fake.records(mine))
        self.assertEqual([], fake.records(other),
                         'a server on compute2 was migrated by a drain of '
                         'compute1')
        self.assertEqual(0, fake.count('POST', 'os-migrateLive'))


class TestLateLostReply(ReviewCase):

    def test_resume_after_not_started_does_not_migrate_again(self):
        """A lost migrate applied after the 60 s window, then --resume.

        --retries 0: Nova shows nothing for 60 s, the batch says
        ``not-started`` (journal: not-taken, verdict not-started). Nova
        then carries out the held request: the live migration completes.
        --resume reopens ``not-started`` as PLANNED, re-plans from the
        server as it is now (but with the plan's host, so --source-host
        still matches) and live-migrates it a second time, although Nova
        shows a record newer than the journal's baseline.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.lose_reply('os-migrateLive', apply_after=None)
        rc, rows = self.batch('vm1', '--mode', 'live', '--retries', '0',
                              '--state-file', self.path)
        self.assertEqual(1, rc)
        self.assertResult('not-started', rows[sid])
        fake.apply_lost()  # late: the API worker finally ran it
        fake.settle()
        self.assertEqual('completed', fake.records(sid)[0]['status'])
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(1, len(fake.records(sid)),
                         'the server was live-migrated twice')
        self.assertResult('migrated', rows[sid])

    def test_resubmit_after_not_taken_looks_first(self):
        """A lost migrate applied just after the 60 s window, in one run.

        After ``not-taken`` the entry is queued again and re-sent 1-3 s
        later without a fresh look. If Nova carried out the held request
        in between (and a short live migration ended), the re-send is
        accepted: a second live migration of the same server.
        """
        fake = self.cloud()
        for key in ('record_delay', 'step', 'live_duration',
                    'live_record_lag'):
            fake.timing[key] = 0.01
        sid = fake.add_server('vm1')
        fake.lose_reply('os-migrateLive', apply_after=None)
        applied = []

        def late():
            if not applied and self.journal_count('"event":"not-taken"'):
                applied.append(fake.now)
                fake.apply_lost()
        fake.sleep_hooks.append(late)
        rc, rows = self.batch('vm1', '--mode', 'live', '--state-file',
                              self.path)
        self.assertTrue(applied)
        self.assertEqual(1, len(fake.records(sid)),
                         'the server was live-migrated twice')
        self.assertResult('migrated', rows[sid])


class TestStalePlan(ReviewCase):

    def test_server_moved_by_someone_else_before_its_turn(self):
        """The plan is hours old when a queued server's turn comes.

        Drain compute1 (two hosts, --max-parallel 1, --confirm). While
        vm0 migrates, an operator moves vm1 to compute2 with core OSC and
        confirms. When vm1's turn comes the batch neither re-reads it nor
        re-checks --source-host: it cold-migrates vm1 again, back to
        compute1 (the only other host), then judges it with the PLAN's
        source (compute1): ``failed`` "in VERIFY_RESIZE on its source host
        compute1", and the migration the user asked to confirm is left in
        VERIFY_RESIZE.
        """
        fake = self.cloud(hosts=2)
        first = fake.add_server('vm0')
        moved = fake.add_server('vm1')
        done = []

        def operator():
            if not done and self.journal_count('"event":"submitted"'):
                done.append(fake.now)
                fake.start_elsewhere(moved)
                fake.settle()
                fake.auto_confirm(moved)
                fake.settle()
        fake.sleep_hooks.append(operator)
        rc, rows = self.batch('vm0', 'vm1', '--source-host', 'compute1',
                              '--confirm', '--max-parallel', '1',
                              '--state-file', self.path)
        self.assertTrue(done)
        self.assertResult('confirmed', rows[first])
        self.assertNotEqual('VERIFY_RESIZE', fake.server(moved)['status'],
                            'left in VERIFY_RESIZE despite --confirm')
        self.assertEqual(1, len(fake.records(moved)),
                         'migrated again although no longer on compute1')


class TestDeletedBeforeItsTurn(ReviewCase):

    def test_server_deleted_while_queued(self):
        """A queued server is deleted before its turn: ``failed``.

        _submit_one reads its records (an empty list: no 404), then the
        migrate POST gets Nova's 404, which _submit_failed reports as
        ``failed`` "submit refused: HTTP 404" (exit 1, and it counts
        against --max-failures: a tenant deleting one VM can stop a
        drain). Everywhere else a deleted server is ``deleted``.
        """
        fake = self.cloud()
        first = fake.add_server('vm0')
        gone = fake.add_server('vm1')

        def tenant():
            if self.journal_count('"event":"submitted"') and \
                    not fake.server(gone)['deleted']:
                fake.delete_server(gone)
        fake.sleep_hooks.append(tenant)
        rc, rows = self.batch('vm0', 'vm1', '--confirm', '--max-parallel',
                              '1', '--state-file', self.path)
        self.assertResult('confirmed', rows[first])
        self.assertResult('deleted', rows[gone])
        self.assertEqual(0, rc)


class TestResumeLimits(ReviewCase):

    def test_resume_keeps_the_journals_limits(self):
        """--resume drops the limits the batch was started with.

        The header records max_parallel/max_per_source/... ('limits'), but
        Resumption.options only carries the BINDING options over: a resume
        typed without the limits runs with the defaults (4 in flight, 2
        per source) on a host the operator had limited to 1 at a time.
        """
        fake = self.cloud()
        fake.timing['cold_duration'] = 30
        sids = [fake.add_server('vm%d' % n) for n in range(4)]
        self.kill_when(lambda: self.journal_count('"event":"submitted"'))
        self.assertRaises(Kill, self.batch, 'vm0', 'vm1', 'vm2', 'vm3',
                          '--confirm', '--max-parallel', '1',
                          '--state-file', self.path)
        resumed_at = fake.now
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        # In flight at once: migrations started, minus confirms sent; one
        # was in flight when the resume began.
        most = count = 1
        for when, method, _, extra in fake.requests:
            if when < resumed_at or method != 'POST':
                continue
            if extra == 'migrate':
                count += 1
                most = max(most, count)
            elif extra == 'confirmResize':
                count -= 1
        self.assertEqual(1, most, 'the resume ignored --max-parallel 1')
        for sid in sids:
            self.assertResult('confirmed', rows[sid])


class TestStopMeansStop(engine_batch.RunnerTestCase):

    def test_no_new_submission_after_the_stop_request(self):
        """Ctrl-C while a poll is on the wire still submits new servers.

        The handler only sets runner.stop_requested (and says "no new
        submissions"); run() checks it at the top of the loop, but right
        after _poll comes a second _submit ("refill the slots this poll
        freed"), and _submit's own loop never looks at the flag either.
        Here the first Ctrl-C arrives during the poll that frees vm0's
        slot: vm1 is submitted after it.
        """
        sids = self.servers(3)
        runner = []
        request = self.nova.proxy.request.side_effect

        def on_the_wire(url, method, **kw):
            response = request(url, method, **kw)
            if runner and method == 'GET' and 'changes-since' in str(
                    kw.get('params')) and 'servers' in url and \
                    self.nova.server(sids[0])['status'] == 'VERIFY_RESIZE':
                runner[0].stop_requested = True  # the SIGINT handler
            return response
        self.nova.proxy.request.side_effect = on_the_wire
        real_runner = engine_batch.batch.Runner

        def capture(*args, **kwargs):
            made = real_runner(*args, **kwargs)
            runner.append(made)
            return made
        self.useFixture(fixtures.MonkeyPatch(
            'osc_migrate_plus.engine.batch.Runner', capture))
        completed, entries = self.run_batch(sids, max_parallel=1)
        self.assertFalse(completed)
        self.assertEqual(1, self.nova.count('POST', 'migrate'),
                         'a migration was started after the stop request')


class TestActOnStaleData(ReviewCase):

    def test_lost_confirm_then_failed_reads_is_not_a_failure(self):
        """watch --confirm: confirm applied, reply lost, then reads fail.

        The API is overloaded: the reads fail for a while. After a failed
        read the step runs on the last (stale) view: the record still
        'finished', the server VERIFY_RESIZE, nothing sent (a Transient
        leaves f.sent None). So it confirms again, and
        again: Nova answers 400 "has not been resized" (it is
        confirming) then 409 (it is ACTIVE again); the fourth refusal is
        the verdict: ``failed`` "confirm refused", exit 1, for a server
        Nova confirmed. The same happens in batch when its bulk poll
        fails.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.fail_request(action='confirmResize', status='reset',
                          applied=True)
        armed = []

        def overload():
            # Once the lost confirm is out, every read fails for ~40 s.
            if not armed and fake.count('POST', 'confirmResize'):
                armed.append(fake.now)
                fake.fail_reads('/servers/', status=503, times=20)
        fake.sleep_hooks.append(overload)
        rc, out = self.watch('vm1', '--start', '--confirm')
        self.assertEqual('ACTIVE', fake.server(sid)['status'])
        self.assertResult('confirmed', out)
        self.assertEqual(0, rc)


class TestVerifyBypassed(ReviewCase):

    def test_confirmed_by_nova_while_verifying_is_not_a_success(self):
        """Nova confirms (resize_confirm_window) while --verify-command runs.

        The next look shows the record 'confirmed'; with goal CONFIRM the
        state machine says ``confirmed`` and the follow ends, killing the
        verify command mid-run. The report is a plain success (exit 0):
        nothing says the verification the user made the gate of the
        confirm never passed (had it failed, the server should have been
        reverted).
        """
        fake = self.cloud(real_sleep=0.005)
        sid = fake.add_server('vm1')
        done = []

        def periodic_task():
            if not done and self.journal_count('"verify-started"') and \
                    fake.server(sid)['status'] == 'VERIFY_RESIZE':
                done.append(fake.now)
                fake.auto_confirm(sid)
        fake.sleep_hooks.append(periodic_task)
        rc, rows = self.batch('vm1', '--verify-command', 'sleep 600',
                              '--state-file', self.path)
        self.assertTrue(done)
        # The verification still runs to its end (here its 300 s limit):
        # the verdict says what it found.
        self.assertNotEqual('confirmed', rows[sid]['Result'],
                            'reported a plain success; the verify command '
                            'was killed before it passed')
        self.assertIn('verif', rows[sid]['Message'])


class TestRateLimited(ReviewCase):

    def test_a_429_on_the_bulk_poll_does_not_end_the_batch(self):
        """A rate limiter answers one bulk poll 429 (Too Many Requests).

        The gateway makes 429 a plain NovaError (not Transient); _poll
        only catches Transient, so the error leaves Runner.run: the batch
        ends with a CommandError (no result on stdout, no 'interrupted'
        in the journal), its migrations unfollowed, the cold ones it was
        asked to confirm left in VERIFY_RESIZE, a verify command left
        running. The same 429 on a direct read, or any 4xx other than
        404 there, does the same.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        armed = []

        def limiter():
            if not armed and self.journal_count('"event":"submitted"'):
                armed.append(fake.now)
                fake.fail_reads('/os-migrations', status=429, times=1)
        fake.sleep_hooks.append(limiter)
        rc, rows = self.batch('vm1', '--confirm', '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertResult('confirmed', rows[sid])


class TestVerifyOrphans(ReviewCase):

    def test_second_ctrl_c_kills_the_verify_command(self):
        """Ctrl-C twice ("quit at once") while a verify command runs.

        The second signal raises KeyboardInterrupt out of Runner.run; the
        finally in BatchMigrate._run restores the handlers and closes the
        journal but never stops the follows: the verify command, in a
        session of its own (so the terminal's SIGINT missed it), and its
        children outlive the batch. Any other exception out of the loop
        (a 429, a full disk) leaves them the same way.
        """
        fake = self.cloud(real_sleep=0.01)
        fake.add_server('vm1')
        pidfile = os.path.join(self.tmp, 'pid')
        found = []

        def second_ctrl_c():
            if not found and self.journal_count('"verify-started"'):
                found.append(self._read_pid(pidfile))
                raise KeyboardInterrupt()
        fake.sleep_hooks.append(second_ctrl_c)
        self.assertRaises(
            KeyboardInterrupt, self.batch, 'vm1', '--state-file', self.path,
            '--verify-command',
            'sleep 600 >/dev/null 2>&1 & echo $! > %s; wait' % pidfile)
        self.assertTrue(found)
        for _ in range(30):
            try:
                os.kill(found[0], 0)
            except ProcessLookupError:
                return
            unkind.really_sleep(0.1)
        self.fail('the verify command child %d outlived the batch'
                  % found[0])

    _read_pid = unkind.TestVerifyCommand._read_pid


class TestUncertainTimeout(ReviewCase):

    def test_resume_of_an_uncertain_timeout_migrates_it(self):
        """A lost migrate reply, --timeout shorter than the 60 s window.

        The first run ends ``timeout`` "the migration goes on in Nova"
        (nothing goes on: Nova never applied it). The journal's state
        before the verdict was UNCERTAIN, but REOPENED maps every
        'timeout' to SUBMITTED: the resume adopts it as a migration that
        was accepted (Start.ADOPTED), and after START_GRACE reports
        ``failed`` "no migration record appeared ... the server is idle"
        instead of sending the request Nova never carried out.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.lose_reply('migrate', apply_after=None)
        rc, rows = self.batch('vm1', '--confirm', '--timeout', '30',
                              '--state-file', self.path)
        self.assertEqual(3, rc)
        self.assertResult('timeout', rows[sid])
        self.assertEqual([], fake.records(sid))
        rc, rows = self.batch('--resume', self.path)
        self.assertResult('confirmed', rows[sid])
        self.assertEqual(0, rc)


class TestSkewedConductor(ReviewCase):

    def test_live_verdict_not_taken_from_a_partial_bulk_view(self):
        """Server rows stamped by a conductor 8 s behind the API's clock.

        Nova stamps updated_at in the process that writes the row (a
        conductor for computes' saves); here the one saving instances is
        8 s behind the Date of the API's answers, more than
        SINCE_OVERLAP (5 s). The bulk server reads never mention the
        server; the migration reads do. When the record says 'completed'
        the step judges it against the PLAN-time snapshot of the server
        (ACTIVE, no task, on compute1): ``failed`` "live migration
        completed but the server is still on its source host compute1",
        for a server that moved. The 60 s stale net never gets a chance:
        a verdict needs no fresh look.
        """
        fake = self.cloud()
        save = fake._save

        def skewed(obj, **changes):
            save(obj, **changes)
            if 'task_state' in obj:  # a server row
                obj['updated'] -= datetime.timedelta(seconds=8)
        fake._save = skewed
        sid = fake.add_server('vm1')
        rc, rows = self.batch('vm1', '--mode', 'live', '--state-file',
                              self.path)
        self.assertNotEqual('compute1',
                            fake.server(sid)['OS-EXT-SRV-ATTR:host'])
        self.assertResult('migrated', rows[sid])
        self.assertEqual(0, rc)


class TestTransportResendsWrites(testtools.TestCase):

    def test_migrate_is_not_resent_by_keystoneauth(self):
        """clouds.yaml ``connect_retries``: keystoneauth re-sends the POST.

        The gateway's whole lost-answer logic (Transient.maybe_applied,
        Start.UNCERTAIN, the 60 s window) assumes a write is sent once.
        But the sdk proxy it is given carries the user's connect_retries
        (clouds.yaml ``connect_retries``/``compute_connect_retries``), and
        keystoneauth retries every RetriableConnectionFailure, including
        a reset or a read timeout after Nova got the whole request. The
        migrate goes out twice; the engine only sees the second answer
        (a 409 over the task of the first), takes it for someone else's
        task, retries and ends ``failed`` while its migration runs
        unwatched (or, a live one being over, migrates again). Writes
        should be sent with connect_retries=0.
        """
        posts = []

        class Nova(requests.adapters.BaseAdapter):
            def send(self, request, **kwargs):
                if request.method != 'POST':
                    raise AssertionError('unexpected %s' % request.method)
                posts.append(request.body)
                if len(posts) == 1:
                    # Nova applied it; the reply never came back.
                    raise requests.exceptions.ConnectionError(
                        'Connection reset by peer')
                response = requests.Response()
                response.status_code = 409
                response._content = json.dumps({'conflictingRequest': {
                    'code': 409, 'message': "Cannot 'migrate' instance s1 "
                    "while it is in task_state resize_prep"}}).encode()
                response.headers['Content-Type'] = 'application/json'
                response.request = request
                response.url = request.url
                return response

            def close(self):
                pass

        http = requests.Session()
        http.mount('http://', Nova())
        sess = ksa_session.Session(
            auth=token_endpoint.Token('http://nova.example:8774/v2.1', 't'),
            session=http)
        proxy = compute_proxy.Proxy(
            session=sess, service_type='compute',
            endpoint_override='http://nova.example:8774/v2.1',
            connect_retries=2, connect_retry_delay=0)
        # What openstack.connection attaches (no cache, no statsd).
        proxy._connection = types.SimpleNamespace(
            _global_request_id=None, cache_enabled=False,
            _api_cache_keys=set())
        proxy.get_endpoint_data = lambda: discover.EndpointData(
            min_microversion='2.1', max_microversion='2.100')
        gateway = gw.NovaGateway(proxy)
        try:
            gateway.start_migration('s1', live=False)
        except model.NovaError as exc:
            error = exc
        else:
            error = None
        self.assertEqual(1, len(posts), 'the migrate was sent %d times'
                         % len(posts))
        self.assertIsInstance(error, model.Transient)
        self.assertTrue(error.maybe_applied)


class TestWatchAnOldMigration(ReviewCase):

    def test_report_on_a_migration_whose_source_the_server_is_back_on(self):
        """watch --migration <id> on a migration that ended long ago.

        The server went compute1 -> compute2 (confirmed), later back
        compute2 -> compute1. Asked about the first migration, the state
        machine compares the server's host NOW with that record's source:
        'confirmed' but "on its source" reads as "still confirming", so
        watch waits for a change that cannot come and reports ``timeout``
        (exit 3) after --timeout (an hour by default). A live record would
        be reported ``failed`` ("still on its source host").
        """
        fake = self.cloud(hosts=2)
        sid = fake.add_server('vm1')
        for _ in range(2):
            fake.start_elsewhere(sid)
            fake.settle()
            fake.auto_confirm(sid)
            fake.settle()
        first = fake.records(sid)[-1]
        self.assertEqual(('compute1', 'compute2', 'confirmed'), (
            first['source_compute'], first['dest_compute'],
            first['status']))
        self.assertEqual('compute1',
                         fake.server(sid)['OS-EXT-SRV-ATTR:host'])
        rc, out = self.watch('vm1', '--migration', str(first['id']),
                             '--timeout', '600')
        self.assertResult('confirmed', out)
        self.assertEqual(0, rc)
        self.assertLess(fake.now, 60)


class TestTornButWhole(testtools.TestCase):

    def test_a_whole_last_line_without_newline_is_kept(self):
        """The last line is whole JSON but its newline never hit the disk.

        replay() keeps it (json.loads succeeds, torn=False) and the resume
        decides from it; cut_torn() then truncates the file at the last
        newline, dropping that very event. Here it is the 'submitting' of
        a migrate that may have reached Nova: this resume treats the
        server as uncertain, but the next resume (or a crash of this one
        before it writes anything about the server) sees it PLANNED and
        submits again.
        """
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'j')
        journal = jrn.Journal.create(path, {'options': {}})
        journal.write({'type': 'plan', 'servers': [{
            'id': 's1', 'name': 'vm1', 'source': 'compute1',
            'status': 'ACTIVE', 'mode': 'cold', 'verdict': 'planned'}]})
        journal.close()
        with open(path, 'ab') as f:
            f.write(json.dumps({'type': 'event', 'server': 's1',
                                'event': 'submitting', 'baseline_id': 0,
                                'attempt': 1}).encode())
        resumption = session.Resumption(path)
        self.addCleanup(resumption.close)
        self.assertEqual(jrn.SUBMITTING,
                         resumption.state.servers['s1'].state)
        resumption.journal.cut_torn()
        self.assertEqual(jrn.SUBMITTING, jrn.replay(path).servers['s1'].state,
                         'the event the resume acted on is gone from the '
                         'journal')


class TestAdoptReadFails(ReviewCase):

    def test_a_5xx_on_the_adoption_read_does_not_end_the_batch(self):
        """The direct read that seeds an adoption gets 503s.

        Runner.adopt catches only NotFound: a Transient (after the
        gateway's 3 read retries) leaves Batch.run before the loop starts,
        the whole batch ends with a CommandError, after its journal and
        plan were written (and the sources disabled if asked). A resume
        hits the same read for every server it adopts.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        other = fake.add_server('vm2')
        fake.start_elsewhere(sid)
        fake.fail_reads('/servers/%s' % sid, status=503, times=4)
        rc, rows = self.batch('vm1', 'vm2', '--confirm', '--state-file',
                              self.path)
        self.assertResult('confirmed', rows[sid])
        self.assertResult('confirmed', rows[other])
        self.assertEqual(0, rc)


class TestSameHostColdMigration(ReviewCase):

    def test_same_host_cold_migration_is_not_left_in_verify_resize(self):
        """A driver that cold-migrates to the same host (vmwareapi).

        Nova allows a cold migration to land on the source host when its
        compute node reports COMPUTE_SAME_HOST_COLD_MIGRATE (compute/api.py
        _allow_resize_to_same_host; the VMware driver does: the host is a
        cluster). The record is 'finished', the server VERIFY_RESIZE on
        its source: verdict.py says ``failed`` ("in VERIFY_RESIZE on its
        source host") and never confirms nor reverts, although the user
        asked --confirm: the server is left in VERIFY_RESIZE.
        """
        fake = self.cloud()
        fake._pick_destination = lambda server, host=None: server['host']
        sid = fake.add_server('vm1')
        rc, rows = self.batch('vm1', '--confirm', '--state-file', self.path)
        self.assertNotEqual('VERIFY_RESIZE', fake.server(sid)['status'],
                            'left in VERIFY_RESIZE: %s' % rows[sid])


class TestApplied503(ReviewCase):

    def test_503_from_a_proxy_after_nova_applied_the_migrate(self):
        """A proxy answers 503 although Nova applied the migrate.

        gateway._error makes every 503 ``maybe_applied=False`` ("nothing
        there to serve it"). Envoy (Istio, Kubernetes-hosted control
        planes) answers 503 "upstream connect error or disconnect/reset
        before headers" when the backend dropped the connection after it
        got the request. The batch retries the migrate; Nova answers 409
        over the task of the first one, which _submit_failed does not
        take for ours (entry.unanswered is 0 after a 503): more retries,
        then 409 over vm_state 'resized' is a refusal: ``failed``, and the
        migration the user asked to confirm is left in VERIFY_RESIZE.
        """
        fake = self.cloud()
        sid = fake.add_server('vm1')
        fake.fail_request(action='migrate', status=503, applied=True)
        rc, rows = self.batch('vm1', '--confirm', '--state-file', self.path)
        self.assertEqual(1, len(fake.records(sid)))
        self.assertNotEqual('VERIFY_RESIZE', fake.server(sid)['status'],
                            'left in VERIFY_RESIZE: %s' % rows[sid])
        self.assertResult('confirmed', rows[sid])
