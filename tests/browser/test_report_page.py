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

"""The report page of a real 50-server drain, in a real browser.

The real-Nova harness drains a host of 50 servers (cold, --confirm), a few
of them failing for a while; ``openstack server migrate report --html``
renders the journal; headless Chromium (the Debian package, installed by
``tools/ensure-chromium`` in ``tox -e report-browser``) opens the page and
dumps the DOM it rendered, which must hold one lane per server and the
run's own numbers; then a screenshot. With $REPORT_SCREENSHOT set the
screenshot is copied there (the docs' doc/source/user/report-timeline.png).
"""

import html.parser
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

from testtools import content

from tests.functional import base

SERVERS = 50
HOSTILE = '<script>alert(1)</script>'


class _Dom(html.parser.HTMLParser):
    """What the test reads of the rendered DOM."""

    def __init__(self):
        super().__init__()
        self.lanes = []
        self.counts = {}
        self.scripts = 0
        self._count = None
        self.text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'script':
            self.scripts += 1
        if tag == 'g' and attrs.get('class') == 'lane':
            self.lanes.append(attrs.get('data-server'))
        self._count = attrs.get('data-count') if tag == 'td' else None

    def handle_data(self, data):
        self.text.append(data)
        if self._count:
            self.counts[self._count] = int(data)
            self._count = None


def chromium(*args, timeout=180):
    binary = shutil.which('chromium')
    if binary is None:
        raise AssertionError('chromium is not installed: run this through '
                             'tox -e report-browser (tools/ensure-chromium)')
    profile = tempfile.mkdtemp(prefix='report-chromium-')
    try:
        return subprocess.run(
            [binary, '--headless', '--disable-gpu', '--no-sandbox',
             '--hide-scrollbars', '--user-data-dir=' + profile] + list(args),
            capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class TestReportPageInBrowser(base.MiniCloudTestCase):

    def test_fifty_server_drain(self):
        work = tempfile.mkdtemp(prefix='report-browser-')
        self.addCleanup(shutil.rmtree, work, True)
        prefix = 'web-%s' % uuid.uuid4().hex[:4]
        seeded = self.cloud.seed_servers('compute1', SERVERS, prefix=prefix,
                                         timeout=900)
        self.openstack('server', 'set', '--name', HOSTILE, seeded[7]['id'])
        journal = os.path.join(work, 'drain.jsonl')
        # Migrations to compute3 fail until two have: failures to mark.
        self.cloud.fail_migrations(['compute3'])
        cmd = self.cloud.cli('admin') + [
            'server', 'migrate', 'batch', '--source-host', 'compute1',
            '--confirm', '--interval', '1', '--max-parallel', '8',
            '--max-per-source', '8', '--max-per-destination', '4',
            '--state-file', journal, '-f', 'json']
        proc = subprocess.Popen(cmd, env=self.cloud.cli_env(),
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
        failing = True
        deadline = time.monotonic() + 900
        while proc.poll() is None and time.monotonic() < deadline:
            if failing and os.path.exists(journal):
                with open(journal) as f:
                    if f.read().count('"result":"failed"') >= 2:
                        self.cloud.reset()
                        failing = False
            time.sleep(0.5)
        out, err = proc.communicate(timeout=60)
        self.addDetail('batch stderr', content.text_content(err))
        batch = {r['Server ID']: r for r in json.loads(out)}
        self.assertEqual(SERVERS, len(batch))

        page = os.path.join(work, 'report.html')
        result = self.openstack('server', 'migrate', 'report', journal,
                                '--html', page, '-f', 'json',
                                expect_rc=proc.returncode)
        rebuilt = {r['Server ID']: r for r in json.loads(result.stdout)}
        self.assertEqual({k: r['Result'] for k, r in batch.items()},
                         {k: r['Result'] for k, r in rebuilt.items()})

        shown = chromium('--dump-dom', 'file://' + page)
        self.assertEqual(0, shown.returncode, shown.stderr[-2000:])
        dom = _Dom()
        dom.feed(shown.stdout)
        self.assertEqual(sorted(batch), sorted(dom.lanes))
        results = [r['Result'] for r in batch.values()]
        done = results.count('confirmed')
        self.assertEqual(
            {'servers': SERVERS, 'done': done,
             'failed': SERVERS - done, 'skipped': 0, 'inflight': 0,
             'queued': 0}, dom.counts)
        # The hostile name is text on the page, never a script.
        self.assertEqual(0, dom.scripts)
        self.assertIn(HOSTILE, ''.join(dom.text))

        shot = os.path.join(work, 'report-timeline.png')
        taken = chromium('--screenshot=' + shot, '--window-size=1400,1600',
                         'file://' + page)
        self.assertEqual(0, taken.returncode, taken.stderr[-2000:])
        self.assertGreater(os.path.getsize(shot), 10000)
        target = os.environ.get('REPORT_SCREENSHOT')
        if target:
            shutil.copy(shot, target)
