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

import io
import re

import testtools

from osc_migrate_plus import model
from osc_migrate_plus.v1 import progress

SERVER = model.Server('sid', 'web', 'RESIZE', 'resize_migrating', 'c1')
LIVE = model.Migration(3, 'u', 'live-migration', 'running', 'c1', 'c2')


class TestProgress(testtools.TestCase):

    def test_not_a_tty_one_stamped_line_per_phase(self):
        out = io.StringIO()
        p = progress.StderrProgress(out, tty=False)
        p.phase(SERVER, None, 'starting', 0)
        p.tick(SERVER, None, 'starting', 1, None)  # no line for a tick
        p.phase(SERVER, LIVE, 'running', 3)
        lines = out.getvalue().splitlines()
        self.assertEqual(2, len(lines))
        self.assertRegex(lines[1], r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ '
                                   r'web \(sid\): running \(c1 -> c2, 3s\)$')

    def test_tty_rewrites_one_line_with_live_progress(self):
        out = io.StringIO()
        p = progress.StderrProgress(out, tty=True)
        self.assertTrue(p.wants_live_progress)
        p.phase(SERVER, LIVE, 'running', 10)
        p.tick(SERVER, LIVE, 'running', 10,
               {'memory_total_bytes': 200, 'memory_processed_bytes': 50,
                'disk_total_bytes': 10, 'disk_processed_bytes': 10})
        p.close()
        text = out.getvalue()
        self.assertTrue(text.startswith('\r\x1b[K'))
        self.assertIn('memory 25% disk 100% ETA 30s', text)
        self.assertTrue(text.endswith('\n'))

    def test_quiet_prints_nothing_but_messages(self):
        out = io.StringIO()
        p = progress.StderrProgress(out, quiet=True, tty=True)
        self.assertFalse(p.wants_live_progress)
        p.phase(SERVER, None, 'starting', 0)
        p.tick(SERVER, None, 'starting', 0, None)
        p.note(SERVER, 'confirm sent')
        self.assertEqual('', out.getvalue())
        p.message('Interrupted')
        self.assertEqual('Interrupted\n', out.getvalue())

    def test_tenant_names_cannot_drive_the_terminal(self):
        out = io.StringIO()
        evil = model.Server('sid', 'x\n\x1b[2J$(touch pwned)', 'ACTIVE',
                            None, 'c1')
        progress.StderrProgress(out, tty=False).phase(evil, None, 'x', 0)
        line = out.getvalue()
        self.assertEqual(1, line.count('\n'))
        self.assertNotIn('\x1b', line)
        self.assertIn('x\\x0a\\x1b[2J$(touch pwned)', line)

    def test_eta_only_with_partial_memory(self):
        self.assertEqual('', progress.live_progress_text(None, 5))
        self.assertEqual('memory 0%', progress.live_progress_text(
            {'memory_total_bytes': 10, 'memory_processed_bytes': 0}, 5))
        self.assertTrue(re.match('memory 50% ETA 5s', progress.
                                 live_progress_text(
                                     {'memory_total_bytes': 10,
                                      'memory_processed_bytes': 5}, 5)))
