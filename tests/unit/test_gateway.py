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

import datetime
from unittest import mock

from keystoneauth1 import exceptions as ksa_exc
import requests
import testtools
from urllib3 import exceptions as urllib3_exc

from osc_migrate_plus import gateway as gw
from osc_migrate_plus import model
from tests.unit import fakes

UUID = '6f0c2f8e-3f5a-4a4e-9a55-7d6bb4b3f0a1'


class TestMicroversions(testtools.TestCase):

    def test_newest_both_sides_know(self):
        nova = fakes.FakeCompute(max_microversion='2.96')
        self.assertEqual('2.96', gw.NovaGateway(nova.proxy).microversion)
        nova = fakes.FakeCompute(max_microversion='2.200')
        self.assertEqual(gw.KNOWN_MAX_MICROVERSION,
                         gw.NovaGateway(nova.proxy).microversion)

    def test_cloud_too_old(self):
        nova = fakes.FakeCompute(max_microversion='2.53')
        e = self.assertRaises(model.MicroversionError,
                              lambda: gw.NovaGateway(nova.proxy).microversion)
        self.assertIn('up to 2.53', str(e))
        self.assertIn('2.59', str(e))

    def test_explicit_version_is_used(self):
        nova = fakes.FakeCompute(default_microversion='2.60')
        gateway = gw.NovaGateway(nova.proxy)
        self.assertEqual('2.60', gateway.microversion)
        self.assertFalse(gateway.supports('2.65'))

    def test_explicit_version_too_low_names_the_version(self):
        nova = fakes.FakeCompute(default_microversion='2.1')
        e = self.assertRaises(model.MicroversionError,
                              lambda: gw.NovaGateway(nova.proxy).microversion)
        self.assertIn('--os-compute-api-version 2.59 or greater', str(e))

    def test_require(self):
        gateway = gw.NovaGateway(fakes.FakeCompute(
            default_microversion='2.59').proxy)
        gateway.require('2.56', 'cold --host')
        e = self.assertRaises(model.MicroversionError, gateway.require, '2.65',
                              'aborting queued')
        self.assertIn('2.65 or greater', str(e))

    def test_every_request_carries_the_microversion(self):
        nova = fakes.FakeCompute(max_microversion='2.90')
        nova.route('GET', '/servers/s1', fakes.response(
            200, {'server': fakes.server_doc()}))
        gw.NovaGateway(nova.proxy).get_server('s1')
        self.assertEqual(['2.90'], [r[4] for r in nova.requests])


class TestReads(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.nova = fakes.FakeCompute()
        self.gateway = gw.NovaGateway(self.nova.proxy, sleep=lambda s: None)

    def test_find_by_id(self):
        self.nova.route('GET', '/servers/%s' % UUID, fakes.response(
            200, {'server': fakes.server_doc(UUID, task_state='migrating')}))
        server = self.gateway.find_server(UUID)
        self.assertEqual((UUID, 'migrating', 'compute1'),
                         (server.id, server.task_state, server.host))

    def test_find_by_exact_name_all_projects(self):
        self.nova.route('GET', '/servers/detail', fakes.response(
            200, {'servers': [fakes.server_doc('s9', 'web.1')]}))
        self.assertEqual('s9', self.gateway.find_server('web.1').id)
        params = self.nova.requests[-1][2]
        self.assertEqual('^web\\.1$', params['name'])
        self.assertEqual(1, params['all_tenants'])

    def test_exact_name_only(self):
        # MySQL matches the name regex case-insensitively.
        self.nova.route('GET', '/servers/detail', fakes.response(
            200, {'servers': [fakes.server_doc('s8', 'WEB'),
                              fakes.server_doc('s9', 'web')]}))
        self.assertEqual('s9', self.gateway.find_server('web').id)
        self.assertRaises(model.NotFound, self.gateway.find_server, 'Web')

    def test_hidden_host_is_told_from_no_host(self):
        doc = fakes.server_doc()
        del doc['OS-EXT-SRV-ATTR:host']  # what Nova's policy does
        hidden = gw.NovaGateway._server(doc)
        self.assertEqual((None, True), (hidden.host, hidden.host_hidden))
        shelved = gw.NovaGateway._server(fakes.server_doc(
            status='SHELVED_OFFLOADED', host=None))
        self.assertEqual((None, False), (shelved.host, shelved.host_hidden))

    def test_ambiguous_name_lists_ids(self):
        self.nova.route('GET', '/servers/detail', fakes.response(
            200, {'servers': [fakes.server_doc('b'), fakes.server_doc('a')]}))
        e = self.assertRaises(model.NovaError, self.gateway.find_server, 'vm')
        self.assertIn('a, b', str(e))

    def test_unknown(self):
        self.nova.route('GET', '/servers/detail', fakes.response(
            200, {'servers': []}))
        self.assertRaises(model.NotFound, self.gateway.find_server, 'ghost')

    def test_member_falls_back_to_own_project(self):
        def answer(url, params, body):
            if 'all_tenants' in params:
                return fakes.nova_error(403, 'Policy ... get_all_tenants')
            return fakes.response(200, {'servers': [fakes.server_doc()]})
        self.nova.route('GET', '/servers/detail', answer)
        self.assertEqual('s1', self.gateway.find_server('vm').id)

    def test_newest_migration_asks_for_one(self):
        self.nova.route('GET', '/os-migrations', fakes.response(
            200, {'migrations': [fakes.migration_doc(3, 'running',
                                                     'live-migration')]}))
        m = self.gateway.newest_migration('s1')
        self.assertEqual((3, 'live', 'running'), (m.id, m.kind, m.status))
        self.assertEqual({'instance_uuid': 's1', 'limit': 1},
                         self.nova.requests[-1][2])

    def test_transient_errors_retried_then_raised(self):
        self.nova.route('GET', '/servers/s1', [
            fakes.nova_error(503, 'busy'),
            ksa_exc.ConnectFailure('refused'),
            fakes.response(200, {'server': fakes.server_doc()})])
        self.assertEqual('s1', self.gateway.get_server('s1').id)
        self.nova.route('GET', '/servers/s2', fakes.nova_error(500, 'boom'))
        self.assertRaises(model.Transient, self.gateway.get_server, 's2')
        self.assertEqual(1 + 3, len([r for r in self.nova.requests
                                     if r[1] == '/servers/s2']))

    def test_forbidden_never_retried(self):
        self.nova.route('GET', '/os-migrations', fakes.nova_error(
            403, "Policy doesn't allow os_compute_api:os-migrations:index "
                 "to be performed."))
        e = self.assertRaises(model.NovaError, self.gateway.migrations, 's1')
        self.assertEqual(403, e.status)
        self.assertIn("Policy doesn't allow", str(e))
        self.assertEqual(1, len(self.nova.requests))

    def test_explain_prefers_fault(self):
        server = gw.NovaGateway._server(fakes.server_doc(
            status='ERROR', fault='No valid host was found.'))
        self.assertEqual('No valid host was found.',
                         self.gateway.explain(server, None))
        self.assertEqual([], self.nova.requests)

    def test_explain_reads_failed_event_details(self):
        self.nova.route('GET', '/servers/s1/os-instance-actions',
                        fakes.response(200, {'instanceActions': [
                            {'action': 'migrate', 'request_id': 'req-1',
                             'message': 'Error'}]}))
        self.nova.route('GET', '/servers/s1/os-instance-actions/req-1',
                        fakes.response(200, {'instanceAction': {'events': [
                            {'event': 'compute_prep_resize',
                             'result': 'Success'},
                            {'event': 'compute_resize_instance',
                             'result': 'Error', 'host': 'compute1',
                             'details': 'Host key verification failed.'}]}}))
        server = gw.NovaGateway._server(fakes.server_doc())
        migration = gw.NovaGateway._migration(fakes.migration_doc(
            status='error'))
        self.assertEqual('compute_resize_instance failed on compute1: Host '
                         'key verification failed.',
                         self.gateway.explain(server, migration))

    def test_explain_waits_while_nova_records_the_event(self):
        # Nova saves the migration as error before it finishes the event.
        self.nova.route('GET', '/servers/s1/os-instance-actions',
                        fakes.response(200, {'instanceActions': [
                            {'action': 'migrate', 'request_id': 'req-1',
                             'message': None}]}))
        self.nova.route('GET', '/servers/s1/os-instance-actions/req-1',
                        fakes.response(200, {'instanceAction': {'events': [
                            {'event': 'compute_resize_instance',
                             'result': None, 'finish_time': None}]}}))
        server = gw.NovaGateway._server(fakes.server_doc())
        self.assertIsNone(self.gateway.explain(server, None))


class TestWrites(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.nova = fakes.FakeCompute()
        self.nova.route('POST', '/servers/s1/action', fakes.response(202))
        self.gateway = gw.NovaGateway(self.nova.proxy)

    def test_cold(self):
        self.gateway.start_migration('s1', live=False)
        self.gateway.start_migration('s1', live=False, host='compute3')
        self.assertEqual([{'migrate': None},
                          {'migrate': {'host': 'compute3'}}],
                         [w[2] for w in self.nova.writes()])

    def test_live_block_migration_auto_from_225(self):
        self.gateway.start_migration('s1', live=True)
        self.gateway.start_migration('s1', live=True, host='c2',
                                     block_migration=True)
        self.assertEqual([
            {'os-migrateLive': {'host': None, 'block_migration': 'auto'}},
            {'os-migrateLive': {'host': 'c2', 'block_migration': True}}],
            [w[2] for w in self.nova.writes()])

    def test_conflict_is_reported_with_novas_words(self):
        self.nova.route('POST', '/servers/s1/action', fakes.nova_error(
            409, "Cannot 'migrate' instance s1 while it is in vm_state "
                 "paused", 'POST'))
        e = self.assertRaises(model.NovaError, self.gateway.start_migration,
                              's1', False)
        self.assertEqual(409, e.status)
        self.assertIn('vm_state paused', str(e))

    def test_posts_are_not_retried(self):
        self.nova.route('POST', '/servers/s1/action',
                        fakes.nova_error(503, 'busy', 'POST'))
        self.assertRaises(model.Transient, self.gateway.confirm, 's1')
        self.assertEqual(1, len(self.nova.writes()))

    def test_abort(self):
        self.nova.route('DELETE', '/servers/s1/migrations/4',
                        fakes.response(202))
        self.gateway.abort('s1', 4)
        self.assertEqual([('DELETE', '/servers/s1/migrations/4', None)],
                         self.nova.writes())


def _wrapped(exc):
    """An exception as keystoneauth raises it: the cause in its context."""
    try:
        try:
            raise exc
        except requests.exceptions.RequestException:
            raise ksa_exc.ConnectFailure('Unable to establish connection')
    except ksa_exc.ConnectFailure as outer:
        return outer


class TestLostAnswers(testtools.TestCase):
    """Which failures may hide a request Nova carried out."""

    def setUp(self):
        super().setUp()
        self.nova = fakes.FakeCompute()
        self.gateway = gw.NovaGateway(self.nova.proxy)

    def failure(self, answer):
        self.nova.route('POST', '/servers/s1/action', answer)
        return self.assertRaises(model.Transient, self.gateway.confirm, 's1')

    def test_gateway_timeouts_and_resets_may_have_been_applied(self):
        for answer in (fakes.nova_error(504, 'timeout', 'POST'),
                       fakes.nova_error(503, 'upstream reset', 'POST'),
                       fakes.nova_error(502, 'bad gateway', 'POST'),
                       fakes.nova_error(500, 'boom', 'POST'),
                       _wrapped(requests.exceptions.ConnectionError(
                           urllib3_exc.ProtocolError(
                               'Connection aborted.',
                               ConnectionResetError(104, 'reset')))),
                       ksa_exc.ConnectTimeout('Request timed out')):
            self.assertTrue(self.failure(answer).maybe_applied, answer)

    def test_never_connected_or_rate_limited_was_not(self):
        refused = requests.exceptions.ConnectionError(
            urllib3_exc.MaxRetryError(None, '/',
                                      urllib3_exc.NewConnectionError(
                                          None, 'Connection refused')))
        limited = fakes.response(429, {'message': 'slow down'}, 'POST')
        limited.headers['Retry-After'] = '7'
        for answer in (limited, _wrapped(refused)):
            self.assertFalse(self.failure(answer).maybe_applied, answer)
        self.assertEqual(7.0, self.failure(limited).retry_after)

    def test_writes_are_sent_once_reads_may_be_retried(self):
        # keystoneauth would resend on a reset or a 503 when the user's
        # config asks for retries: never for a write.
        self.nova.route('POST', '/servers/s1/action', fakes.response(202))
        self.nova.route('GET', '/servers/s1', fakes.response(
            200, {'server': fakes.server_doc()}))
        self.gateway.start_migration('s1', live=False)
        self.gateway.get_server('s1')
        post, get = self.nova.proxy.request.call_args_list
        self.assertEqual((0, 0), (post.kwargs['connect_retries'],
                                  post.kwargs['status_code_retries']))
        self.assertNotIn('connect_retries', get.kwargs)


class TestNovaClock(testtools.TestCase):

    def test_from_the_date_of_novas_answers_never_the_clients(self):
        nova = fakes.FakeCompute()
        answer = fakes.response(200, {'server': fakes.server_doc()})
        # Nova's clock is an hour behind ours.
        answer.headers['Date'] = 'Mon, 30 Nov 2026 03:00:00 GMT'
        nova.route('GET', '/servers/s1', answer)
        gateway = gw.NovaGateway(nova.proxy)
        self.assertIsNone(gateway.nova_now())
        with mock.patch('time.monotonic', return_value=100.0):
            gateway.get_server('s1')
        with mock.patch('time.monotonic', return_value=107.5):
            now = gateway.nova_now()
        self.assertEqual(datetime.datetime(2026, 11, 30, 3, 0, 7, 500000,
                                           tzinfo=datetime.timezone.utc),
                         now)

    def test_a_proxy_joining_two_dates(self):
        self.assertEqual(
            datetime.datetime(2026, 11, 30, 3, tzinfo=datetime.timezone.utc),
            gw._parse_date('Mon, 30 Nov 2026 03:00:00 GMT, Mon, 30 Nov 2026 '
                           '03:00:01 GMT'))
        self.assertIsNone(gw._parse_date('soon'))
