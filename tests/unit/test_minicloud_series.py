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

"""The harness's Nova series: pins in step, the choice from the env."""

import os
import re

import fixtures
import testtools

from tests.minicloud import venv


def _pins(path):
    with open(path) as f:
        return {m.group(1).lower().replace('_', '-'): m.group(2)
                for m in re.finditer(r'^([A-Za-z0-9_.-]+)==(\S+)$', f.read(),
                                     re.M)}


class TestSeries(testtools.TestCase):

    def test_each_series_pins_its_nova_and_placement(self):
        for name, (nova, placement) in venv.SERIES.items():
            for path in (venv.requirements(name), venv.constraints(name)):
                pins = _pins(path)
                self.assertEqual((nova, placement),
                                 (pins.get('nova'),
                                  pins.get('openstack-placement')),
                                 path)

    def test_constraints_pin_the_whole_venv(self):
        # The harness patches oslo.db internals: what it touches is pinned.
        for name in venv.SERIES:
            pins = _pins(venv.constraints(name))
            for dist in ('oslo.db', 'sqlalchemy', 'oslo.messaging',
                         'eventlet', 'testtools', 'wsgi-intercept',
                         'fixtures'):
                self.assertIn(dist, pins, (name, dist))

    def test_older_series_name_their_upstream_constraints(self):
        for name in venv.SERIES:
            if name == venv.DEFAULT_SERIES:
                continue
            with open(venv.constraints(name)) as f:
                header = f.readline() + f.readline()
            self.assertIn('upper-constraints', header)
            self.assertIn(name, header)

    def test_series_from_the_environment(self):
        self.useFixture(fixtures.EnvironmentVariable('MINICLOUD_SERIES'))
        self.assertEqual(venv.DEFAULT_SERIES, venv.series())
        self.useFixture(fixtures.EnvironmentVariable('MINICLOUD_SERIES',
                                                     '2024.1'))
        self.assertEqual('2024.1', venv.series())
        self.assertEqual('2025.1', venv.series('2025.1'))
        self.useFixture(fixtures.EnvironmentVariable('MINICLOUD_SERIES',
                                                     'zed'))
        error = self.assertRaises(ValueError, venv.series)
        self.assertIn("unknown Nova series 'zed'", str(error))

    def test_each_series_has_its_own_venv(self):
        self.useFixture(fixtures.EnvironmentVariable('MINICLOUD_VENV_DIR',
                                                     '/w'))
        paths = {venv.default_path(name) for name in venv.SERIES}
        self.assertEqual({'/w/minicloud-cloud-' + n for n in venv.SERIES},
                         paths)

    def test_compat_list_names_older_series_tests(self):
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, '..', 'functional', 'compat-tests.txt')
        with open(path) as f:
            ids = [line.split('#')[0].strip() for line in f]
        ids = [i for i in ids if i]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertTrue(all(i.startswith('tests.functional.test_')
                            for i in ids), ids)
