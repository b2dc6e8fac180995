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

"""Load: 200 servers over 5 hosts, ``--mode auto --confirm --max-parallel
20``, three runs in a row, every invariant after each run.

Not in CI (about 15 minutes); ``tox -e reliability`` runs it. Its figures
go to ``$RELIABILITY_LOG`` with the scenarios'.
"""

import json
import os

from benchmarks import measure
from tests.reliability import base

SERVERS = int(os.environ.get('RELIABILITY_LOAD_SERVERS', '200'))
RUNS = 3


class TestLoad(base.ReliabilityTestCase):
    COMPUTES = 5

    def test_200_servers_three_runs_in_a_row(self):
        ids = []
        for i, host in enumerate(self.cloud.hosts):
            count = SERVERS // len(self.cloud.hosts)
            ids += [s['id'] for s in self.cloud.seed_servers(
                host, count, stopped=count // 4, prefix='load%d' % i,
                timeout=1800)]
        listing = os.path.join(self.state, 'servers.txt')
        with open(listing, 'w') as f:
            f.write('\n'.join(ids) + '\n')
        for n in range(RUNS):
            before = self.newest_records(ids)
            sources = {sid: self._server(sid)['OS-EXT-SRV-ATTR:host']
                       for sid in ids}
            path = self.journal()
            self.cloud.requests(reset=True)
            cost, out = measure.run(
                [*self.cloud.cli(), 'server', 'migrate', 'batch',
                 '--servers-from', listing, '--mode', 'auto', '--confirm',
                 '--max-parallel', '20',
                 '--max-per-source', '8', '--max-per-destination', '8',
                 '--state-file', path, '--quiet', '-f', 'json'],
                self.env, timeout=3600)
            requests = len(self.cloud.requests())
            rows = {r['Server ID']: r for r in json.loads(out)}
            run = base.Run(0 if not cost.failures else 1, out,
                           '\n'.join(cost.failures), rows)
            results = self.check('load run %d' % (n + 1), ids, run, before,
                                 sources, path)
            self.assertEqual(set(), set(results.values()) - {
                'confirmed', 'migrated'})
            base._log({'load': n + 1, 'servers': len(ids),
                       'wall': round(cost.wall, 1),
                       'cpu': round(cost.cpu, 2),
                       'requests_per_server': round(requests / len(ids), 2),
                       'peak_rss_mb': round(cost.peak_rss_mb),
                       'cloud_rss_mb': round(self.cloud.rss_mb)})
