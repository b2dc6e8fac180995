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

"""The batch command: options, usage errors, the exit code."""

import testtools

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import selection
from osc_migrate_plus import model
from osc_migrate_plus.v1 import batch as batch_cmd
from osc_migrate_plus.v1 import common


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
        self.check(['--resume', 'j', '--aggregate', 'a'], 'drop --aggregate')
        self.check(['--source-host', 'c1', '--source-host', 'c1'],
                   'names a host twice: c1, c1')

    def test_project_and_status_narrow_named_servers(self):
        args = self.parse('a', 'b', 'c', '--project', 'p1', '--status',
                          'active')
        batch_cmd.BatchMigrate.validate(args)
        srvs = [model.Server('a', 'a', 'ACTIVE', None, 'c1', 'p1'),
                model.Server('b', 'b', 'ACTIVE', None, 'c1', 'p2'),
                model.Server('c', 'c', 'SHUTOFF', None, 'c1', 'p1')]
        items = selection.plan_items(srvs, selection.Selection(
            names=args.servers, project=args.project, status=args.status,
            mode=args.mode))
        self.assertEqual([('planned', ''), ('skipped', 'not in project p1'),
                          ('skipped', 'status is SHUTOFF, not ACTIVE')],
                         [(i.verdict, i.reason) for i in items])

    def test_defaults_documented_and_conservative(self):
        args = self.parse('vm')
        batch_cmd.BatchMigrate.validate(args)
        o = batch_cmd.BatchMigrate(None, None)._options(args)
        self.assertEqual(('cold', 4, 2, 2, 3, 3600, 2.0),
                         (o.mode, o.max_parallel, o.max_per_source,
                          o.max_per_destination, o.retries, o.timeout,
                          o.interval))
        # Limits not given stay unset in the arguments: a resume takes the
        # journal's then.
        self.assertEqual((None, None, None, None, None), (
            args.max_parallel, args.max_per_source,
            args.max_per_destination, args.timeout, args.max_failures))
        self.assertIn('(default: 4)', batch_cmd.BatchMigrate(None, None)
                      .get_parser('batch').format_help())
        args = self.parse('vm', '--live-migration')
        batch_cmd.BatchMigrate.validate(args)
        self.assertEqual('live', args.mode)

    def test_one_default_in_one_place(self):
        args = self.parse('vm')
        batch_cmd.BatchMigrate.validate(args)
        o = batch_cmd.BatchMigrate(None, None)._options(args)
        self.assertEqual(
            (batch.Options.max_parallel, batch.Options.max_per_source,
             batch.Options.max_per_destination, batch.Options.retries),
            (o.max_parallel, o.max_per_source, o.max_per_destination,
             o.retries))


class TestExitCode(testtools.TestCase):

    def entries(self, *results):
        out = []
        for result in results:
            entry = batch.Entry(None, None)
            entry.result = model.Result(result)
            out.append(entry)
        return out

    def test_table(self):
        table = [
            (('confirmed', 'migrated'), 0),
            (('confirmed', 'deleted'), 0),   # nothing left to move
            (('confirmed', 'timeout'), 3),
            (('confirmed', 'timeout', 'failed'), 1),
            (('skipped',), 1), (('not-started',), 1), (('reverted',), 1),
        ]
        for results, code in table:
            self.assertEqual(code, batch_cmd.batch_exit_code(
                self.entries(*results), True), results)
        self.assertEqual(130, batch_cmd.batch_exit_code(
            self.entries('interrupted'), False))
