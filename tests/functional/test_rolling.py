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

"""batch --rolling through the real CLI: hosts rebooted one after another.

The host command "reboots" its host through the harness's control: the
compute service goes down (no heartbeat, forced down) and comes back.
"""

import json
import os
import signal
import subprocess
import time
import uuid

from tests.functional import test_batch
from tests.minicloud import external

HOSTS = ('compute1', 'compute2', 'compute3')
# Takes $OSC_MIGRATE_HOST down and up again through the harness's control
# ($MINICLOUD_CONTROL); logs "host:index:resumed" to $ROLLING_LOG; fails
# on the second host while $ROLLING_BROKEN exists.
REBOOT = '''python3 -c '
import json, os, sys, time, urllib.request
env = os.environ
host = env["OSC_MIGRATE_HOST"]
with open(env["ROLLING_LOG"], "a") as f:
    f.write("%s:%s:%s\\n" % (host, env["OSC_MIGRATE_HOST_INDEX"],
                            env.get("OSC_MIGRATE_RESUMED", "0")))
if env.get("ROLLING_HANG") and env["OSC_MIGRATE_HOST_INDEX"] == "1" and \\
        not env.get("OSC_MIGRATE_RESUMED"):
    time.sleep(float(env["ROLLING_HANG"]))
    sys.exit(0)
if env["OSC_MIGRATE_HOST_INDEX"] == "2" and \\
        os.path.exists(env["ROLLING_BROKEN"]):
    print("firmware image missing on", host)
    sys.exit(5)
def control(action):
    request = urllib.request.Request(
        env["MINICLOUD_CONTROL"] + "/control", method="POST",
        data=json.dumps({"action": action, "host": host}).encode(),
        headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=120).read()
control("service-down")
time.sleep(2)
control("service-up")
print("rebooted", host)
' '''


class TestRolling(test_batch.BatchTestCase):
    COMPUTES = 4

    def setUp(self):
        super().setUp()
        if external.enabled():
            self.skipTest('the host command uses the harness control')
        self.log = os.path.join(self.state, 'ran.log')
        self.broken = os.path.join(self.state, 'broken')
        self.env = self.cloud.cli_env()
        self.env.update(MINICLOUD_CONTROL=self.cloud.info['control_url'],
                        ROLLING_LOG=self.log, ROLLING_BROKEN=self.broken)
        for host in HOSTS:
            self.addCleanup(self.openstack, 'compute', 'service', 'set',
                            '--enable', host, 'nova-compute')
            self.addCleanup(self.cloud.service_up, host)

    def run_cli(self, *args, expect_rc=0):
        result = self.openstack(*(test_batch.BATCH + args + ('-f', 'json')),
                                env=self.env, expect_rc=expect_rc)
        return {r['Server ID']: r for r in json.loads(result.stdout)}, result

    def rolling(self, path, *args, expect_rc=0):
        hosts = []
        for host in HOSTS:
            hosts += ['--source-host', host]
        return self.run_cli(*(hosts + [
            '--rolling', '--enable-after', '--host-command', REBOOT,
            '--interval', '1', '--timeout', '300', '--state-file', path]
            + list(args)), expect_rc=expect_rc)

    def ran(self):
        with open(self.log) as f:
            return f.read().split()

    def services(self):
        return {s['Host']: s for s in self.openstack_json(
            'compute', 'service', 'list', '--service', 'nova-compute')}

    def assertMovedOnce(self, servers, rows):  # noqa: N802
        for server in servers:
            sid = server['id']
            self.assertEqual(1, len(self.records(sid)), sid)
            self.assertEqual(1, rows[sid]['Moves'])
            self.assertEqual('confirmed', rows[sid]['Result'],
                             rows[sid]['Message'])
            view = self.server_view(sid)
            self.assertEqual('ACTIVE', view['status'])
            self.assertNotEqual(server['host'], view['host'])

    def seed_all(self):
        servers = []
        for host, n in (('compute1', 2), ('compute2', 1), ('compute3', 1)):
            for server in self.seed(host, n):
                servers.append(dict(server, host=host))
        # The next test starts from empty hosts.
        self.addCleanup(self.openstack, 'server', 'delete', '--wait',
                        *[s['id'] for s in servers])
        return servers

    def test_three_hosts_rebooted_each_server_moved_once(self):
        servers = self.seed_all()
        rows, result = self.rolling(self.journal())
        # Emptiest first: compute2, compute3 (1 each), then compute1.
        self.assertEqual(['compute2:1:0', 'compute3:2:0', 'compute1:3:0'],
                         self.ran())
        self.assertMovedOnce(servers, rows)
        services = self.services()
        for host in HOSTS:
            self.assertEqual(('enabled', 'up'), (
                services[host]['Status'], services[host]['State']))
        self.assertIn('compute2: nova-compute up, enabled again',
                      result.stderr)
        self.assertIn('Host compute1: step 3, done', result.stderr)

    def test_command_fails_on_the_second_host_then_resume(self):
        servers = self.seed_all()
        open(self.broken, 'w').close()
        path = self.journal()
        rows, result = self.rolling(path, expect_rc=1)
        self.assertIn('compute3: host command exited 5: firmware image '
                      'missing on compute3', result.stderr)
        self.assertEqual(['compute2:1:0', 'compute3:2:0'], self.ran())
        services = self.services()
        self.assertEqual('disabled', services['compute3']['Status'])
        self.assertEqual('enabled', services['compute2']['Status'])
        # compute1 was not reached: its servers did not move.
        for server in servers:
            if server['host'] == 'compute1':
                self.assertEqual([], self.records(server['id']))
        os.unlink(self.broken)  # the fix
        rows, result = self.run_cli('--resume', path, '--interval', '1')
        self.assertEqual(['compute2:1:0', 'compute3:2:0', 'compute3:2:1',
                          'compute1:3:0'], self.ran())
        self.assertMovedOnce(servers, rows)
        services = self.services()
        for host in HOSTS:
            self.assertEqual('enabled', services[host]['Status'])

    def test_sigkill_during_a_host_command_then_resume(self):
        """SIGKILL while the first host's command runs, then --resume.

        The hosts are an aggregate's (--aggregate). The resume runs the
        command again (OSC_MIGRATE_RESUMED=1) and goes on; each server
        moves once.
        """
        servers = self.seed_all()
        path = self.journal()
        # The first command hangs (and, orphaned, ends harmlessly later).
        env = dict(self.env, ROLLING_HANG='20')
        # The hosts of an aggregate, this time.
        name = 'rolling-%s' % uuid.uuid4().hex[:6]
        self.openstack('aggregate', 'create', name)
        self.addCleanup(self.openstack, 'aggregate', 'delete', name)
        for host in HOSTS:
            self.openstack('aggregate', 'add', 'host', name, host)
            self.addCleanup(self.openstack, 'aggregate', 'remove', 'host',
                            name, host)
        cmd = self.cloud.cli() + list(test_batch.BATCH) + [
            '--aggregate', name] + [
            '--rolling', '--enable-after', '--host-command', REBOOT,
            '--interval', '1', '--timeout', '300', '--state-file', path,
            '-f', 'json']
        process = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while not (os.path.exists(self.log) and self.ran()):
            self.assertLess(time.monotonic(), deadline, 'no host command')
            if process.poll() is not None:
                self.fail('the run ended first: %s' % (
                    process.communicate(),))
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.communicate()
        self.assertEqual(['compute2:1:0'], self.ran())
        rows, result = self.run_cli('--resume', path, '--interval', '1')
        self.assertEqual(['compute2:1:0', 'compute2:1:1', 'compute3:2:0',
                          'compute1:3:0'], self.ran())
        self.assertIn('compute2: host command started again '
                      '(OSC_MIGRATE_RESUMED=1)', result.stderr)
        self.assertMovedOnce(servers, rows)
        services = self.services()
        for host in HOSTS:
            self.assertEqual('enabled', services[host]['Status'])
