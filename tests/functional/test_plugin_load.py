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

"""The plugin loads in a real ``openstack`` process.

If it failed to import, OSC would only warn, and ``openstack server migrate
watch X`` would be parsed by core as "cold-migrate the server named watch".
"""

import json
import os
import subprocess

import testtools

from tests.minicloud import fixture as minicloud


def run_openstack(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith('OS_')}
    return subprocess.run([minicloud.openstack_cli()] + list(args),
                          capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120)


class TestPluginLoads(testtools.TestCase):

    def test_no_import_failure_and_module_listed(self):
        result = run_openstack('module', 'list', '--all', '-f', 'json')
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertNotIn('Failed to import plugin', result.stderr)
        self.assertIn('osc_migrate_plus', json.loads(result.stdout))

    def test_help_does_not_crash(self):
        # A plugin re-adding --os-compute-api-version makes argparse crash
        # the whole CLI here.
        result = run_openstack('--help')
        self.assertEqual(0, result.returncode, result.stderr)
        self.assertNotIn('Failed to import plugin', result.stderr)
        self.assertIn('--os-compute-api-version', result.stdout)
        self.assertIn('server migrate watch', result.stdout)
        self.assertIn('server migrate batch', result.stdout)
