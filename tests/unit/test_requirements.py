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

"""Every package the plugin imports at run time is declared.

A venv with python-openstackclient may happen to have it (cliff brings
rich today): that proves nothing for the next release of either.
"""

import ast
import importlib.metadata
import os
import re
import sys

import testtools

import osc_migrate_plus

PACKAGE = os.path.dirname(osc_migrate_plus.__file__)
REQUIREMENTS = os.path.join(PACKAGE, '..', 'requirements.txt')


def _norm(name):
    return re.sub(r'[-_.]+', '-', name).lower()


def imported_modules():
    """Top-level modules the package imports, stdlib and itself left out."""
    found = set()
    for root, _, files in os.walk(PACKAGE):
        for name in files:
            if not name.endswith('.py'):
                continue
            with open(os.path.join(root, name)) as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    found.update(a.name.split('.')[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and \
                        not node.level:
                    found.add(node.module.split('.')[0])
    return found - set(sys.stdlib_module_names) - {'osc_migrate_plus'}


def declared():
    with open(REQUIREMENTS) as f:
        return {_norm(re.split(r'[<>=!~ ;#]', line.strip(), maxsplit=1)[0])
                for line in f if line.strip() and not line.startswith('#')}


class TestRequirements(testtools.TestCase):

    def test_every_import_is_declared(self):
        dists = importlib.metadata.packages_distributions()
        missing = {}
        for module in sorted(imported_modules()):
            names = {_norm(d) for d in dists.get(module, [module])}
            if not names & declared():
                missing[module] = sorted(names)
        self.assertEqual({}, missing, 'imported, not in requirements.txt')

    def test_the_check_sees_rich(self):
        # The live status line: the import that was once undeclared.
        self.assertIn('rich', imported_modules())
