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

import testtools

from osc_migrate_plus.engine import plan
from osc_migrate_plus.engine import selection
from osc_migrate_plus import model


def srv(status='ACTIVE', host='c1', task_state=None, hidden=False, sid='sid'):
    return model.Server(sid, 'vm', status, task_state,
                        None if hidden else host, 'p', host_hidden=hidden)


class TestChooseMode(testtools.TestCase):

    def test_table(self):
        table = {
            ('auto', 'ACTIVE'): 'live', ('auto', 'PAUSED'): 'live',
            ('auto', 'SHUTOFF'): 'cold', ('auto', 'SUSPENDED'): None,
            ('cold', 'ACTIVE'): 'cold', ('cold', 'SHUTOFF'): 'cold',
            ('cold', 'PAUSED'): None, ('cold', 'SUSPENDED'): None,
            ('live', 'ACTIVE'): 'live', ('live', 'PAUSED'): 'live',
            ('live', 'SHUTOFF'): None,
        }
        for (mode, status), expected in table.items():
            self.assertEqual(expected, plan.choose_mode(mode, status),
                             (mode, status))


class TestPreflight(testtools.TestCase):

    def check(self, server, mode='cold', verdict='planned', reason='',
              **kw):
        item = plan.preflight(server, mode, **kw)
        self.assertEqual(verdict, item.verdict, item)
        self.assertIn(reason, item.reason)
        return item

    def test_planned(self):
        self.assertEqual('cold', self.check(srv()).mode)
        self.assertEqual('live', self.check(srv(), 'auto').mode)
        self.assertEqual('cold', self.check(srv('SHUTOFF'), 'auto').mode)

    def test_skips_carry_the_reason(self):
        self.check(srv('ERROR'), verdict='skipped', reason='ERROR state')
        self.check(srv('SHELVED_OFFLOADED', host=None), verdict='skipped',
                   reason='on no host')
        self.check(srv(host='c2'), verdict='skipped',
                   reason='not on source host c1 (on c2)',
                   source_hosts=('c1',))
        self.check(srv(host='c3'), verdict='skipped',
                   reason='not on the source hosts c1, c2 (on c3)',
                   source_hosts=('c1', 'c2'))
        self.check(srv(host='c2'), source_hosts=('c1', 'c2'))
        self.check(srv(task_state='rebooting'), verdict='skipped',
                   reason='task is in progress: rebooting')
        self.check(srv(), verdict='skipped', reason='already on the target',
                   target_host='c1')
        self.check(srv('PAUSED'), 'cold', 'skipped', 'try --mode live')
        self.check(srv('SUSPENDED'), 'cold', 'skipped', 'SUSPENDED')
        self.check(srv('SHUTOFF'), 'live', 'skipped', 'try --mode cold')
        self.check(srv('SUSPENDED'), 'auto', 'skipped', 'no migration')

    def test_already_migrating_is_adopted(self):
        item = self.check(srv('RESIZE', task_state='resize_migrating'),
                          verdict='adopt')
        self.assertEqual('cold', item.mode)
        item = self.check(srv('MIGRATING', task_state='migrating'),
                          verdict='adopt')
        self.assertEqual('live', item.mode)
        self.check(srv('VERIFY_RESIZE', host='c2'), verdict='adopt')

    def test_hidden_host_is_not_no_host(self):
        # Policy hides the host attribute: the server is on one all the
        # same; the source host is checked where it can be.
        self.assertEqual('cold', self.check(srv(hidden=True)).mode)
        self.check(srv(hidden=True), source_hosts=('c1',))
        self.check(srv(hidden=True), target_host='c1')
        self.check(srv('SHELVED_OFFLOADED', hidden=True), verdict='skipped',
                   reason='on no host')

    def test_unknown_mode(self):
        self.assertRaises(ValueError, plan.preflight, srv(), 'warp')

    def test_journal_form(self):
        item = plan.preflight(srv(), 'auto')
        self.assertEqual({'id': 'sid', 'name': 'vm', 'project_id': 'p',
                          'source': 'c1', 'status': 'ACTIVE',
                          'mode': 'live', 'verdict': 'planned',
                          'reason': ''}, item.to_journal())


class TestServerList(testtools.TestCase):

    def test_comments_and_blanks(self):
        text = '# drain list\nweb-1\n\n  db-2   # primary\n#x\nuuid-3\n'
        self.assertEqual(['web-1', 'db-2', 'uuid-3'],
                         plan.parse_server_list(text))


class TestSelectionWithHiddenHosts(testtools.TestCase):

    def test_named_servers_cannot_be_vouched_for(self):
        sel = selection.Selection(names=['a', 'b'], source_hosts=('c1',))
        items = selection.plan_items([srv(sid='a', hidden=True),
                                      srv(sid='b')], sel)
        self.assertEqual(['skipped', 'planned'],
                         [i.verdict for i in items])
        self.assertIn('hidden by policy', items[0].reason)

    def test_listed_by_host_are_on_it(self):
        class Nova:
            lists_all_projects = True

            def compute_hosts(self):
                return ['c1', 'c2']

            def list_servers(self, host=None, project=None, status=None):
                # Nova applies the host filter (the probe finds nothing).
                return [srv(sid='a', hidden=True)] if host == 'c1' else []

        sel = selection.Selection(names=[], source_hosts=('c1',))
        [server] = selection.select(Nova(), sel)
        self.assertEqual(('c1', True), (server.host, server.host_hidden))
        [item] = selection.plan_items([server], sel)
        self.assertEqual(('planned', 'c1'), (item.verdict,
                                             item.to_journal()['source']))


class TestSeveralHosts(testtools.TestCase):

    class Nova:
        lists_all_projects = True

        def __init__(self):
            self.listed = []

        def compute_hosts(self):
            return ['c1', 'c2', 'c3']

        def aggregates(self):
            return [{'name': 'rack1', 'hosts': ['c2', 'c1']},
                    {'name': 'empty', 'hosts': []}]

        def list_servers(self, host=None, project=None, status=None):
            self.listed.append(host)
            return [srv(sid='on-' + host, host=host)] if host else []

    def test_one_listing_per_host_each_server_once(self):
        nova = self.Nova()
        sel = selection.Selection(names=[], source_hosts=('c1', 'c2'))
        servers = selection.select(nova, sel)
        self.assertEqual(['on-c1', 'on-c2'], [s.id for s in servers])
        self.assertEqual(['c1', 'c2'], nova.listed)
        self.assertEqual(['planned', 'planned'], [
            i.verdict for i in selection.plan_items(servers, sel)])

    def test_unknown_host_and_target_among_sources_refused(self):
        nova = self.Nova()
        exc = self.assertRaises(
            model.NovaError, selection.select, nova,
            selection.Selection(names=[], source_hosts=('c1', 'c9')))
        self.assertIn('--source-host c9: no such compute host', str(exc))
        exc = self.assertRaises(
            model.NovaError, selection.select, nova,
            selection.Selection(names=[], source_hosts=('c1', 'c2'),
                                target_host='c2'))
        self.assertIn('--host c2 is also a source host', str(exc))
        self.assertEqual([], nova.listed)  # refused before any listing

    def test_aggregate_hosts(self):
        nova = self.Nova()
        self.assertEqual(('c1', 'c2'),
                         selection.aggregate_hosts(nova, 'rack1'))
        exc = self.assertRaises(model.NovaError, selection.aggregate_hosts,
                                nova, 'rack9')
        self.assertIn('no such host aggregate; aggregates: empty, rack1',
                      str(exc))
        exc = self.assertRaises(model.NovaError, selection.aggregate_hosts,
                                nova, 'empty')
        self.assertIn('has no hosts', str(exc))
