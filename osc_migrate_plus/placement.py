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

"""The Placement gateway: the only module that sends requests to Placement.

Reads only: a provider's inventories and usages (for the capacity
estimate) and the allocations held against it (for the empty-host check).
Through openstacksdk's placement proxy, so the catalog, endpoint overrides
and TLS options are the user's. Placement's policy is admin-only by
default: a refusal, like a Placement missing from the catalog, is
``model.PlacementUnavailable`` with the reason; what needs Placement says
so and the run goes on.
"""

import random
import time
import typing as ty

from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc

from osc_migrate_plus import model

# Inventories, usages and provider allocations are all in 1.0.
MICROVERSION = '1.0'
# A provider's tree (in_tree): vGPUs, for one, are on children of the
# compute node's provider.
TREE_MICROVERSION = '1.14'


class PlacementGateway:
    def __init__(self, proxy: ty.Any,
                 sleep: ty.Optional[ty.Callable[[float], None]] = None,
                 read_retries: int = 3) -> None:
        self._proxy = proxy
        self._sleep = sleep or time.sleep
        self._read_retries = read_retries
        # Requests sent, for the efficiency tests and the progress line.
        self.requests = 0
        # Root provider -> the rest of its tree, read once for all.
        self._trees: ty.Optional[ty.Dict[str, ty.List[str]]] = None

    def _get(self, url: str, microversion: str = MICROVERSION
             ) -> ty.Optional[dict]:
        """GET ``url``; None when Placement says 404."""
        attempt = 0
        while True:
            self.requests += 1
            try:
                response = self._proxy.request(
                    url, 'GET', microversion=microversion, raise_exc=False)
            except (ksa_exc.EndpointNotFound, ksa_exc.CatalogException,
                    sdk_exc.ServiceDisabledException) as exc:
                raise model.PlacementUnavailable(
                    'Placement is not in the service catalog: %s' % exc)
            except (ksa_exc.Unauthorized,
                    ksa_exc.AuthorizationFailure) as exc:
                raise model.CredentialsExpired(
                    'the identity service refused the credentials: %s'
                    % exc)
            except (ksa_exc.ConnectionError, ksa_exc.HttpError) as exc:
                if attempt >= self._read_retries:
                    raise model.PlacementUnavailable(
                        'Placement cannot be reached: %s' % exc)
                status = None
            else:
                status = response.status_code
                if status < 400:
                    try:
                        return response.json()
                    except ValueError as exc:
                        # A proxy's error page in front of Placement.
                        raise model.PlacementUnavailable(
                            'Placement answered what is not JSON: %s' % exc)
                if status == 404:
                    return None
                if status == 401:
                    raise model.CredentialsExpired(
                        'Placement refused the credentials (HTTP 401): the '
                        'token expired or was revoked')
                if (status < 500 and status != 429) or \
                        attempt >= self._read_retries:
                    raise model.PlacementUnavailable(self._refusal(response))
            attempt += 1
            self._sleep(min(0.5 * 2 ** attempt, 8) * random.uniform(0.5, 1.5))

    @staticmethod
    def _refusal(response: ty.Any) -> str:
        try:
            errors = response.json().get('errors') or [{}]
            detail = errors[0].get('detail') or errors[0].get('title')
        except (ValueError, AttributeError):
            detail = None
        detail = (detail or response.reason or '').strip()
        if response.status_code == 403:
            return ('Placement refused to show resource providers (HTTP 403: '
                    '%s); its policy allows admins only by default'
                    % (detail or 'forbidden'))
        return 'Placement answered HTTP %s: %s' % (response.status_code,
                                                   detail)

    def tree(self, root: str) -> ty.List[str]:
        """The providers of ``root``'s tree, ``root`` first.

        Every provider is listed once (one request, 1.14 for the roots) and
        kept for the run: a provider tree changes when a host's devices do.
        """
        if self._trees is None:
            body = self._get('/resource_providers', TREE_MICROVERSION) or {}
            trees: ty.Dict[str, ty.List[str]] = {}
            for p in body.get('resource_providers') or ():
                top = p.get('root_provider_uuid')
                if p.get('uuid') and top and p['uuid'] != top:
                    trees.setdefault(top, []).append(p['uuid'])
            self._trees = trees
        return [root] + sorted(self._trees.get(root, ()))

    def _one(self, uuid: str) -> ty.Optional[model.Provider]:
        inventories = self._get('/resource_providers/%s/inventories' % uuid)
        if inventories is None:
            return None
        usages = self._get('/resource_providers/%s/usages' % uuid) or {}
        return model.Provider(
            uuid=uuid, name='',
            inventories={
                rc: model.Inventory(
                    total=int(inv.get('total', 0)),
                    reserved=int(inv.get('reserved', 0)),
                    allocation_ratio=float(inv.get('allocation_ratio', 1.0)),
                    min_unit=int(inv.get('min_unit', 1)),
                    max_unit=(int(inv['max_unit'])
                              if inv.get('max_unit') is not None else None),
                    step_size=int(inv.get('step_size', 1)))
                for rc, inv in (inventories.get('inventories') or {}).items()},
            usages={rc: int(n) for rc, n in
                    (usages.get('usages') or {}).items()})

    def provider(self, uuid: str) -> ty.Optional[model.Provider]:
        """A compute node's inventories and usages over its whole tree.

        None if it does not exist. The children's (vGPUs, say) count as
        the host's: the scheduler asks for room in the whole tree. A class
        on several providers of the tree is pooled (its capacity and use
        summed, one consumer's most the largest of them). Two requests per
        provider, plus the tree's; the answers may straddle a change
        (Placement offers no single read), which an estimate can live with.
        """
        providers = [p for p in (self._one(u) for u in self.tree(uuid))
                     if p is not None]
        if not providers or providers[0].uuid != uuid:
            return None
        if len(providers) == 1:
            return providers[0]
        pooled: ty.Dict[str, ty.List[model.Inventory]] = {}
        usages: ty.Dict[str, int] = {}
        for provider in providers:
            for rc, inv in provider.inventories.items():
                pooled.setdefault(rc, []).append(inv)
            for rc, n in provider.usages.items():
                usages[rc] = usages.get(rc, 0) + n
        inventories = {}
        for rc, invs in pooled.items():
            if len(invs) == 1:
                inventories[rc] = invs[0]
                continue
            units = [i.max_unit for i in invs]
            inventories[rc] = model.Inventory(
                total=sum(i.capacity for i in invs),
                max_unit=None if None in units else max(
                    u for u in units if u is not None))
        return model.Provider(uuid, '', inventories, usages)

    def provider_allocations(self, uuid: str
                             ) -> ty.Dict[str, ty.Dict[str, int]]:
        """Consumer UUID -> resources it holds in this provider's tree."""
        held: ty.Dict[str, ty.Dict[str, int]] = {}
        for member in self.tree(uuid):
            body = self._get('/resource_providers/%s/allocations' % member)
            for consumer, found in ((body or {}).get('allocations')
                                    or {}).items():
                mine = held.setdefault(consumer, {})
                for rc, n in (found.get('resources') or {}).items():
                    mine[rc] = mine.get(rc, 0) + int(n)
        return held
