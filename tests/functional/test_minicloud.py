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

"""The real Nova harness does what the rest of the suite relies on.

Everything here goes through the real ``openstack`` CLI (core commands only)
over HTTP to the real nova-api, except the harness controls themselves.
"""

import datetime
import email.utils
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

from tests.functional import base
from tests.minicloud import faultproxy
from tests.minicloud import venv

# The newest microversion of each series' nova-api.
MAX_MICROVERSION = {'2024.1': '2.96', '2025.1': '2.100', '2026.1': '2.103',
                    '2026.2': '2.104'}
POLICY_403 = ("Policy doesn't allow os_compute_api:os-migrate-server:migrate "
              "to be performed.")
# What a process sees of its clocks: wall (two ways), and whether the
# monotonic and wall clocks run over a 0.5 s sleep.
CLOCKS = """
import datetime, json, time
m, w = time.monotonic(), time.time()
time.sleep(0.5)
print(json.dumps({'time': time.time(),
                  'now': datetime.datetime.now().timestamp(),
                  'monotonic_ran': time.monotonic() - m,
                  'wall_ran': time.time() - w}))
"""


class TestMiniCloud(base.MiniCloudTestCase):
    HARNESS_ONLY = 'tests of the harness itself'

    def _one(self, host='compute1', stopped=0):
        prefix = 'mc-%s' % uuid.uuid4().hex[:6]
        return self.cloud.seed_servers(host, 1, stopped=stopped,
                                       prefix=prefix)[0]['id']

    def _wait(self, server_id, status, timeout=60):
        self.cloud.wait_servers([server_id], status, timeout)
        return self.server_view(server_id)

    def _migrations(self, server_id):
        return self.openstack_json('server', 'migration', 'list',
                                   '--server', server_id)

    def test_runs_the_series_asked(self):
        # MINICLOUD_SERIES picks the Nova series; the cloud says what runs.
        series = os.environ.get('MINICLOUD_SERIES') or venv.DEFAULT_SERIES
        self.assertEqual(series, self.cloud.series)
        nova, placement = venv.SERIES[series]
        self.assertEqual((nova, placement),
                         (self.cloud.nova_version,
                          self.cloud.info['versions']['openstack-placement']))
        # nova < 33 has no native-thread mode: eventlet, as Nova's own tests.
        self.assertIn(self.cloud.info['concurrency'],
                      ('eventlet', 'threading'))
        self.assertEqual(int(nova.split('.')[0]) >= 33,
                         self.cloud.info['concurrency'] == 'threading')
        # The sqlite trick (oslo.db internals) holds on this oslo.db.
        self.assertEqual(['nova_api.sqlite', 'nova_cell0.sqlite',
                          'nova_cell1.sqlite', 'placement.sqlite'],
                         self.cloud.info['shared_sqlite'])
        # nova-api serves the series' microversion range.
        r = self.cloud.connection().compute.get('/')
        self.assertEqual(200, r.status_code, r.text)
        self.assertEqual(MAX_MICROVERSION[series],
                         r.json()['version']['version'])

    def test_many_concurrent_clients_none_reset(self):
        # socketserver's listen backlog is 5; a burst of clients beyond it
        # was reset or left hanging by the harness. nova-api, 256 at once.
        url = urllib.parse.urlsplit(self.cloud.info['compute_url'])
        barrier = threading.Barrier(256)
        statuses = []

        def get():
            conn = http.client.HTTPConnection(url.hostname, url.port,
                                              timeout=60)
            barrier.wait()
            try:
                conn.request('GET', url.path + '/',
                             headers={'X-Auth-Token': 'admin:admin'})
                statuses.append(conn.getresponse().status)
            except OSError as exc:
                statuses.append(repr(exc))
            finally:
                conn.close()

        threads = [threading.Thread(target=get) for _ in range(256)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(90)
        self.assertEqual(256, len(statuses))
        self.assertEqual([], [s for s in statuses if s != 200])

    def test_cold_migrate_confirm(self):
        sid = self._one()
        self.openstack('server', 'migrate', '--wait', sid)
        view = self.server_view(sid)
        self.assertEqual('VERIFY_RESIZE', view['status'])
        self.assertIn(view['host'], ('compute2', 'compute3'))
        self.openstack('server', 'migration', 'confirm', sid)
        after = self._wait(sid, 'ACTIVE')
        self.assertEqual(view['host'], after['host'])
        [record] = self._migrations(sid)
        self.assertEqual('confirmed', record['Status'])
        self.assertEqual('migration', record['Type'])
        self.assertEqual('compute1', record['Source Compute'])
        self.assertEqual(view['host'], record['Dest Compute'])

    def test_cold_migrate_revert(self):
        sid = self._one()
        self.openstack('server', 'migrate', '--wait', sid)
        self.assertEqual('VERIFY_RESIZE', self.server_view(sid)['status'])
        self.openstack('server', 'migration', 'revert', sid)
        after = self._wait(sid, 'ACTIVE')
        self.assertEqual('compute1', after['host'])
        [record] = self._migrations(sid)
        self.assertEqual('reverted', record['Status'])

    def test_live_migrate(self):
        sid = self._one()
        self.openstack('server', 'migrate', '--live-migration', '--wait', sid)
        view = self.server_view(sid)
        self.assertEqual('ACTIVE', view['status'])
        self.assertNotEqual('compute1', view['host'])
        [record] = self._migrations(sid)
        self.assertEqual('live-migration', record['Type'])
        self.assertEqual('completed', record['Status'])

    def test_migration_list_shows_every_record(self):
        sid = self._one()
        self.openstack('server', 'migrate', '--wait', sid)
        self.openstack('server', 'migration', 'revert', sid)
        self._wait(sid, 'ACTIVE')
        self.openstack('server', 'migrate', '--live-migration', '--wait', sid)
        records = self._migrations(sid)
        self.assertEqual([('live-migration', 'completed'),
                          ('migration', 'reverted')],
                         [(r['Type'], r['Status']) for r in records])
        everything = self.openstack_json('server', 'migration', 'list')
        self.assertEqual(set(), {r['Id'] for r in records}
                         - {r['Id'] for r in everything})

    def test_member_gets_nova_policy_403(self):
        prefix = 'mem-%s' % uuid.uuid4().hex[:6]
        [server] = self.cloud.seed_servers(None, 1, prefix=prefix,
                                           user='member')
        result = self.openstack('server', 'migrate', server['id'],
                                user='member', expect_rc=1)
        self.assertIn(POLICY_403, result.stderr)
        self.assertIn('403', result.stderr)
        self.assertEqual('', result.stdout)
        # Nothing moved and no migration was recorded.
        self.assertEqual([], self._migrations(server['id']))
        self.assertEqual('ACTIVE', self.server_view(server['id'])['status'])

    def test_placement_in_clouds_yaml_admin_only(self):
        """Placement is reached from clouds.yaml with the same tokens.

        Each hypervisor's ID is its resource provider's UUID; a server's
        allocation is on its host's provider; a member is refused (403) as
        Placement's default policy does.
        """
        from osc_migrate_plus import gateway as gw
        from osc_migrate_plus import model
        from osc_migrate_plus import placement as pl

        sid = self._one('compute2')
        conn = self.cloud.connection()
        nodes = {h.host: h for h in gw.NovaGateway(conn.compute).hypervisors()}
        self.assertEqual(set(self.cloud.hosts), set(nodes))
        placement = pl.PlacementGateway(conn.placement)
        provider = placement.provider(nodes['compute2'].uuid)
        for rc in ('VCPU', 'MEMORY_MB', 'DISK_GB'):
            self.assertGreater(provider.inventories[rc].capacity, 0, rc)
        held = placement.provider_allocations(nodes['compute2'].uuid)
        self.assertIn(sid, held)
        self.assertGreater(held[sid]['MEMORY_MB'], 0)
        member = pl.PlacementGateway(self.cloud.connection('member').placement,
                                     sleep=lambda s: None)
        exc = self.assertRaises(model.PlacementUnavailable, member.provider,
                                nodes['compute2'].uuid)
        self.assertIn('403', str(exc))

    # -- controls ----------------------------------------------------------
    def test_seed_servers_on_a_host_some_stopped(self):
        prefix = 'seed-%s' % uuid.uuid4().hex[:6]
        seeded = self.cloud.seed_servers('compute2', 4, stopped=2,
                                         prefix=prefix)
        listed = self.openstack_json('server', 'list', '--all-projects',
                                     '--host', 'compute2', '--name', prefix,
                                     '--long')
        self.assertEqual(sorted(s['id'] for s in seeded),
                         sorted(s['ID'] for s in listed))
        self.assertEqual(['ACTIVE', 'ACTIVE', 'SHUTOFF', 'SHUTOFF'],
                         sorted(s['Status'] for s in listed))
        self.assertEqual({'compute2'}, {s['Host'] for s in listed})

    def test_delay_slows_migrations_so_phases_can_be_seen(self):
        sid = self._one()
        self.cloud.set_delay(5)
        started = time.monotonic()
        self.openstack('server', 'migrate', sid)
        seen = set()
        while True:
            # Read in-process: a CLI process per read can take seconds on
            # a loaded machine and miss the phase.
            status = self.cloud.server(sid)['status']
            seen.add(status)
            if status == 'VERIFY_RESIZE':
                break
            self.assertLess(time.monotonic() - started, 60)
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        self.assertIn('RESIZE', seen)
        self.assertGreaterEqual(elapsed, 5)
        self.openstack('server', 'migration', 'confirm', sid)
        self._wait(sid, 'ACTIVE')

    def test_cold_migration_to_failing_host_errors_with_reason(self):
        sid = self._one()
        self.cloud.fail_migrations(['compute2'], direction='to')
        self.openstack('--os-compute-api-version', '2.56', 'server',
                       'migrate', '--host', 'compute2', '--wait', sid,
                       expect_rc=None)
        view = self._wait(sid, 'ACTIVE')
        self.assertEqual('compute1', view['host'])  # back on its source
        [record] = self._migrations(sid)
        self.assertEqual('error', record['Status'])
        self.assertIn('migrations to compute2 are set to fail',
                      self._failed_event_details(sid))
        # Other destinations still work.
        self.openstack('--os-compute-api-version', '2.56', 'server',
                       'migrate', '--host', 'compute3', '--wait', sid)
        self.assertEqual('compute3', self.server_view(sid)['host'])

    def test_migrations_from_failing_host_error(self):
        sid = self._one(host='compute3', stopped=1)
        self.cloud.fail_migrations(['compute3'], direction='from')
        # Not --wait: core OSC would wait forever for ACTIVE/VERIFY_RESIZE.
        self.openstack('server', 'migrate', sid)
        self._wait_migration_status(sid, 'error')
        # A stopped server goes back to SHUTOFF on its source.
        view = self._wait(sid, 'SHUTOFF')
        self.assertEqual('compute3', view['host'])
        [record] = self._migrations(sid)
        self.assertEqual('error', record['Status'])
        self.assertIn('migrations from compute3 are set to fail',
                      self._failed_event_details(sid))

    def test_live_migration_to_failing_host_errors_with_reason(self):
        sid = self._one()
        self.cloud.fail_migrations(['compute3'], direction='to')
        self.openstack('--os-compute-api-version', '2.30', 'server',
                       'migrate', '--live-migration', '--host', 'compute3',
                       '--wait', sid, expect_rc=None)
        view = self._wait(sid, 'ACTIVE')
        self.assertEqual('compute1', view['host'])
        [record] = self._migrations(sid)
        self.assertEqual('error', record['Status'])
        self.assertIn('migrations to compute3 are set to fail',
                      self._failed_event_details(sid))

    def _wait_migration_status(self, server_id, status, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            records = self._migrations(server_id)
            if records and records[0]['Status'] == status:
                return records[0]
            self.assertLess(time.monotonic(), deadline,
                            'migration not %s: %s' % (status, records))
            time.sleep(0.5)

    def _failed_event_details(self, server_id):
        """Nova's reason for a failed migration: the failed action event."""
        compute = self.cloud.connection().compute
        actions = compute.get('/servers/%s/os-instance-actions' % server_id,
                              microversion='2.84').json()['instanceActions']
        for action in actions:
            if action['action'] not in ('migrate', 'live-migration'):
                continue
            detail = compute.get('/servers/%s/os-instance-actions/%s' % (
                server_id, action['request_id']),
                microversion='2.84').json()['instanceAction']
            for event in detail['events']:
                if event['result'] == 'Error':
                    return event.get('details') or ''
        self.fail('no failed migration event for %s' % server_id)

    def test_service_down_and_up(self):
        def state(host):
            services = self.openstack_json('compute', 'service', 'list',
                                           '--service', 'nova-compute',
                                           '--host', host)
            return services[0]['State']

        self.cloud.service_down('compute3')
        self.assertEqual('down', state('compute3'))
        # The scheduler no longer picks it: cold migrations go elsewhere.
        sid = self._one(host='compute1')
        self.openstack('server', 'migrate', '--wait', sid)
        self.assertEqual('compute2', self.server_view(sid)['host'])
        self.openstack('server', 'migration', 'confirm', sid)
        self._wait(sid, 'ACTIVE')
        self.cloud.service_up('compute3')
        self.assertEqual('up', state('compute3'))
        self.openstack('--os-compute-api-version', '2.56', 'server',
                       'migrate', '--host', 'compute3', '--wait', sid)
        self.assertEqual('compute3', self.server_view(sid)['host'])

    # -- the fault proxy -------------------------------------------------
    def _proxy(self):
        proxy = faultproxy.FaultProxy(self.cloud.info['compute_url'])
        self.addCleanup(proxy.stop)
        return proxy, self.cloud.cli_env(proxy.url)

    @staticmethod
    def _get(base_url, path):
        """GET as admin; the response (read) and its body."""
        url = urllib.parse.urlsplit(base_url + path)
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
        try:
            conn.request('GET', url.path, headers={
                'X-Auth-Token': 'admin:admin',
                'OpenStack-API-Version': 'compute 2.74'})
            response = conn.getresponse()
            return response, json.loads(response.read())
        finally:
            conn.close()

    def test_proxy_passes_novas_date_and_server_once(self):
        proxy, _ = self._proxy()
        direct, _ = self._get(self.cloud.info['compute_url'], '/servers')
        via, body = self._get(proxy.url, '/servers')
        self.assertIn('servers', body)
        for response in (direct, via):
            self.assertEqual(1, len(response.msg.get_all('Date')))
            self.assertEqual(1, len(response.msg.get_all('Server')))
        # Nova's (wsgiref's), not the proxy's (http.server's BaseHTTP).
        self.assertEqual(direct.getheader('Server'), via.getheader('Server'))
        self.assertIn('WSGIServer', via.getheader('Server'))
        sent = email.utils.parsedate_to_datetime(via.getheader('Date'))
        self.assertLess(abs(sent - datetime.datetime.now(
            datetime.timezone.utc)).total_seconds(), 30)
        # An answer of the proxy's own carries the proxy's headers.
        proxy.fail('GET', '/servers', status=503)
        failed, body = self._get(proxy.url, '/servers')
        self.assertEqual(503, failed.status)
        self.assertIn('BaseHTTP', failed.getheader('Server'))
        self.assertEqual(1, len(failed.msg.get_all('Date')))
        self.assertEqual('fault proxy: 503', body['message'])

    def test_proxy_lose_reply_answers_at_once_nova_acts_later(self):
        sid = self._one()
        proxy, env = self._proxy()
        late = proxy.lose_reply('POST', '/servers/%s/action' % sid,
                                'migrate', forward_after=3.0)
        result = self.openstack('server', 'migrate', sid, env=env,
                                expect_rc=1)
        # The client got the gateway's 504 before Nova saw the request.
        self.assertFalse(late.forwarded.is_set())
        self.assertIn('504', result.stderr)
        self.assertIn('gave up waiting', result.stderr)
        self.assertEqual([], self.cloud.truth(sid)[sid]['migrations'])
        self.assertEqual((1, 1), (late.count, proxy.injected['late']))
        # Nova got it 3 s later, and acted on it.
        self.assertTrue(late.forwarded.wait(30))
        self.assertEqual(202, late.nova_status)
        view = self._wait(sid, 'VERIFY_RESIZE')
        self.assertNotEqual('compute1', view['host'])
        # times=1: the next one goes through unharmed.
        self.openstack('server', 'migration', 'confirm', sid, env=env)
        self._wait(sid, 'ACTIVE')
        [record] = self._migrations(sid)
        self.assertEqual('confirmed', record['Status'])
        self.assertEqual(1, late.count)

    def test_proxy_fail_with_and_without_nova_acting(self):
        sid = self._one()
        self.openstack('server', 'migrate', '--wait', sid)
        proxy, env = self._proxy()
        path = '/servers/%s/action' % sid
        unsent = proxy.fail('POST', path, 'confirmResize', status=503)
        applied = proxy.fail('POST', path, 'confirmResize', status=502,
                             forward=True)
        # 1st confirm: 503, never reached Nova.
        result = self.openstack('server', 'migration', 'confirm', sid,
                                env=env, expect_rc=1)
        self.assertIn('503', result.stderr)
        self.assertEqual((1, None), (unsent.count, unsent.nova_status))
        self.assertEqual('VERIFY_RESIZE', self.cloud.truth(sid)[sid][
            'status'])
        # 2nd confirm: Nova confirmed it (204), the client got 502.
        result = self.openstack('server', 'migration', 'confirm', sid,
                                env=env, expect_rc=1)
        self.assertIn('502', result.stderr)
        self.assertEqual((1, 204), (applied.count, applied.nova_status))
        self._wait(sid, 'ACTIVE')
        [record] = self._migrations(sid)
        self.assertEqual('confirmed', record['Status'])
        self.assertEqual(2, proxy.injected['fail'])

    # -- the client's clock ----------------------------------------------
    def test_cli_clock_an_hour_ahead_still_runs_and_talks(self):
        env = self.cloud.cli_env(clock_offset=3600)
        probe = subprocess.run([sys.executable, '-c', CLOCKS], env=env,
                               capture_output=True, text=True, timeout=60)
        clocks = json.loads(probe.stdout)
        now = time.time()
        self.assertAlmostEqual(3600, clocks['time'] - now, delta=30)
        self.assertAlmostEqual(3600, clocks['now'] - now, delta=30)
        # Not frozen: both clocks run at their pace.
        self.assertAlmostEqual(0.5, clocks['monotonic_ran'], delta=0.3)
        self.assertAlmostEqual(0.5, clocks['wall_ran'], delta=0.3)
        # The cloud's clock is left alone: Nova's Date is the real time.
        response, _ = self._get(self.cloud.info['compute_url'], '/servers')
        sent = email.utils.parsedate_to_datetime(response.getheader('Date'))
        self.assertLess(abs(sent.timestamp() - now), 30)
        # And the CLI under it still talks to the cloud (admin_token).
        sid = self._one()
        listed = json.loads(self.openstack(
            'server', 'list', '--all-projects', '-f', 'json', env=env).stdout)
        self.assertIn(sid, [s['ID'] for s in listed])
