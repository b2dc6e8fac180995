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

"""--max-parallel auto against the real Nova."""

import json

from tests.functional import test_batch


class TestAutoPace(test_batch.BatchTestCase):

    def test_auto_drains_each_server_moved_once(self):
        seeded = self.seed('compute1', 4)
        ids = [s['id'] for s in seeded]
        path = self.journal()
        rows, result = self.batch(*ids, '--confirm', '--max-parallel',
                                  'auto', '--max-per-source', '4',
                                  '--max-per-destination', '4',
                                  '--interval', '1', '--state-file', path)
        self.assertEqual(sorted(ids), sorted(rows))
        for sid in ids:
            self.assertEqual('confirmed', rows[sid]['Result'],
                             rows[sid]['Message'])
            self.assertNotEqual('compute1', self.server_view(sid)['host'])
            # Moved once: one migration record, confirmed.
            [record] = self.records(sid)
            self.assertEqual('confirmed', record['Status'])
        self.assertIn('4 of 4 servers migrated', result.stderr)
        # The journal keeps auto for a resume.
        with open(path) as f:
            header = json.loads(f.readline())
        self.assertEqual('auto', header['limits']['max_parallel'])
