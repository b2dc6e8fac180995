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

"""``openstack server migrate report``: the batch's own report, again.

A batch runs against the fake Nova through the real command; then the
report command, given a client manager that fails on any use (no cloud),
rebuilds the same rows and the same exit code from the journal.
"""

import io
import json
import os
from unittest import mock
import xml.etree.ElementTree as ET

import fixtures
from testtools import content

from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus import placement as pl
from osc_migrate_plus.v1 import report as report_cmd
from tests.unit import fakenova
from tests.unit import fakeplacement
from tests.unit.v1 import test_unkind_nova

COMPARED = ('Server ID', 'Name', 'Project ID', 'Source Host',
            'Destination Host', 'Mode', 'Result', 'Attempts', 'Duration',
            'Message')


class ReportTestCase(test_unkind_nova.UnkindNovaTestCase):

    def cloud(self, **kwargs):
        fake = super().cloud(**kwargs)
        self.useFixture(fixtures.MonkeyPatch(
            'osc_migrate_plus.engine.journal.datetime',
            fakenova._client_datetime(fake)))
        return fake

    def report(self, *args, fmt='json'):
        app = mock.Mock()
        app.stdout = io.StringIO()
        app.stderr = io.StringIO()
        app.options.verbose_level = 1
        # No cloud: any use of the client manager fails the test.
        app.client_manager = mock.Mock(spec=[])
        cmd = report_cmd.ReportMigrations(app, None)
        parsed = cmd.get_parser('openstack server migrate report').parse_args(
            ['-f', fmt] + list(args))
        rc = cmd.run(parsed)
        self.addDetail('report %s' % ' '.join(args),
                       content.text_content(
                           app.stderr.getvalue() or '-'))
        out = app.stdout.getvalue()
        rows = json.loads(out) if fmt == 'json' and out.strip() else out
        return rc, rows, app.stderr.getvalue()

    def rows(self, *args):
        rc, rows, err = self.report(*args)
        return rc, {r['Server ID']: r for r in rows}, err

    def assertSameAsBatch(self, batch_rows, report_rows,  # noqa: N802
                          columns=COMPARED):
        self.assertEqual(sorted(batch_rows), sorted(report_rows))
        for sid, row in batch_rows.items():
            self.assertEqual({c: row[c] for c in columns},
                             {c: report_rows[sid][c] for c in columns})


class TestSameAsBatch(ReportTestCase):

    def test_finished_with_a_failure_and_a_skip(self):
        fake = self.cloud()
        good = fake.add_server('vm1')
        bad = fake.add_server('vm2')
        fake.add_server('off', status='ERROR')
        fake.fail_migrations(servers=[bad], message='No valid host found')
        rc, rows = self.batch('vm1', 'vm2', 'off', '--confirm',
                              '--state-file', self.path)
        self.assertEqual(1, rc)
        rrc, rebuilt, err = self.rows(self.path)
        self.assertEqual(rc, rrc)
        self.assertSameAsBatch(rows, rebuilt)
        self.assertIsNotNone(rebuilt[good]['Destination Host'])
        self.assertIn('No valid host found', rebuilt[bad]['Message'])
        self.assertIn('1 of 3 servers migrated, 1 failed, 1 skipped '
                      '(finished: the batch exited 1)', err)

    def test_live_all_migrated(self):
        fake = self.cloud()
        for n in range(3):
            fake.add_server('vm%d' % n)
        rc, rows = self.batch('--source-host', 'compute1', '--mode', 'live',
                              '--state-file', self.path)
        self.assertEqual(0, rc)
        rrc, rebuilt, _ = self.rows(self.path)
        self.assertEqual(0, rrc)
        self.assertSameAsBatch(rows, rebuilt)

    def test_killed_then_resumed(self):
        fake = self.cloud()
        fake.timing['cold_duration'] = 20
        sids = [fake.add_server('vm%d' % n) for n in range(3)]
        self.kill_when(lambda: self.journal_count('"submitted"') >= 1)
        self.assertRaises(test_unkind_nova.Kill, self.batch, 'vm0', 'vm1',
                          'vm2', '--confirm', '--max-parallel', '1',
                          '--state-file', self.path)
        rc, rebuilt, err = self.rows(self.path)
        self.assertEqual(130, rc)
        self.assertEqual(['interrupted', 'not-started', 'not-started'],
                         sorted(r['Result'] for r in rebuilt.values()))
        self.assertIn('interrupted: the batch exited 130', err)
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        rrc, rebuilt, _ = self.rows(self.path)
        self.assertEqual(0, rrc)
        # Same rows; the resumed run's figures (its attempts, duration).
        self.assertSameAsBatch(rows, rebuilt)
        for sid in sids:
            self.assertEqual('confirmed', rebuilt[sid]['Result'])

    def test_timeout_then_resumed(self):
        fake = self.cloud()
        fake.timing['cold_duration'] = 20
        sid = fake.add_server('vm1')
        rc, rows = self.batch('vm1', '--confirm', '--timeout', '5',
                              '--state-file', self.path)
        self.assertEqual(3, rc)
        rrc, rebuilt, _ = self.rows(self.path)
        self.assertEqual(3, rrc)
        self.assertSameAsBatch(rows, rebuilt)
        fake.advance(30)
        rc, rows = self.batch('--resume', self.path)
        rrc, rebuilt, _ = self.rows(self.path)
        self.assertEqual((0, 0), (rc, rrc))
        self.assertEqual('confirmed', rebuilt[sid]['Result'])
        self.assertSameAsBatch(rows, rebuilt)

    def test_max_failures_then_resumed(self):
        # The batch's rows for servers finished before a resume say so;
        # the report gives their own verdict: compare the rest.
        fake = self.cloud()
        bad = fake.add_server('vm1')
        fake.add_server('vm2')
        fake.fail_migrations(servers=[bad])
        rc, rows = self.batch('vm1', 'vm2', '--confirm', '--max-parallel',
                              '1', '--max-failures', '1', '--state-file',
                              self.path)
        rrc, rebuilt, _ = self.rows(self.path)
        self.assertEqual((1, 1), (rc, rrc))
        self.assertSameAsBatch(rows, rebuilt)
        fake.clear_failures()
        rc, rows = self.batch('--resume', self.path)
        rrc, rebuilt, _ = self.rows(self.path)
        self.assertEqual((1, 1), (rc, rrc))
        self.assertSameAsBatch(rows, rebuilt, ('Server ID', 'Result'))
        self.assertTrue(rows[bad]['Message'].endswith(
            rebuilt[bad]['Message']))
        self.assertIn('finished before the resume', rows[bad]['Message'])


class TestHowTheRunEnded(ReportTestCase):
    """Exit codes batch decides beyond the results, rebuilt too."""

    def test_an_error_of_novas_ended_it(self):
        fake = self.cloud()
        fake.timing['cold_duration'] = 30
        sids = [fake.add_server('vm%d' % n) for n in range(2)]

        def refuse():
            if self.journal_count('"event":"submitted"') >= 2:
                fake.fail_reads('/servers/detail', status=403, times=None)
        fake.sleep_hooks.append(refuse)
        rc, rows = self.batch('vm0', 'vm1', '--confirm', '--state-file',
                              self.path)
        self.assertEqual(1, rc)
        rrc, rebuilt, err = self.rows(self.path)
        self.assertEqual(1, rrc)
        self.assertSameAsBatch(rows, rebuilt)
        for sid in sids:
            self.assertIn("following stopped by Nova's answer",
                          rebuilt[sid]['Message'])

    def test_a_host_check_failed_it(self):
        fake = self.cloud()
        placement = fakeplacement.FakePlacement(fake)
        self.useFixture(fixtures.MockPatch(
            'osc_migrate_plus.v1.batch_hostcheck.placement_gateway',
            return_value=pl.PlacementGateway(placement.proxy,
                                             sleep=lambda s: None)))
        sids = [fake.add_server('vm%d' % n) for n in range(2)]
        late = []

        def boot():
            if not late and self.journal_count('"event":"submitted"'):
                late.append(fake.add_server('late-arrival'))
        fake.sleep_hooks.append(boot)
        rc, rows = self.batch('--source-host', 'compute1', '--confirm',
                              '--state-file', self.path)
        self.assertEqual(1, rc)  # every server confirmed, the host not empty
        self.assertEqual({'confirmed'}, {rows[s]['Result'] for s in sids})
        rrc, rebuilt, err = self.rows(self.path)
        self.assertEqual(1, rrc)
        self.assertSameAsBatch(rows, rebuilt)


class TestCommand(ReportTestCase):

    def test_usage(self):
        for args, words in (
                ((), 'name a <journal>, or use --list'),
                (('--list', 'x'), 'drop <journal> or --list'),
                (('--list', '--html', 'p.html'), '--html needs a <journal>')):
            rc, out, err = self.report(*args)
            self.assertEqual(2, rc, args)
            self.assertIn(words, err)
            self.assertEqual('', out)

    def test_no_credentials_needed(self):
        # OSC skips auth (and never loads credentials) for such a command.
        self.assertIs(False, report_cmd.ReportMigrations.auth_required)

    def test_damaged_journal_same_error_as_resume(self):
        with open(self.path, 'w') as f:
            f.write('{"type":"header","version":1}\n{oops\n')
        expected = self.assertRaises(jrn.JournalError, jrn.replay,
                                     self.path)
        rc, out, err = self.report(self.path)
        self.assertEqual(2, rc)
        self.assertIn(str(expected), err)
        self.assertIn('damaged at line 2', err)
        self.assertEqual('', out)
        # Reading changed nothing.
        with open(self.path) as f:
            self.assertEqual('{"type":"header","version":1}\n{oops\n',
                             f.read())

    def test_html_written_and_table_printed(self):
        fake = self.cloud()
        fake.add_server('<script>alert(1)</script>')
        rc, rows = self.batch('--source-host', 'compute1', '--confirm',
                              '--state-file', self.path)
        page = os.path.join(self.tmp, 'page.html')
        rrc, rebuilt, err = self.rows(self.path, '--html', page)
        self.assertEqual(rc, rrc)
        self.assertEqual(rows.keys(), rebuilt.keys())
        self.assertIn('wrote %s' % page, err)
        with open(page) as f:
            text = f.read()
        tree = ET.fromstring(text.split('\n', 1)[1])
        self.assertEqual(1, len(tree.findall(".//*[@class='lane']")))
        self.assertNotIn('<script>', text)

    def test_html_unwritable(self):
        fake = self.cloud()
        fake.add_server('vm1')
        self.batch('vm1', '--state-file', self.path)
        rc, _, err = self.report(self.path, '--html',
                                 os.path.join(self.tmp, 'no', 'p.html'))
        self.assertEqual(2, rc)
        self.assertIn('--html: cannot write', err)

    def test_list(self):
        self.useFixture(fixtures.EnvironmentVariable('XDG_STATE_HOME',
                                                     self.tmp))
        fake = self.cloud()
        fake.add_server('vm1')
        fake.add_server('vm2', host='compute2')
        first = os.path.join(jrn.default_dir(), 'one.jsonl')
        self.batch('vm1', '--confirm', '--state-file', first)
        second = os.path.join(jrn.default_dir(), 'two.jsonl')
        self.batch('--source-host', 'compute2', '--state-file', second)
        with open(os.path.join(jrn.default_dir(), 'bad.jsonl'), 'w') as f:
            f.write('nonsense\n')
        rc, rows, err = self.report('--list')
        self.assertEqual(0, rc)
        self.assertEqual(list(report_cmd.LIST_COLUMNS), list(rows[0]))
        by_path = {r['Journal']: r for r in rows}
        self.assertEqual(
            {'Selection': 'vm1', 'Servers': 1, 'Done': 1, 'Failed': 0,
             'In Flight': 0, 'State': 'finished'},
            {k: by_path[first][k] for k in ('Selection', 'Servers', 'Done',
                                            'Failed', 'In Flight', 'State')})
        self.assertEqual('--source-host compute2',
                         by_path[second]['Selection'])
        self.assertTrue(by_path[first]['Started'].endswith('Z'))
        bad = os.path.join(jrn.default_dir(), 'bad.jsonl')
        self.assertEqual('damaged', by_path[bad]['State'])
        self.assertIn('damaged at line 1', err)
