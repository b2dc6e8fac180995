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

"""The functional tests against a cloud someone else runs (devstack, say).

With ``OS_CLOUD`` set, ``tests.functional.base`` uses ``ExternalCloud``
instead of starting a minicloud: the same interface, backed by that cloud
through ``clouds.yaml`` alone. What only the harness can do (slow or failing
migrations, a compute taken down, a policy file, counting requests on
nova-api, a fault proxy, expiring a token) skips the test with that reason
(``HarnessOnly``); the rest runs as it is.

Environment:

``OS_CLOUD``
    The admin cloud of clouds.yaml (e.g. ``devstack-admin``).
``OS_CLOUD_MEMBER``, ``OS_CLOUD_MANAGER``
    Optional: a plain member, and a user with the ``manager`` role, of one
    project; tests that need them skip without.
``OSC_MIGRATE_TEST_IMAGE``, ``OSC_MIGRATE_TEST_FLAVOR``
    Optional: what test servers boot from; else the first active image
    (cirros if there is one) and the smallest flavor.
``OSC_MIGRATE_TEST_NOVA_MAJOR``
    Optional: the cloud's nova major version (29 for 2024.1); taken to be
    32 or newer (the manager role migrates) if not given.

The tests name compute hosts ``compute1``, ``compute2``, ... as the harness
does; here they stand for the cloud's enabled compute hosts, sorted: their
arguments are translated on the way in, and the CLI's output and ``truth()``
on the way out. Servers the tests boot are deleted when the class ends.
"""

import os
import re
import subprocess
import typing as ty
import unittest

import fixtures

from tests.minicloud import fixture as minicloud


class HarnessOnly(unittest.SkipTest):
    """The test needs a control only the in-process harness has."""

    def __init__(self, what: str) -> None:
        super().__init__('needs the harness (%s): not available against an '
                         'external cloud (OS_CLOUD)' % what)


def enabled() -> bool:
    return bool(os.environ.get('OS_CLOUD'))


class ExternalCloud(fixtures.Fixture):
    """A cloud given by ``OS_CLOUD``, behind MiniCloud's interface."""

    def __init__(self, computes: int = 3, confirm_window: int = 0,
                 policy: ty.Optional[ty.Dict[str, str]] = None,
                 **kwargs: ty.Any) -> None:
        super().__init__()
        self.computes = computes
        self.confirm_window = confirm_window
        self.policy = policy
        self.keep = False
        self.seeded: ty.List[str] = []
        self.clouds = {'admin': os.environ['OS_CLOUD']}
        for user, var in (('member', 'OS_CLOUD_MEMBER'),
                          ('manager', 'OS_CLOUD_MANAGER')):
            if os.environ.get(var):
                self.clouds[user] = os.environ[var]

    # -- lifecycle ---------------------------------------------------------
    def _setUp(self) -> None:
        if self.policy is not None:
            raise HarnessOnly('a Nova policy file')
        if self.confirm_window:
            raise HarnessOnly("Nova's resize_confirm_window")
        self.addCleanup(self._delete_seeded)
        admin = self.connection()
        services = [s for s in admin.compute.services()
                    if s.binary == 'nova-compute' and s.status == 'enabled'
                    and s.state == 'up']
        # A drain's --disable-source outlives the class (the harness's
        # cloud does not): enable again what was enabled.
        self.addCleanup(self._enable, [s.id for s in services])
        real = sorted({s.host for s in services})
        if len(real) < self.computes:
            raise HarnessOnly('%d enabled compute hosts, this cloud has %d'
                              % (self.computes, len(real)))
        self.aliases = {'compute%d' % (i + 1): host
                        for i, host in enumerate(real)}
        self.image_id = os.environ.get('OSC_MIGRATE_TEST_IMAGE') or \
            self._image(admin)
        self.flavor_id = os.environ.get('OSC_MIGRATE_TEST_FLAVOR') or \
            min(admin.compute.flavors(),
                key=lambda f: (f.ram, f.vcpus, f.disk)).id
        endpoint = admin.compute.get_endpoint()
        self.info = {'compute_url': endpoint, 'hosts': self.hosts}

    @staticmethod
    def _image(admin: ty.Any) -> str:
        images = [i for i in admin.image.images() if i.status == 'active']
        if not images:
            raise HarnessOnly('an image: the cloud has none active; set '
                              'OSC_MIGRATE_TEST_IMAGE')
        images.sort(key=lambda i: ('cirros' not in (i.name or ''), i.name))
        return images[0].id

    def _enable(self, service_ids: ty.List[str]) -> None:
        compute = self.connection().compute
        for service_id in service_ids:
            compute.put('/os-services/%s' % service_id,
                        json={'status': 'enabled'}, microversion='2.53')

    def _delete_seeded(self) -> None:
        admin = self.connection()
        for server_id in self.seeded:
            try:
                admin.compute.delete_server(server_id, ignore_missing=True)
            except Exception:  # noqa: S110 (best effort: the class ended)
                pass

    def log_tail(self, name: str = 'cloud.log', lines: int = 200) -> str:
        return '(an external cloud: its logs are its own)'

    # -- host names --------------------------------------------------------
    @property
    def hosts(self) -> ty.List[str]:
        return sorted(self.aliases, key=lambda a: int(a[len('compute'):]))

    def _in(self, text: str) -> str:
        return self.aliases.get(text, text)

    def _out(self, text: str) -> str:
        if not text:
            return text
        # Longest first: "devstack1" before "devstack".
        for alias, real in sorted(self.aliases.items(),
                                  key=lambda kv: -len(kv[1])):
            text = re.sub(r'(?<![\w.-])%s(?![\w-])' % re.escape(real), alias,
                          text)
        return text

    # -- clients -------------------------------------------------------------
    def _cloud(self, user: str) -> str:
        if user not in self.clouds:
            raise HarnessOnly('a %s user: set OS_CLOUD_%s' % (
                user, user.upper()))
        return self.clouds[user]

    def cli(self, user: str = 'admin') -> ty.List[str]:
        return [minicloud.openstack_cli(), '--os-cloud', self._cloud(user)]

    def cli_env(self, compute_url: ty.Optional[str] = None,
                clock_offset: float = 0) -> ty.Dict[str, str]:
        if compute_url:
            raise HarnessOnly('a fault proxy in front of nova-api')
        env = {k: v for k, v in os.environ.items() if k != 'OS_CLOUD'}
        if clock_offset:
            env.update(minicloud.faketime_env(clock_offset))
        return env

    def openstack(self, *args: str, user: str = 'admin',
                  timeout: float = 600,
                  env: ty.Optional[ty.Dict[str, str]] = None,
                  clock_offset: float = 0) -> subprocess.CompletedProcess:
        cmd = self.cli(user) + [self._in(a) for a in args]
        env = env or self.cli_env(clock_offset=clock_offset)
        result = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=timeout)
        result.stdout = self._out(result.stdout)
        result.stderr = self._out(result.stderr)
        return result

    def connection(self, user: str = 'admin') -> ty.Any:
        import openstack

        return openstack.connect(cloud=self._cloud(user))

    # -- servers -------------------------------------------------------------
    def _seeding(self, user: str) -> None:
        self._cloud(user)

    def seed_servers(self, host: ty.Optional[str], count: int,
                     **kwargs: ty.Any) -> ty.List[dict]:
        return minicloud.MiniCloud.seed_servers(
            self, self._in(host) if host else None, count, **kwargs)

    wait_servers = minicloud.MiniCloud.wait_servers

    def server(self, server_id: str, user: str = 'admin') -> dict:
        doc = minicloud.MiniCloud.server(self, server_id, user)
        for key in ('OS-EXT-SRV-ATTR:host', 'OS-EXT-SRV-ATTR:hypervisor_'
                    'hostname'):
            if doc.get(key):
                doc[key] = self._out(doc[key])
        return doc

    def truth(self, server_id: ty.Optional[str] = None
              ) -> ty.Dict[str, dict]:
        """Where each server is, as an admin reads it through the API."""
        compute = self.connection().compute
        if server_id:
            r = compute.get('/servers/%s' % server_id, microversion='2.74')
            docs = [r.json()['server']] if r.status_code == 200 else []
        else:
            docs = compute.get('/servers/detail?all_tenants=1',
                               microversion='2.74').json()['servers']
        servers = {}
        for doc in docs:
            r = compute.get('/os-migrations?instance_uuid=%s' % doc['id'],
                            microversion='2.80')
            migrations = sorted(r.json()['migrations'], key=lambda m: m['id'])
            servers[doc['id']] = {
                'name': doc['name'],
                'host': self._out(doc.get('OS-EXT-SRV-ATTR:host')),
                'node': doc.get('OS-EXT-SRV-ATTR:hypervisor_hostname'),
                'vm_state': doc.get('OS-EXT-STS:vm_state'),
                'task_state': doc.get('OS-EXT-STS:task_state'),
                'status': doc['status'],
                'migrations': [{
                    'id': m['id'], 'status': m['status'],
                    'migration_type': m['migration_type'],
                    'source_compute': self._out(m['source_compute']),
                    'dest_compute': self._out(m['dest_compute']),
                } for m in migrations],
            }
        return servers

    def nova_major(self) -> int:
        """``OSC_MIGRATE_TEST_NOVA_MAJOR``, else taken to be 32 or newer.

        Not to be had through the API: what matters here (the manager
        role's policy) came with nova 32.
        """
        return int(os.environ.get('OSC_MIGRATE_TEST_NOVA_MAJOR') or 32)

    # -- the harness's controls: not here ------------------------------------
    def reset(self) -> dict:
        return {}  # nothing of ours is in force

    def set_delay(self, seconds: float) -> dict:
        if seconds:
            raise HarnessOnly('slow migrations (set_delay)')
        return {}

    def fail_migrations(self, hosts: ty.List[str],
                        direction: str = 'to',
                        reason: ty.Optional[str] = None) -> dict:
        raise HarnessOnly('failing migrations (fail_migrations)')

    def stall_live(self, on: bool = True) -> dict:
        if on:
            raise HarnessOnly('live migrations that stall (stall_live)')
        return {}

    def service_down(self, host: str) -> dict:
        raise HarnessOnly('a compute taken down (service_down)')

    def service_up(self, host: str) -> dict:
        raise HarnessOnly('a compute brought back (service_up)')

    def set_resources(self, host: str, **sizes: ty.Any) -> dict:
        raise HarnessOnly("a compute's sizes changed (set_resources)")

    def auto_confirm(self) -> dict:
        raise HarnessOnly("Nova's auto-confirm on demand")

    def expire_token(self, user: str) -> dict:
        raise HarnessOnly('a token expired on demand')

    def requests(self, reset: bool = False) -> ty.List[str]:
        raise HarnessOnly('the requests nova-api received')

    def state(self) -> dict:
        raise HarnessOnly("the harness's state")

    @property
    def rss_mb(self) -> float:
        raise HarnessOnly("the harness's memory")
