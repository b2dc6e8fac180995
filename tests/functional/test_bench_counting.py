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

"""A counted request is a real request: the benchmark's counter against the
client's own debug log of what it sent."""

import collections
import re
import urllib.parse

from benchmarks import counting
from tests.functional import base

# keystoneauth's debug line for each request it sends.
REQ = re.compile(r'^REQ: curl -g -i (?:--\S+ \S+ )*-X (\w+) (\S+)', re.M)


class TestCounting(base.MiniCloudTestCase):
    COMPUTES = 2

    def sent(self, stderr):
        """(method, path) of each request in the client's debug log."""
        # Placement's (batch's capacity estimate) are not in nova-api's
        # log: Nova's own Placement traffic would blur the count.
        placement = self.cloud.info['placement_url']
        return collections.Counter(
            (method, urllib.parse.urlsplit(url.strip('"')).path)
            for method, url in REQ.findall(stderr)
            if not url.strip('"').startswith(placement))

    def counted(self, lines):
        return collections.Counter(
            (line.split(' ')[0], line.split(' ')[1].split('?')[0])
            for line in lines)

    def check_same(self, *args):
        self.cloud.requests(reset=True)
        result = self.openstack('--debug', *args)
        lines = self.cloud.requests()
        sent = self.sent(result.stderr)
        self.assertGreater(sum(sent.values()), 0, 'no REQ lines parsed')
        self.assertEqual(sent, self.counted(lines))
        return lines

    def test_server_show(self):
        server = self.cloud.seed_servers('compute1', 1, prefix='count')[0]
        lines = self.check_same('server', 'show', server['id'])
        # It looked up the image too: identity and image calls count.
        self.assertTrue(any('/image/' in line for line in lines), lines)

    def test_watch_start_confirm(self):
        server = self.cloud.seed_servers('compute1', 1, prefix='count')[0]
        lines = self.check_same('server', 'migrate', 'watch', '--start',
                                '--confirm', '--interval', '1',
                                server['id'], '-f', 'json')
        tally = counting.tally(lines)
        self.assertEqual(1, tally['migrate'])
        self.assertEqual(1, tally['confirm'])

    def test_batch(self):
        ids = [s['id'] for s in self.cloud.seed_servers('compute1', 3,
                                                        prefix='count')]
        lines = self.check_same('server', 'migrate', 'batch', *ids,
                                '--confirm', '--interval', '1',
                                '-f', 'json')
        tally = counting.tally(lines)
        self.assertEqual((3, 3), (tally['migrate'], tally['confirm']))
        self.assertGreater(counting.poll_rounds(lines), 0)
