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

"""Arrows run one way: v1 -> engine -> model; gateways -> model."""

import ast
import os

import testtools

import osc_migrate_plus

PACKAGE = os.path.dirname(osc_migrate_plus.__file__)
# What each layer may import of the project.
ALLOWED = {
    'model': set(),
    'gateway': {'model'},
    'placement': {'model'},
    'plugin': set(),
    'engine': {'engine', 'model'},
    'v1': {'v1', 'engine', 'model', 'gateway', 'placement'},
}


def layer(module: str) -> str:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def project_imports(path: str):
    with open(path) as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and \
                node.module.startswith('osc_migrate_plus'):
            for alias in node.names:
                yield '%s.%s' % (node.module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith('osc_migrate_plus'):
                    yield alias.name


class TestLayers(testtools.TestCase):

    def test_no_module_imports_upwards(self):
        seen = {}
        for root, _, files in os.walk(PACKAGE):
            for name in files:
                if not name.endswith('.py') or name == '__init__.py':
                    continue
                path = os.path.join(root, name)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE))
                module = rel[:-3].replace(os.sep, '.')
                own = layer(module)
                for imported in project_imports(path):
                    seen.setdefault(own, set()).add(layer(imported))
                    self.assertIn(layer(imported), ALLOWED[own],
                                  '%s imports %s' % (module, imported))
        # The walk saw the layers it checks.
        self.assertEqual({'model'}, seen['gateway'])
        self.assertEqual({'model'}, seen['placement'])
        self.assertNotIn('model', seen)  # model imports nothing of ours
        self.assertLessEqual(seen['engine'], {'engine', 'model'})
