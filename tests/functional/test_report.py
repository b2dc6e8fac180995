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

"""``openstack server migrate report`` needs no cloud and no credentials.

The real CLI, with no clouds.yaml anywhere it looks and no OS_* variable:
OSC runs a command whose ``auth_required`` is False without asking for any.
No cloud is started.
"""

import json
import os
import shutil
import subprocess

import fixtures
import testtools
from testtools import content

from tests.minicloud import fixture as minicloud

DATA = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'unit',
                    'data')


class TestReportWithoutCloud(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.home = self.useFixture(fixtures.TempDir()).path
        self.state = os.path.join(self.home, 'state')
        os.makedirs(os.path.join(self.state, 'osc-migrate-plus'))
        self.journal = os.path.join(self.state, 'osc-migrate-plus',
                                    'batch-20261130T093823Z-30190.jsonl')
        shutil.copy(os.path.join(DATA, 'journal-cold-confirm-3.jsonl'),
                    self.journal)

    def run_openstack(self, *args):
        # Nothing of the caller's cloud: no OS_*, a home without
        # clouds.yaml, run from a directory without one either.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('OS_', 'XDG_'))}
        env.update(HOME=self.home, XDG_STATE_HOME=self.state,
                   XDG_CONFIG_HOME=os.path.join(self.home, 'config'))
        for where in ('/etc/openstack/clouds.yaml',):
            if os.path.exists(where):
                self.skipTest('%s exists: cannot run without a cloud' % where)
        result = subprocess.run(
            [minicloud.openstack_cli()] + list(args), capture_output=True,
            text=True, env=env, cwd=self.home, stdin=subprocess.DEVNULL,
            timeout=120)
        self.addDetail('openstack %s' % ' '.join(args),
                       content.text_content(
                           'rc=%s\nstdout:\n%s\nstderr:\n%s' % (
                               result.returncode, result.stdout,
                               result.stderr)))
        return result

    def test_list_needs_no_cloud(self):
        result = self.run_openstack('server', 'migrate', 'report', '--list',
                                    '-f', 'json')
        self.assertEqual(0, result.returncode, result.stderr)
        [row] = json.loads(result.stdout)
        self.assertEqual((self.journal, 'finished', 3, 3),
                         (row['Journal'], row['State'], row['Servers'],
                          row['Done']))
        self.assertNotIn('Failed to import plugin', result.stderr)
        self.assertNotIn('auth', result.stderr.lower())

    def test_journal_and_html_need_no_cloud(self):
        page = os.path.join(self.home, 'page.html')
        result = self.run_openstack('server', 'migrate', 'report',
                                    self.journal, '--html', page, '-f',
                                    'json')
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertEqual({'confirmed'}, {r['Result'] for r in
                                         json.loads(result.stdout)})
        self.assertIn('3 of 3 servers migrated', result.stderr)
        self.assertGreater(os.path.getsize(page), 0)

    def test_help_lists_it(self):
        result = self.run_openstack('--help')
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertIn('server migrate report', result.stdout)

    def test_a_command_that_needs_the_cloud_still_asks(self):
        # The proof above means something: in this same environment, batch
        # (auth required) fails for want of credentials.
        result = self.run_openstack('server', 'migrate', 'batch', 'x',
                                    '--dry-run')
        self.assertNotEqual(0, result.returncode)
        self.assertIn('auth', result.stderr.lower())
