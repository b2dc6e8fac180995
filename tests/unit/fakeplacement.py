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

"""A fake Placement at the HTTP level, reading a ``FakeNova``'s cloud.

Allocations follow from where Nova's servers and migrations are, the way
Nova moves them: while a migration is under way (its destination chosen,
not yet confirmed or reverted) the server's allocation is on the
destination's provider and the source's is held by the migration's UUID;
otherwise the server's is on its host. A test may add allocations that no
server explains (``leak``), change a provider's inventory, refuse the
caller by Placement's default policy (admin only), take Placement out of
the catalog, or fail reads.
"""

import copy
import http.client
import json
import re
import typing as ty
from unittest import mock

from keystoneauth1 import exceptions as ksa_exc
from openstack.placement.v1 import _proxy
import requests

from tests.unit import fakenova

ENDPOINT = 'http://placement.example'
# What a server holds unless a test says otherwise (a small flavor).
FLAVOR = {'VCPU': 1, 'MEMORY_MB': 2048, 'DISK_GB': 20}
# Each compute's inventory unless a test says otherwise.
INVENTORY = {
    'VCPU': {'total': 16, 'reserved': 0, 'allocation_ratio': 4.0},
    'MEMORY_MB': {'total': 65536, 'reserved': 512, 'allocation_ratio': 1.0},
    'DISK_GB': {'total': 1000, 'reserved': 0, 'allocation_ratio': 1.0},
}
_MIGRATING = ('pre-migrating', 'migrating', 'post-migrating', 'finished',
              'confirming', 'reverting', 'accepted', 'queued', 'preparing',
              'running')


class FakePlacement:
    def __init__(self, nova: 'fakenova.FakeNova') -> None:
        self.nova = nova
        self.inventories: ty.Dict[str, ty.Dict[str, dict]] = {
            host: copy.deepcopy(INVENTORY) for host in nova.services}
        # Per server ID, what it holds if not FLAVOR.
        self.flavors: ty.Dict[str, ty.Dict[str, int]] = {}
        # (host, consumer) -> resources: allocations no server explains.
        self.leaked: ty.Dict[ty.Tuple[str, str], ty.Dict[str, int]] = {}
        self.in_catalog = True
        self._failures: ty.List[int] = []
        self.requests: ty.List[ty.Tuple[str, str]] = []
        self.proxy = mock.Mock(spec=_proxy.Proxy)
        self.proxy.request.side_effect = self._request
        # Nova's scheduler asks Placement for room.
        nova.placement = self

    # -- test controls -------------------------------------------------------
    def set_inventory(self, host: str, rc: str, **fields: ty.Any) -> None:
        inv = self.inventories[host].setdefault(rc, {'total': 0})
        inv.update(fields)

    def set_flavor(self, sid: str, **resources: int) -> None:
        self.flavors[sid] = dict(resources)

    def leak(self, host: str, consumer: str,
             resources: ty.Optional[ty.Dict[str, int]] = None) -> None:
        self.leaked[(host, consumer)] = dict(resources or FLAVOR)

    def fail_reads(self, *statuses: int) -> None:
        """The next reads answer these statuses, one each."""
        self._failures.extend(statuses)

    # -- what Placement holds -------------------------------------------------
    def _host_of(self, uuid: str) -> ty.Optional[str]:
        for host, service in self.nova.services.items():
            if service['node_uuid'] == uuid:
                return host
        return None

    def allocations(self, host: str) -> ty.Dict[str, ty.Dict[str, int]]:
        held: ty.Dict[str, ty.Dict[str, int]] = {}
        records = [dict(r, dest_compute=r['dest_compute'] or r.get('claimed'))
                   for r in self.nova._migrations
                   if r['alive'] and not r['deleted']
                   and r['status'] in _MIGRATING
                   and (r['dest_compute'] or r.get('claimed'))]
        for sid, server in self.nova._servers.items():
            if server['deleted'] or not server['host']:
                continue
            resources = self.flavors.get(sid, FLAVOR)
            moving = [r for r in records if r['instance_uuid'] == sid]
            if moving:
                record = moving[-1]
                if record['dest_compute'] == host:
                    held[sid] = dict(resources)
                if record['source_compute'] == host:
                    held[record['uuid']] = dict(resources)
            elif server['host'] == host:
                held[sid] = dict(resources)
        for (where, consumer), resources in self.leaked.items():
            if where == host:
                held[consumer] = dict(resources)
        return held

    def has_room(self, host: str, sid: str) -> bool:
        """Whether ``host`` can take server ``sid`` (the scheduler's ask).

        Capacity as Placement counts it, and ``max_unit`` per consumer.
        """
        used = self.usages(host)
        for rc, n in self.flavors.get(sid, FLAVOR).items():
            inv = self.inventories.get(host, {}).get(rc)
            if inv is None:
                return n <= 0
            capacity = int((inv['total'] - inv.get('reserved', 0))
                           * inv.get('allocation_ratio', 1.0))
            if used.get(rc, 0) + n > capacity or \
                    n > inv.get('max_unit', inv['total']):
                return False
        return True

    def usages(self, host: str) -> ty.Dict[str, int]:
        used: ty.Dict[str, int] = {}
        for resources in self.allocations(host).values():
            for rc, n in resources.items():
                used[rc] = used.get(rc, 0) + n
        return used

    # -- HTTP --------------------------------------------------------------
    def _request(self, url: str, method: str, json: ty.Any = None,
                 microversion: ty.Optional[str] = None,
                 raise_exc: bool = False, **kw: ty.Any) -> requests.Response:
        self.requests.append((method, url))
        if not self.in_catalog:
            raise ksa_exc.EndpointNotFound(
                'Could not find requested endpoint in Service Catalog.')
        self.nova.advance(self.nova.latency)
        if self._failures:
            status = self._failures.pop(0)
            return self._response(url, status, {'errors': [{
                'status': status, 'title': http.client.responses.get(
                    status, 'Error')}]})
        if not self.nova.caller.admin:
            # Placement's default policy: admin (or service) only.
            return self._response(url, 403, {'errors': [{
                'status': 403, 'title': 'Forbidden',
                'detail': 'Access was denied to this resource.\n\n Policy '
                          'does not allow placement:resource_providers:'
                          'list to be performed.  '}]})
        if url == '/resource_providers' and method == 'GET':
            # Compute nodes without children (no vGPUs here).
            return self._response(url, 200, {'resource_providers': [{
                'uuid': s['node_uuid'], 'name': host, 'generation': 1,
                'root_provider_uuid': s['node_uuid'],
                'parent_provider_uuid': None}
                for host, s in sorted(self.nova.services.items())]})
        match = re.fullmatch(r'/resource_providers/([^/]+)/'
                             r'(inventories|usages|allocations)', url)
        host = self._host_of(match.group(1)) if match else None
        if method != 'GET' or host is None or match is None:
            return self._response(url, 404, {'errors': [{
                'status': 404, 'title': 'Not Found',
                'detail': 'No resource provider with uuid %s found'
                          % (match.group(1) if match else url)}]})
        what = match.group(2)
        if what == 'inventories':
            body: ty.Dict[str, ty.Any] = {'inventories': {
                rc: dict({'reserved': 0, 'min_unit': 1,
                          'max_unit': inv['total'], 'step_size': 1,
                          'allocation_ratio': 1.0}, **inv)
                for rc, inv in self.inventories[host].items()}}
        elif what == 'usages':
            body = {'usages': self.usages(host)}
        else:
            body = {'allocations': {
                consumer: {'resources': resources}
                for consumer, resources in self.allocations(host).items()}}
        body['resource_provider_generation'] = 1
        return self._response(url, 200, body)

    @staticmethod
    def _response(url: str, status: int, body: ty.Any) -> requests.Response:
        r = requests.Response()
        r.status_code = status
        r.reason = http.client.responses.get(status, '')
        r._content = json.dumps(body).encode()
        r.headers['Content-Type'] = 'application/json'
        r.request = requests.Request('GET', ENDPOINT + url).prepare()
        r.url = ENDPOINT + url
        return r
