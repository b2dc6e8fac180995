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

"""batch over several source hosts: repeated --source-host, --aggregate."""

import json

from osc_lib import exceptions

from tests.unit import fakenova
from tests.unit.v1 import test_unkind_nova


class SeveralHostsTest(test_unkind_nova.UnkindNovaTestCase):

    def header(self):
        with open(self.path) as f:
            return json.loads(f.readline())

    def test_two_source_hosts_one_batch(self):
        fake = self.cloud(hosts=4)
        on1 = [fake.add_server('a%d' % n, host='compute1') for n in range(2)]
        on2 = [fake.add_server('b%d' % n, host='compute2') for n in range(2)]
        fake.add_server('stays', host='compute3')
        rc, rows = self.batch('--source-host', 'compute1', '--source-host',
                              'compute2', '--confirm', '--disable-source',
                              '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertEqual(sorted(on1 + on2), sorted(rows))
        for sid in on1 + on2:
            self.assertResult('confirmed', rows[sid])
            self.assertNotIn(fake._servers[sid]['host'],
                             ('compute1', 'compute2'))
        # Both sources disabled (so neither took the other's servers).
        self.assertEqual(['compute1', 'compute2'], sorted(
            h for h, s in fake.services.items() if s['status'] == 'disabled'))
        self.assertEqual(['compute1', 'compute2'],
                         self.header()['selection']['source_hosts'])

    def test_aggregate(self):
        fake = self.cloud(hosts=3)
        fake.aggregates['rack1'] = ['compute2']
        sid = fake.add_server('in-rack', host='compute2')
        fake.add_server('elsewhere', host='compute1')
        rc, rows = self.batch('--aggregate', 'rack1', '--confirm',
                              '--state-file', self.path)
        self.assertEqual(0, rc)
        self.assertEqual([sid], list(rows))
        self.assertResult('confirmed', rows[sid])
        selected = self.header()['selection']
        self.assertEqual(('rack1', ['compute2']),
                         (selected['aggregate'], selected['source_hosts']))

    def test_aggregate_refused_to_a_manager_changes_nothing(self):
        fake = self.cloud(caller=fakenova.Caller('manager', 'p1'))
        fake.aggregates['rack1'] = ['compute1']
        fake.add_server('vm', host='compute1')
        exc = self.assertRaises(exceptions.CommandError, self.batch,
                                '--aggregate', 'rack1', '--state-file',
                                self.path)
        self.assertIn('--aggregate rack1: Nova does not let you list host '
                      'aggregates', str(exc))
        self.assertIn('os_compute_api:os-aggregates:index', str(exc))
        self.assertEqual(0, fake.count('POST', 'migrate'))

    def test_resume_keeps_every_source_host(self):
        fake = self.cloud(hosts=3)
        fake.timing['cold_duration'] = 30
        a = fake.add_server('a', host='compute1')
        b = fake.add_server('b', host='compute2')
        self.kill_when(lambda: fake.count('POST', 'migrate') >= 1)
        # --disable-source: else Nova may move a onto compute2, and the
        # host check at the end fails the run (a server on a source host).
        self.assertRaises(test_unkind_nova.Kill, self.batch,
                          '--source-host', 'compute1', '--source-host',
                          'compute2', '--confirm', '--max-parallel', '1',
                          '--disable-source', '--state-file', self.path)
        rc, rows = self.batch('--resume', self.path)
        self.assertEqual(0, rc)
        self.assertResult('confirmed', rows[a])
        self.assertResult('confirmed', rows[b])
        self.assertEqual(2, fake.count('POST', 'migrate'))
