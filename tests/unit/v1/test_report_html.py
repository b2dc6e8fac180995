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

"""The HTML page: well-formed, self-contained, every tenant string escaped."""

import datetime
import os
import xml.etree.ElementTree as ET

import fixtures
import testtools

from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import report
from osc_migrate_plus.v1 import batch
from osc_migrate_plus.v1 import report_html

HOSTILE = ('<script>alert(1)</script>', '"onmouseover=alert(1) x="',
           "'><img src=x onerror=alert(1)>", 'a&amp;b', ']]><!--')
T0 = datetime.datetime(2026, 11, 30, 1, 0, tzinfo=datetime.timezone.utc)


def at(seconds):
    return (T0 + datetime.timedelta(seconds=seconds)).isoformat()


def write_journal(path, servers, failing=(), timing_out=()):
    """A cold --confirm drain of ``servers`` (id, name, host), 2 at a time."""
    j = jrn.Journal.create(path, {
        'ts': at(0), 'options': {'mode': 'cold', 'confirm': True,
                                 'verify_command': 'check "$x" <&>'},
        'limits': {'max_parallel': 2, 'max_per_source': 2},
        'selection': {'servers': [s[1] for s in servers]}})
    j.write({'type': 'plan', 'ts': at(0), 'servers': [
        {'id': sid, 'name': name, 'project_id': 'p', 'source': host,
         'status': 'ACTIVE', 'mode': 'cold', 'verdict': 'planned',
         'reason': ''} for sid, name, host in servers]})
    for n, (sid, name, host) in enumerate(servers):
        t = 10 * (n // 2)
        j.event(sid, 'submitting', ts=at(t), baseline_id=0, attempt=1)
        j.event(sid, 'submitted', ts=at(t + 0.5))
        j.event(sid, 'phase', ts=at(t + 1), phase='migrating')
        if sid in failing:
            j.event(sid, 'verdict', ts=at(t + 5), result='failed',
                    message='migration 1 is error: <b>No valid host</b> '
                            '& "more"', source=host, name=name)
            continue
        if sid in timing_out:
            j.event(sid, 'verdict', ts=at(t + 9), result='timeout',
                    message='timed out after 9s', source=host, name=name)
            continue
        j.event(sid, 'phase', ts=at(t + 6), phase='verify_resize')
        j.event(sid, 'verify-started', ts=at(t + 6.5))
        j.event(sid, 'verified', ts=at(t + 7.5), passed=True)
        j.event(sid, 'confirm-sent', ts=at(t + 8))
        j.event(sid, 'verdict', ts=at(t + 9), result='confirmed', message='',
                source=host, dest='dest-' + host, name=name, attempts=1,
                duration=8.5, mode='cold')
    j.close()


class TestPage(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                 'batch.jsonl')

    def page(self, servers, **kwargs):
        write_journal(self.path, servers, **kwargs)
        rebuilt = report.build(self.path, running=False)
        text = report_html.render(rebuilt, 1, batch.COLUMNS)
        self.addDetail('page', testtools.content.text_content(text))
        self.assertTrue(text.startswith('<!DOCTYPE html>\n'))
        # Strictly well-formed: the XML parser rejects any unclosed tag,
        # stray '<' or '&', or an HTML-only entity.
        return text, ET.fromstring(text.split('\n', 1)[1]), rebuilt

    def test_hostile_names_and_messages_are_text(self):
        servers = [('id-%d' % n, name, 'h"<%d>' % (n % 2))
                   for n, name in enumerate(HOSTILE)]
        text, tree, _ = self.page(servers, failing={'id-1'})
        everything = list(tree.iter())
        # Nothing became markup: no script, no image, no event handler.
        self.assertEqual(set(), {e.tag for e in everything}
                         & {'script', 'img', 'iframe', 'object', 'a'})
        for element in everything:
            for name in element.attrib:
                self.assertFalse(name.lower().startswith('on'), name)
                self.assertNotIn(name, ('src', 'href', 'xlink:href'))
        texts = ''.join(tree.itertext())
        for name in HOSTILE:
            self.assertIn(name, texts)
        self.assertIn('<b>No valid host</b> & "more"', texts)
        self.assertIn('check "$x" <&>', texts)
        # Host names (from the plan) too, in attributes and text.
        hosts = {d.get('data-host') for d in tree.iter('details')}
        self.assertEqual({'h"<0>', 'h"<1>'}, hosts)

    def test_self_contained(self):
        text, tree, _ = self.page([('a', 'vm', 'h1')])
        for word in ('<script', 'url(', '@import', 'http://', 'https://',
                     '<link', '@font-face'):
            self.assertNotIn(word, text)

    def test_lanes_marks_summary(self):
        servers = [('id-%02d' % n, 'vm-%02d' % n, 'compute%d' % (n % 3))
                   for n in range(12)]
        text, tree, rebuilt = self.page(servers, failing={'id-03'},
                                        timing_out={'id-07'})
        lanes = [g for g in tree.iter('g') if g.get('class') == 'lane']
        self.assertEqual(sorted(s[0] for s in servers),
                         sorted(g.get('data-server') for g in lanes))
        # One collapsible section per source host, its lanes inside it.
        sections = {d.get('data-host'): d for d in tree.iter('details')}
        self.assertEqual(['compute0', 'compute1', 'compute2'],
                         sorted(sections))
        for host, section in sections.items():
            self.assertEqual(4, len([g for g in section.iter('g')
                                     if g.get('class') == 'lane']))
        counts = {td.get('data-count'): int(td.text)
                  for td in tree.iter('td') if td.get('data-count')}
        self.assertEqual({'servers': 12, 'done': 10, 'failed': 2,
                          'skipped': 0, 'inflight': 0, 'queued': 0}, counts)
        marks = {g.get('class'): g.find('title').text for g in tree.iter('g')
                 if (g.get('class') or '').startswith('mark ')}
        self.assertIn('No valid host', marks['mark failed'])
        self.assertIn('timed out after 9s', marks['mark timeout'])
        # Every phase of a confirmed server is a span with its hover text.
        [lane] = [g for g in lanes if g.get('data-server') == 'id-00']
        spans = [r.get('class') for r in lane.iter('rect')
                 if (r.get('class') or '').startswith('span ')]
        self.assertEqual(['span migrating', 'span verify-resize',
                          'span verifying', 'span verify-resize',
                          'span confirming'], spans)
        # The chart of migrations in flight, and the limit drawn on it.
        [chart] = [s for s in tree.iter('svg')
                   if s.get('class') == 'inflight']
        self.assertIn('--max-parallel 2',
                      ''.join(chart.itertext()))
        self.assertEqual(2, max(n for _, n in rebuilt.in_flight()))

    def test_five_hundred_servers(self):
        servers = [('id-%03d' % n, 'server-with-a-long-name-%03d' % n,
                    'compute%d' % (n % 7)) for n in range(500)]
        text, tree, _ = self.page(servers, failing={'id-010', 'id-400'})
        lanes = [g for g in tree.iter('g') if g.get('class') == 'lane']
        self.assertEqual(500, len(lanes))
        self.assertEqual(7, len(list(tree.iter('details'))))
        # A page a browser opens at once.
        self.assertLess(len(text), 3 * 1024 * 1024)
        # Long names are cut on the lane, whole on hover.
        [first] = [g for g in lanes if g.get('data-server') == 'id-000']
        label = first.find('text')
        self.assertLessEqual(len(label.text), report_html.NAME_CHARS)
        self.assertIn('server-with-a-long-name-000',
                      label.find('title').text)

    def test_the_runs_error_and_host_check_on_top(self):
        write_journal(self.path, [('a', 'vm', 'h1')])
        with open(self.path, 'a') as f:
            f.write('{"type":"host-check","host":"h1","empty":false,'
                    '"fails":true,"line":"h1: NOT empty: 1 server (<x>)",'
                    '"ts":"%s"}\n' % at(20))
        rebuilt = report.build(self.path, running=False)
        self.assertTrue(rebuilt.runs[-1].host_check_failed)
        text = report_html.render(rebuilt, 1, batch.COLUMNS)
        tree = ET.fromstring(text.split('\n', 1)[1])
        facts = {tr.find('th').text: tr.find('td').text
                 for tr in tree.iter('tr') if tr.find('th') is not None
                 and tr.find('td') is not None}
        self.assertEqual('h1: NOT empty: 1 server (<x>)', facts['Host check'])
