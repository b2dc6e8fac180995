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

"""A reviewer's bad night: capacity, stalls, rolling runs, the report.

Tests marked "Regression guard" pass today and hold behaviour that is
right; the others are real problems found in review and fail until fixed.
"""

import json
import os
import stat
from unittest import mock

from osc_lib import exceptions
import requests
import testtools

from osc_migrate_plus.engine import capacity as cap
from osc_migrate_plus.engine import plan
from osc_migrate_plus import model
from osc_migrate_plus import placement as pl
from osc_migrate_plus.v1 import report as report_cmd
from tests.unit.v1 import test_rolling
from tests.unit.v1 import test_unkind_nova as base

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'data')


class ReportCase(base.UnkindNovaTestCase):

    def report(self, *args):
        app = mock.Mock()
        app.stdout, app.stderr = base.io.StringIO(), base.io.StringIO()
        app.options.verbose_level = 1
        cmd = report_cmd.ReportMigrations(app, None)
        parsed = cmd.get_parser('openstack server migrate').parse_args(
            ['-f', 'json'] + list(args))
        rc = cmd.run(parsed)
        self.addDetail('report stderr', base.content.text_content(
            app.stderr.getvalue() or '-'))
        out = app.stdout.getvalue()
        return rc, (json.loads(out) if out.strip() else None), \
            app.stderr.getvalue()

    def journal_with(self, **header_changes):
        with open(os.path.join(DATA, 'journal-cold-confirm-3.jsonl')) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        lines[0].update(header_changes)
        path = os.path.join(self.tmp, 'x.jsonl')
        with open(path, 'w') as f:
            f.write(''.join(json.dumps(r) + '\n' for r in lines))
        return path


class TestReportDamaged(ReportCase):

    def test_list_survives_a_journal_with_a_foreign_header(self):
        """--list over a state directory holding one odd journal.

        One .jsonl in $XDG_STATE_HOME/osc-migrate-plus/ has a header whose
        "selection" is a string (hand-edited, or another tool's format
        sharing the name). An operator expects that file listed as
        "damaged" beside the others, as --list does for any journal it
        cannot read; today report.build raises AttributeError ('str' has no
        'get') and the whole --list ends in a traceback, hiding every good
        journal. Fix: engine/report.py build (or list_journals) must turn
        any malformed field into a JournalError (check the header's
        selection/options/limits are dicts, event names are str).
        """
        self.journal_with(selection='compute1')
        with mock.patch('osc_migrate_plus.engine.journal.default_dir',
                        return_value=self.tmp):
            rc, rows, err = self.report('--list')
        self.assertEqual(0, rc)
        self.assertEqual(['damaged'], [r['State'] for r in rows])

    def test_report_of_a_journal_with_a_foreign_header_is_exit_2(self):
        """report <journal> --html whose header "selection" is a string.

        The command's contract: a damaged journal is a usage error (exit
        2) with a message naming the journal. Today: AttributeError
        ('str' object has no attribute 'get') escapes (traceback, exit 1).
        Same fix as above.
        """
        path = self.journal_with(selection='compute1')
        try:
            rc, rows, err = self.report(path, '--html',
                                        os.path.join(self.tmp, 'p.html'))
        except report_cmd.UsageError as exc:
            self.assertIn(path, str(exc))
        else:
            # Said by the command itself: exit 2 and the journal named.
            self.assertEqual(2, rc)
            self.assertIn('journal %s is damaged' % path, err)

    def test_resume_of_a_journal_with_a_foreign_header(self):
        """batch --resume of the same journal: the same words, no traceback.

        (A fix of the lead's: the header's shape is checked where report and
        resume both read a journal.)
        """
        self.cloud()
        path = self.journal_with(selection='compute1')
        exc = self.assertRaises(exceptions.CommandError, self.batch,
                                '--resume', path)
        self.assertIn('journal %s is damaged: its header\'s "selection" is '
                      'not an object' % path, str(exc))
        self.assertEqual([], self.fake.posts('migrate'))

    def test_torn_last_line_reported_not_fatal(self):
        """Regression guard: a journal whose last write was cut short.

        The client was SIGKILLed mid-write: the report still reads every
        whole record (as --resume does) and exits 0.
        """
        path = self.journal_with()
        with open(path, 'a') as f:
            f.write('{"type": "event", "server": "abc", "ev')
        rc, rows, err = self.report(path)
        self.assertEqual(0, rc)
        self.assertEqual(3, len(rows))


class TestReportFiles(ReportCase):

    def test_html_page_not_readable_by_others(self):
        """--html: the page is as private as the journal it comes from.

        It holds the journal's content (server and host names, project
        IDs, Nova's fault messages).
        The journal itself is created 0600 in a 0700 directory (journal.py
        Journal.create) because it names other projects' servers; an
        operator expects the page made from it to be no more readable than
        the journal. Today it is written with open(..., 'w'), i.e. 0644
        under the usual umask 022: every local user can read it. Fix:
        v1/report.py produce, create it with os.open(..., 0o600) (like
        the journal).
        """
        path = self.journal_with()
        page = os.path.join(self.tmp, 'page.html')
        old = os.umask(0o022)
        try:
            rc, rows, err = self.report(path, '--html', page)
        finally:
            os.umask(old)
        self.assertEqual(0, rc)
        mode = stat.S_IMODE(os.stat(page).st_mode)
        self.assertEqual(0, mode & 0o077, oct(mode))

    def test_html_escapes_hostile_names(self):
        """Regression guard: a tenant's server named to break the page.

        ``</style><script>`` and ``]]>`` in a name end up as text, never
        markup; a 5000-character name does not break rendering.
        """
        with open(os.path.join(DATA, 'journal-cold-confirm-3.jsonl')) as f:
            text = f.read()
        plan_line = [line for line in text.splitlines()
                     if '"type":"plan"' in line.replace(' ', '')][0]
        record = json.loads(plan_line)
        record['servers'][0]['name'] = '</style><script>alert(1)</script>]]>'
        record['servers'][1]['name'] = 'x' * 5000
        path = os.path.join(self.tmp, 'hostile.jsonl')
        with open(path, 'w') as f:
            f.write(text.replace(plan_line, json.dumps(record)))
        page = os.path.join(self.tmp, 'p.html')
        rc, rows, err = self.report(path, '--html', page)
        with open(page) as f:
            html = f.read()
        self.assertNotIn('<script>', html)
        self.assertEqual(1, html.count('</style>'))


class TestRollingReportAgree(test_rolling.RollingCase, ReportCase):

    def test_host_command_failing_on_the_last_host(self):
        """The host command fails on the last host of a rolling run.

        Every server was moved; the run stops with exit 1 ("host command
        failed ... stays disabled"). The operator (or a cron wrapper) then
        runs `openstack server migrate report <journal>`, whose contract is
        "exiting with the code that batch had". Expected 1; today the
        report exits 0 because nothing of the rolling run's failure (a
        'host-command' record with ok false, the Stop) is read by
        engine/report.py: it looks at server results, 'interrupted' and
        'host-check' records only. Fix: the rolling run's failure must be
        journaled in a form the report reads (e.g. the 'interrupted'
        record's error, or report.py reading host-command ok=false /
        host-checked empty=false), and report.exit_code use it.
        """
        self.cloud()
        fail_last = ('[ "$OSC_MIGRATE_HOST_INDEX" = '
                     '"$OSC_MIGRATE_HOSTS_TOTAL" ] && exit 1; exit 0')
        rc, rows = self.rolling('--host-command', fail_last)
        self.assertEqual(1, rc, self.stderr())
        for row in rows.values():
            self.assertResult('confirmed', row)
        rrc, rrows, err = self.report(self.path)
        self.assertEqual(rc, rrc, err)

    def test_max_hosts_larger_than_the_host_count(self):
        """Regression guard: --max-hosts 10 over 3 hosts is one step.

        All three are disabled and drained together (their servers go to
        the hosts outside the run), each server moved once, exit 0.
        """
        fake = self.cloud()
        rc, rows = self.rolling('--max-hosts', '10', '--enable-after')
        self.assertEqual(0, rc, self.stderr())
        for name, sid in self.sids.items():
            self.assertEqual(1, len(fake.records(sid)), name)
            self.assertIn(fake._servers[sid]['host'],
                          ('compute4', 'compute5'))

    def test_host_command_that_forks_a_daemon_and_prints_a_lot(self):
        """Regression guard: a host command prints 5 MB, leaves a daemon.

        The daemon is ``sleep 600 &``, its output still open.
        The command's exit is seen at once (the output goes to a file, not
        a pipe the daemon keeps open), the journal keeps only its tail, and
        the run goes on.
        """
        self.cloud()
        command = ('head -c 5000000 /dev/zero | tr "\\0" x; echo; '
                   'echo done-$OSC_MIGRATE_HOST; sleep 600 &')
        rc, rows = self.rolling('--host-command', command)
        self.assertEqual(0, rc, self.stderr())
        tails = [r['tail'] for r in self.records('host-command')]
        self.assertEqual(3, len(tails))
        self.assertTrue(all(len(t) <= 300 for t in tails), tails)
        self.assertIn('done-compute3', tails[-1])
        self.assertLess(os.path.getsize(self.path), 200000)


class TestStallRaces(base.UnkindNovaTestCase):

    def test_abort_on_stall_just_before_the_deadline(self):
        """--on-stall abort: the stall is found 2 s before --timeout.

        Nova's abort is asynchronous (the API casts
        live_migration_abort to the source compute, which signals the
        libvirt job; nova/compute/manager.py live_migration_abort), here
        taking 5 s. An abort sent at the deadline itself gets ABORT_GRACE
        (60 s) to be seen cancelled (step.py _deadline); an abort sent for
        a stall 2 s before the deadline gets only those 2 s (_stall_abort
        keeps the earlier deadline), so the operator reads "timeout: Nova
        has not cancelled the live migration by the deadline" for a
        migration Nova cancelled 3 s later: the server stayed on its
        source, the result should be 'aborted'. Fix: step.py
        _stall_abort, deadline = max(deadline, now + ABORT_GRACE).
        """
        fake = self.cloud()
        fake.timing['abort_delay'] = 5.0
        sid = fake.add_server('busy')
        fake.stall_live(sid)
        rc, row = self.watch('busy', '--start', '--live-migration',
                             '--on-stall', 'abort', '--stall-after', '3',
                             '--interval', '1', '--timeout', '7')
        fake.advance(10.0)  # Nova's cast is carried out
        record = fake.records(sid)[-1]
        self.assertEqual('cancelled', record['status'])
        self.assertEqual('aborted', row['Result'], row['Message'])

    def test_force_complete_as_it_completes(self):
        """Regression guard: force-complete meets a just-completed one.

        Nova answers 409/400 (nova/api/openstack/compute/
        server_migrations.py force_complete, InvalidMigrationState /
        InstanceInvalidState).
        The server is on its destination: the result is 'migrated', exit
        0, and force_complete was sent once.
        """
        fake = self.cloud()
        sid = fake.add_server('busy')
        fake.stall_live(sid)
        original = fake._migration_action

        def completes_first(req, s, mid):
            record = fake._record(s, mid)
            on_force = record.pop('on_force', None)
            if on_force is not None:
                on_force()
                fake.advance(5.0)
            return original(req, s, mid)
        fake._migration_action = completes_first
        rc, row = self.watch('busy', '--start', '--live-migration',
                             '--on-stall', 'force-complete',
                             '--stall-after', '3', '--interval', '1')
        self.assertEqual((0, 'migrated'), (rc, row['Result']),
                         row['Message'])
        self.assertEqual(1, len(fake.posts('force_complete')))


class _Placement:
    """Placement at the HTTP level with a provider tree (1.14+ in_tree).

    A libvirt compute with vGPUs has its VGPU inventory on child providers
    of the compute node's (nova/virt/libvirt/driver.py
    _update_provider_tree_for_vgpu, since Stein); a server with a vGPU
    holds VGPU there, VCPU/MEMORY_MB/DISK_GB on the root.
    """

    def __init__(self, tree, inventories, allocations):
        self.tree = tree                # root -> [child, ...]
        self.inventories = inventories  # provider -> rc -> total
        self.allocations = allocations  # provider -> consumer -> rc -> n

    def request(self, url, method, microversion=None, raise_exc=False,
                **kw):
        r = requests.Response()
        r.status_code = 200
        path, _, query = url.partition('?')
        parts = path.strip('/').split('/')
        body = None
        if path == '/resource_providers' and not query:
            body = {'resource_providers': [
                {'uuid': u, 'root_provider_uuid': root,
                 'parent_provider_uuid': None if u == root else root}
                for root, children in self.tree.items()
                for u in [root] + children]}
        elif len(parts) == 3 and parts[1] in self.inventories:
            uuid, what = parts[1], parts[2]
            if what == 'inventories':
                body = {'inventories': {
                    rc: {'total': n, 'reserved': 0, 'allocation_ratio': 1.0,
                         'max_unit': n, 'min_unit': 1, 'step_size': 1}
                    for rc, n in self.inventories[uuid].items()}}
            elif what == 'usages':
                used = {}
                for held in self.allocations.get(uuid, {}).values():
                    for rc, n in held.items():
                        used[rc] = used.get(rc, 0) + n
                body = {'usages': used}
            elif what == 'allocations':
                body = {'allocations': {
                    c: {'resources': res} for c, res in
                    self.allocations.get(uuid, {}).items()}}
        if body is None:
            r.status_code = 404
            body = {'errors': [{'status': 404, 'title': 'Not Found'}]}
        r._content = json.dumps(body).encode()
        return r


class TestCapacityNested(testtools.TestCase):

    def test_vgpu_on_a_child_provider_counts(self):
        """A server with a vGPU; the only other host has no GPU.

        Nova cannot place it there (the scheduler asks Placement for
        VGPU=1 in the whole tree). The operator expects the estimate to say
        "no capacity" (or at least "unknown"), since the issue asks for
        "any other class it holds". Today capacity.py reads only the root
        provider's allocations and inventories
        (/resource_providers/{root}/...), never the tree: the VGPU is not
        seen, and the estimate says "fits"; the run then fails with
        NoValidHost after the operator was told it would fit. Fix:
        placement.py/capacity.py read the tree (GET /resource_providers?
        in_tree=<root>, microversion 1.14) and sum the server's
        allocations and the candidate's free over it.
        """
        src, src_gpu, dst = 'root-src', 'child-src-pgpu', 'root-dst'
        p = _Placement(
            tree={src: [src_gpu], dst: []},
            inventories={src: {'VCPU': 16, 'MEMORY_MB': 65536},
                         src_gpu: {'VGPU': 4},
                         dst: {'VCPU': 16, 'MEMORY_MB': 65536}},
            allocations={src: {'vm': {'VCPU': 2, 'MEMORY_MB': 2048}},
                         src_gpu: {'vm': {'VGPU': 1}}})
        nova = mock.Mock()
        nova.hypervisors.return_value = [
            model.Hypervisor(src, 'src.node', 'src', True, True),
            model.Hypervisor(dst, 'dst.node', 'dst', True, True)]
        server = model.Server('vm', 'gpu-vm', 'ACTIVE', None, 'src')
        item = plan.PlanItem(server, model.Kind.LIVE, plan.PLANNED)
        estimate = cap.check(nova, pl.PlacementGateway(p), [item])
        self.assertNotEqual(cap.Fit.FITS, estimate.verdicts['vm'].fit,
                            estimate.message('vm'))
