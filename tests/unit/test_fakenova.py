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

"""The fake Nova itself: is it as unkind as Nova?"""

import datetime
import email.utils
import time

from keystoneauth1 import exceptions as ksa_exc
import testtools

from osc_migrate_plus.engine import batch
from osc_migrate_plus import gateway as gw
from osc_migrate_plus import model
from tests.unit import fakenova


def since(value):
    return value.strftime('%Y-%m-%dT%H:%M:%S.%fZ')


class FakeNovaTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.fake = fakenova.FakeNova()
        self.gateway = gw.NovaGateway(self.fake.proxy,
                                      sleep=self.fake.advance)
        self.sid = self.fake.add_server('vm1')

    def get(self, path, **params):
        return self.fake.proxy.request(path, 'GET', params=params,
                                       microversion='2.100')

    def action(self, body, sid=None):
        return self.fake.proxy.request(
            '/servers/%s/action' % (sid or self.sid), 'POST', json=body,
            microversion='2.100')

    def until(self, predicate, limit=60):
        end = self.fake.now + limit
        while not predicate():
            self.assertLess(self.fake.now, end, 'never happened')
            self.fake.advance(0.05)


class TestClock(FakeNovaTestCase):

    def test_date_header_is_on_novas_clock(self):
        self.fake.nova_offset = -3600  # the client an hour ahead
        self.fake.advance(12.3)
        response = self.get('/servers/%s' % self.sid)
        date = email.utils.parsedate_to_datetime(response.headers['Date'])
        self.assertEqual(0, date.microsecond)
        expected = self.fake.client_wall() - datetime.timedelta(hours=1)
        self.assertLess(abs((date - expected).total_seconds()), 1.0)
        self.assertEqual(response.headers['Date'], email.utils.format_datetime(
            self.fake.nova_time().replace(microsecond=0), usegmt=True))

    def test_each_request_costs_latency(self):
        for _ in range(3):
            self.gateway.get_server(self.sid)
        self.assertAlmostEqual(0.15, self.fake.now)
        self.assertEqual([0.0, 0.05, 0.1],
                         [round(r[0], 2) for r in self.fake.requests])

    def test_nova_works_while_requests_are_on_the_wire(self):
        self.gateway.start_migration(self.sid, live=False)
        seen = set()
        for _ in range(30):
            seen.add(self.gateway.get_server(self.sid).task_state)
        self.assertIn('resize_migrating', seen)

    def test_client_time_fixture(self):
        self.useFixture(self.fake.client_time())
        self.assertEqual(self.fake.now, time.monotonic())
        self.fake.start_elsewhere(self.sid)
        time.sleep(10)
        self.assertEqual(10.0, time.monotonic())
        self.assertEqual('VERIFY_RESIZE', self.fake.server(self.sid)['status'])
        self.assertAlmostEqual(self.fake.base.timestamp() + 10, time.time())
        now = batch.datetime.datetime.now(batch.datetime.timezone.utc)
        self.assertEqual(self.fake.client_wall(), now)
        self.assertIsInstance(now, datetime.datetime)

    def test_sleep_hooks_run_before_time_passes(self):
        self.useFixture(self.fake.client_time())

        class Stop(BaseException):
            pass

        def hook():
            raise Stop()
        self.fake.sleep_hooks.append(hook)
        self.assertRaises(Stop, time.sleep, 5)
        self.assertEqual(0.0, self.fake.now)


class TestChangesSince(FakeNovaTestCase):

    def test_record_never_updated_is_not_returned(self):
        self.fake.timing['step'] = 1  # time to look before its update
        self.gateway.start_migration(self.sid, live=False)
        long_ago = since(self.fake.nova_time() - datetime.timedelta(hours=1))
        self.until(lambda: self.fake.records(self.sid))
        record = self.fake.records(self.sid)[0]
        self.assertEqual(('pre-migrating', None),
                         (record['status'], record['updated_at']))
        # Listed by instance, not by changes-since.
        self.assertEqual([record['id']], [
            m.id for m in self.gateway.migrations(self.sid)])
        self.assertEqual([], self.gateway.migrations_since(long_ago))
        self.until(lambda: self.fake.records(self.sid)[0]['updated_at'])
        self.assertEqual([record['id']], [
            m.id for m in self.gateway.migrations_since(long_ago)])

    def test_updated_at_greater_or_equal(self):
        self.gateway.start_migration(self.sid, live=False)
        self.until(lambda: self.fake.records(self.sid) and
                   self.fake.records(self.sid)[0]['updated_at'])
        updated = self.fake.records(self.sid)[0]['updated_at']
        self.assertEqual(1, len(self.gateway.migrations_since(updated)))
        later = datetime.datetime.fromisoformat(updated) + \
            datetime.timedelta(microseconds=1)
        self.assertEqual([], self.gateway.migrations_since(since(later)))

    def test_servers_changes_since_and_clock_offset(self):
        self.fake.nova_offset = 3600  # Nova an hour ahead of the client
        client_now = since(self.fake.client_wall())
        nova_now = since(self.fake.nova_time() - datetime.timedelta(
            seconds=1))
        self.fake.advance(1)
        self.gateway.start_migration(self.sid, live=False)
        ids = [s.id for s in self.gateway.list_servers(
            changes_since=nova_now)]
        self.assertEqual([self.sid], ids)
        # The client's clock means an hour ago to Nova: all of it.
        self.assertEqual([self.sid], [s.id for s in self.gateway.list_servers(
            changes_since=client_now)])
        future = since(self.fake.nova_time() + datetime.timedelta(
            seconds=5))
        self.assertEqual([], self.gateway.list_servers(changes_since=future))

    def test_deleted_server(self):
        self.gateway.start_migration(self.sid, live=False)
        self.fake.advance(2)
        self.assertEqual(1, len(self.fake.records(self.sid)))
        self.fake.delete_server(self.sid)
        listed = self.gateway.list_servers(changes_since=since(
            self.fake.nova_time() - datetime.timedelta(minutes=1)))
        self.assertEqual([(self.sid, 'DELETED')],
                         [(s.id, s.status) for s in listed])
        self.assertEqual([], self.gateway.list_servers())
        self.assertRaises(model.NotFound, self.gateway.get_server, self.sid)
        # Its records were soft-deleted with it.
        self.assertEqual([], self.gateway.migrations(self.sid))
        self.assertTrue(self.fake.records(self.sid)[0]['deleted'])
        self.fake.settle()
        self.assertEqual('DELETED', self.fake.server(self.sid)['status'])


class TestApi(FakeNovaTestCase):

    def test_409_while_migrating_in_novas_words(self):
        self.gateway.start_migration(self.sid, live=False)
        e = self.assertRaises(model.NovaError, self.gateway.start_migration,
                              self.sid, live=False)
        self.assertEqual(409, e.status)
        self.assertIn("Cannot 'migrate' instance %s while it is in "
                      "task_state resize_prep" % self.sid, str(e))
        e = self.assertRaises(model.NovaError, self.gateway.start_migration,
                              self.sid, live=True)
        self.assertIn("Cannot 'os-migrateLive' instance %s while it is in "
                      "task_state resize_prep" % self.sid, str(e))
        self.fake.settle()
        e = self.assertRaises(model.NovaError, self.gateway.start_migration,
                              self.sid, live=False)
        self.assertIn('vm_state resized', str(e))

    def test_state_checks(self):
        off = self.fake.add_server('off', status='SHUTOFF')
        e = self.assertRaises(model.NovaError, self.gateway.start_migration,
                              off, live=True)
        self.assertIn('vm_state stopped', str(e))
        e = self.assertRaises(model.NovaError, self.gateway.confirm, off)
        self.assertIn("Cannot 'confirmResize' instance %s while it is in "
                      "vm_state stopped" % off, str(e))
        e = self.assertRaises(model.NovaError, self.gateway.start_migration,
                              off, live=False, host='nosuch')
        self.assertEqual('HTTP 400: Compute host nosuch could not be found.',
                         str(e))
        e = self.assertRaises(model.NovaError, self.gateway.start_migration,
                              off, live=False, host='compute1')
        self.assertEqual(400, e.status)

    def test_cold_migration_confirmed(self):
        self.gateway.start_migration(self.sid, live=False)
        self.assertEqual(('RESIZE', 'resize_prep'), (
            self.fake.server(self.sid)['status'],
            self.fake.server(self.sid)['OS-EXT-STS:task_state']))
        self.fake.settle()
        server = self.fake.server(self.sid)
        self.assertEqual(('VERIFY_RESIZE', 'compute2'),
                         (server['status'], server['OS-EXT-SRV-ATTR:host']))
        self.gateway.confirm(self.sid)
        self.assertEqual('confirming', self.fake.records(self.sid)[0][
            'status'])
        # A second confirm finds no finished record any more.
        e = self.assertRaises(model.NovaError, self.gateway.confirm, self.sid)
        self.assertEqual('HTTP 400: Instance has not been resized.', str(e))
        self.fake.settle()
        self.assertEqual('ACTIVE', self.fake.server(self.sid)['status'])
        self.assertEqual('confirmed', self.fake.records(self.sid)[0][
            'status'])

    def test_record_ahead_of_the_server(self):
        # Nova saves the record finished a moment before the server.
        self.gateway.start_migration(self.sid, live=False)
        self.until(lambda: self.fake.records(self.sid) and self.fake.records(
            self.sid)[0]['status'] == 'finished', limit=10)
        self.assertEqual('RESIZE', self.fake.server(self.sid)['status'])

    def test_revert(self):
        self.gateway.start_migration(self.sid, live=False)
        self.fake.settle()
        self.gateway.revert(self.sid)
        self.assertEqual('REVERT_RESIZE', self.fake.server(self.sid)[
            'status'])
        self.fake.settle()
        server = self.fake.server(self.sid)
        self.assertEqual(('ACTIVE', 'compute1'),
                         (server['status'], server['OS-EXT-SRV-ATTR:host']))

    def test_live_migration_progress_and_record_lag(self):
        self.fake.timing['live_duration'] = 4
        self.gateway.start_migration(self.sid, live=True)
        self.until(lambda: self.fake.records(self.sid) and self.fake.records(
            self.sid)[0]['status'] == 'running')
        mid = self.fake.records(self.sid)[0]['id']
        self.fake.advance(2)
        progress = self.gateway.live_progress(self.sid, mid)
        self.assertAlmostEqual(0.5, progress['memory_processed_bytes'] /
                               progress['memory_total_bytes'], places=1)
        self.until(lambda: self.fake.server(self.sid)['status'] == 'ACTIVE')
        self.assertEqual('compute2', self.fake.server(self.sid)[
            'OS-EXT-SRV-ATTR:host'])
        self.assertEqual('running', self.fake.records(self.sid)[0]['status'])
        self.fake.settle()
        self.assertEqual('completed', self.fake.records(self.sid)[0][
            'status'])
        self.assertIsNone(self.gateway.live_progress(self.sid, mid))

    def test_abort(self):
        self.gateway.start_migration(self.sid, live=True)
        self.until(lambda: self.fake.records(self.sid) and self.fake.records(
            self.sid)[0]['status'] == 'running')
        self.gateway.abort(self.sid, self.fake.records(self.sid)[0]['id'])
        self.fake.settle()
        self.assertEqual('cancelled', self.fake.records(self.sid)[0][
            'status'])
        server = self.fake.server(self.sid)
        self.assertEqual(('ACTIVE', 'compute1', None), (
            server['status'], server['OS-EXT-SRV-ATTR:host'],
            server['OS-EXT-STS:task_state']))

    def test_failed_migration_explained(self):
        self.fake.fail_migrations(to=['compute2'])
        self.gateway.start_migration(self.sid, live=False)
        self.fake.settle()
        server = self.gateway.get_server(self.sid)
        record = self.gateway.newest_migration(self.sid)
        self.assertEqual(('ACTIVE', 'compute1', 'error'),
                         (server.status, server.host, record.status))
        self.assertEqual('compute_resize_instance failed on compute1: '
                         'migrations to compute2 are set to fail',
                         self.gateway.explain(server, record))

    def test_fail_before_record(self):
        self.fake.fail_before_record(self.sid)
        self.gateway.start_migration(self.sid, live=False)
        self.fake.settle()
        self.assertEqual([], self.fake.records(self.sid))
        server = self.gateway.get_server(self.sid)
        self.assertEqual(('ACTIVE', None), (server.status, server.task_state))
        self.assertIn('No valid host was found',
                      self.gateway.explain(server, None))

    def test_someone_else_and_nova_itself(self):
        self.fake.start_elsewhere(self.sid)
        self.fake.settle()
        self.fake.auto_confirm(self.sid)
        self.fake.settle()
        self.assertEqual(['confirmed'],
                         [r['status'] for r in self.fake.records(self.sid)])
        self.fake.resize(self.sid)
        self.fake.settle()
        self.assertEqual(('resize', 'finished'), (
            self.fake.records(self.sid)[0]['migration_type'],
            self.fake.records(self.sid)[0]['status']))
        self.assertEqual(0, self.fake.count('POST', 'migrate'))

    def test_disabled_hosts_are_not_chosen(self):
        services = {s['host']: s['id']
                    for s in self.gateway.compute_services()}
        self.gateway.disable_service(services['compute2'], 'maintenance')
        self.gateway.start_migration(self.sid, live=False)
        self.fake.settle()
        self.assertEqual('compute3', self.fake.server(self.sid)[
            'OS-EXT-SRV-ATTR:host'])

    def test_names_are_case_insensitive_regexes(self):
        self.fake.add_server('VM1')
        found = self.gateway._get('/servers/detail', params={
            'name': '^vm1$', 'all_tenants': 1})['servers']
        self.assertEqual(['VM1', 'vm1'], sorted(s['name'] for s in found))

    def test_hidden_hosts(self):
        fake = fakenova.FakeNova(hide_hosts=True)
        gateway = gw.NovaGateway(fake.proxy, sleep=fake.advance)
        sid = fake.add_server('vm')
        gateway.start_migration(sid, live=False)
        fake.settle()
        doc = fake.proxy.request('/servers/%s' % sid, 'GET',
                                 microversion='2.100').json()['server']
        self.assertNotIn('OS-EXT-SRV-ATTR:host', doc)
        record = fake.proxy.request(
            '/os-migrations', 'GET', params={'instance_uuid': sid},
            microversion='2.100').json()['migrations'][0]
        self.assertEqual([None] * 5, [record[k] for k in (
            'source_compute', 'dest_compute', 'source_node', 'dest_node',
            'dest_host')])
        # The host filter still works; the test sees the truth.
        self.assertEqual([sid], [s.id for s in gateway.list_servers(
            host='compute2')])
        self.assertEqual('compute2', fake.server(sid)['OS-EXT-SRV-ATTR:host'])

    def test_pagination(self):
        fake = fakenova.FakeNova(max_limit=2)
        gateway = gw.NovaGateway(fake.proxy, sleep=fake.advance)
        sids = []
        for n in range(5):
            sids.append(fake.add_server('vm%d' % n))
            fake.advance(1)
        body = fake.proxy.request('/servers/detail', 'GET',
                                  params={'all_tenants': 1},
                                  microversion='2.100').json()
        self.assertEqual([sids[4], sids[3]],
                         [s['id'] for s in body['servers']])
        self.assertEqual('next', body['servers_links'][0]['rel'])
        self.assertIn('marker=%s' % sids[3], body['servers_links'][0][
            'href'])
        self.assertEqual(sids[::-1], [s.id for s in gateway.list_servers()])
        for sid in sids[:3]:
            gateway.start_migration(sid, live=False)
        fake.settle()
        records = fake.proxy.request('/os-migrations', 'GET',
                                     params={'limit': 1},
                                     microversion='2.100').json()
        self.assertIn('migrations_links', records)
        self.assertEqual(3, len(gateway.migrations_since(since(
            fake.nova_time() - datetime.timedelta(hours=1)))))


class TestWireFailures(FakeNovaTestCase):

    def test_lost_reply_applied_later(self):
        self.fake.lose_reply('migrate', apply_after=0.5)
        e = self.assertRaises(model.Transient, self.gateway.start_migration,
                              self.sid, live=False)
        self.assertEqual(504, e.status)
        self.assertIsNone(self.fake.server(self.sid)['OS-EXT-STS:task_state'])
        self.fake.advance(0.5)
        self.assertEqual('resize_prep', self.fake.server(self.sid)[
            'OS-EXT-STS:task_state'])
        self.assertEqual(202, self.fake.late[0][3])
        self.assertEqual(1, self.fake.count('POST', 'migrate'))

    def test_lost_reply_checks_run_when_applied(self):
        self.fake.lose_reply('migrate', status='reset', apply_after=None)
        self.assertRaises(ksa_exc.ConnectFailure, self.fake.proxy.request,
                          '/servers/%s/action' % self.sid, 'POST',
                          json={'migrate': None}, microversion='2.100')
        self.fake.settle()
        self.assertEqual([], self.fake.records(self.sid))
        self.fake.start_elsewhere(self.sid)
        self.fake.apply_lost(after=('GET', '/servers/'))
        self.gateway.get_server(self.sid)
        self.assertEqual(409, self.fake.late[-1][3])
        self.assertIn('task_state resize_prep', self.fake.late[-1][4])

    def test_failed_request_applied_or_not(self):
        self.fake.fail_request(action='migrate', status=503)
        self.assertRaises(model.Transient, self.gateway.start_migration,
                          self.sid, live=False)
        self.fake.settle()
        self.assertEqual([], self.fake.records(self.sid))
        self.fake.fail_request(action='migrate', status=502, applied=True)
        self.assertRaises(model.Transient, self.gateway.start_migration,
                          self.sid, live=False)
        self.fake.settle()
        self.assertEqual(1, len(self.fake.records(self.sid)))

    def test_failing_reads(self):
        self.fake.fail_reads('/servers/', times=2)
        self.fake.fail_reads('/os-migrations', status='reset', times=1)
        self.gateway.get_server(self.sid)  # the gateway retries reads
        self.assertEqual(3, self.fake.count('GET', '/servers/'))
        self.gateway.migrations(self.sid)
        self.assertEqual(2, self.fake.count('GET', '/os-migrations'))


class TestComputeServices(FakeNovaTestCase):
    """nova-compute's heartbeat and state, as Nova shows them."""

    def service(self, host):
        return {s['host']: s for s in self.gateway.compute_services()}[host]

    def test_heartbeat_every_report_interval(self):
        first = self.service('compute1')['updated_at']
        self.fake.advance(fakenova.REPORT_INTERVAL + 0.5)
        later = self.service('compute1')['updated_at']
        self.assertGreater(model.nova_time(later), model.nova_time(first))
        self.assertEqual('up', self.service('compute1')['state'])

    def test_down_stops_beating_up_beats_again(self):
        self.fake.advance(12)
        self.fake.service_down('compute1')
        stopped = self.service('compute1')
        self.assertEqual(('down', True),
                         (stopped['state'], stopped['forced_down']))
        self.fake.advance(100)
        self.assertEqual(stopped['updated_at'],
                         self.service('compute1')['updated_at'])
        self.fake.service_up('compute1')
        self.fake.advance(fakenova.REPORT_INTERVAL)
        back = self.service('compute1')
        self.assertEqual('up', back['state'])
        self.assertGreater(model.nova_time(back['updated_at']),
                           model.nova_time(stopped['updated_at']))

    def test_enabling_drops_the_reason(self):
        sid = self.service('compute1')['id']
        self.gateway.disable_service(sid, 'maintenance')
        self.assertEqual(('disabled', 'maintenance'), (
            self.service('compute1')['status'],
            self.service('compute1')['disabled_reason']))
        self.gateway.enable_service(sid)
        self.assertEqual(('enabled', None), (
            self.service('compute1')['status'],
            self.service('compute1')['disabled_reason']))

    def test_down_hosts_are_not_chosen(self):
        self.fake.service_down('compute2')
        self.gateway.start_migration(self.sid, live=False)
        self.fake.settle()
        self.assertEqual('compute3', self.fake.server(self.sid)[
            'OS-EXT-SRV-ATTR:host'])
