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

import argparse
from importlib import metadata
import json
import subprocess
import sys
from unittest import mock

import testtools

from osc_migrate_plus import plugin


class TestPlugin(testtools.TestCase):

    def test_api_name_is_not_core_compute(self):
        self.assertNotEqual('compute', plugin.API_NAME)

    def test_default_version_names_the_command_group(self):
        # OSC loads group "openstack.<API_NAME>.v<version>"; a None default
        # would silently load no command.
        group = 'openstack.%s.v%s' % (plugin.API_NAME,
                                      plugin.DEFAULT_API_VERSION)
        self.assertIn(plugin.DEFAULT_API_VERSION, plugin.API_VERSIONS)
        commands = {ep.name for ep in metadata.entry_points().select(
            group=group)}
        self.assertIn('server_migrate_watch', commands)
        [hook] = metadata.entry_points().select(
            group='openstack.cli.extension', name=plugin.API_NAME)
        self.assertEqual('osc_migrate_plus.plugin', hook.value)

    def test_build_option_parser_adds_nothing(self):
        parser = argparse.ArgumentParser()
        before = list(parser._actions)
        self.assertIs(parser, plugin.build_option_parser(parser))
        self.assertEqual(before, parser._actions)

    def test_make_client_is_the_sdk_compute_proxy(self):
        instance = mock.Mock()
        self.assertIs(instance.sdk_connection.compute,
                      plugin.make_client(instance))

    def test_import_is_cheap(self):
        # OSC imports plugin.py on every call: it must pull in nothing.
        code = ('import sys; before = set(sys.modules); '
                'import osc_migrate_plus.plugin; import json; '
                'print(json.dumps(sorted(set(sys.modules) - before)))')
        out = subprocess.run([sys.executable, '-c', code], check=True,
                             capture_output=True, text=True).stdout
        added = json.loads(out)
        # Only the standard library (which OSC has loaded anyway).
        heavy = [m for m in added if m.split('.')[0] not in
                 sys.stdlib_module_names and m.split('.')[0] not in (
                     'osc_migrate_plus',)]
        self.assertEqual([], heavy)
        self.assertIn('osc_migrate_plus.plugin', added)
