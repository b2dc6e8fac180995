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

"""The two questions a rolling run asks, and stand-in answers.

SEAM, to be replaced when merging: ``room`` by the capacity estimate
(engine/capacity.py) and ``check_host`` by the empty-host check
(engine/hostcheck.py). The rolling run depends only on the two signatures
below; the implementations here are deliberately simple.
"""

import typing as ty

from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus import model

# Do these servers fit on these hosts? None: unknown (Placement refused,
# a host without a provider...). Used to steer the scheduler.
Room = ty.Callable[[ty.Sequence[model.Server], ty.Sequence[str]],
                   ty.Optional[bool]]


class HostCheck(ty.NamedTuple):
    empty: bool   # nothing of any server is left on the host
    line: str     # the one-line summary for progress, journal and report


CheckHost = ty.Callable[[str], HostCheck]


def unknown_room(servers: ty.Sequence[model.Server],
                 hosts: ty.Sequence[str]) -> ty.Optional[bool]:
    """No estimate at all: a rolling run then never steers."""
    return None


def servers_left(nova: nova_api.Nova) -> CheckHost:
    """Stand-in host check: the servers Nova lists on the host."""
    def check(host: str) -> HostCheck:
        left = nova.list_servers(host=host)
        if not left:
            return HostCheck(True, '%s: empty, no server left' % host)
        named = ', '.join('%s (%s, %s)' % (s.name, s.id, s.status)
                          for s in left[:5])
        more = ' and %d more' % (len(left) - 5) if len(left) > 5 else ''
        return HostCheck(False, '%s: %d server(s) left: %s%s' % (
            host, len(left), named, more))
    return check


def placement_room(nova: nova_api.Nova,
                   placement: nova_api.Placement) -> Room:
    """Stand-in estimate: the hosts' free resources, summed, per class.

    What the servers hold on their source providers against what the
    hosts' providers have free: no packing, no traits, no aggregates.
    """
    def room(servers: ty.Sequence[model.Server],
             hosts: ty.Sequence[str]) -> ty.Optional[bool]:
        if not servers:
            return True
        try:
            providers = {h.host: h.uuid for h in nova.hypervisors() if h.host}
            wanted = {s.id for s in servers}
            need: ty.Dict[str, int] = {}
            for source in {s.host for s in servers}:
                held = placement.provider_allocations(providers[source or ''])
                for consumer, resources in held.items():
                    if consumer in wanted:
                        for rc, n in resources.items():
                            need[rc] = need.get(rc, 0) + n
            free: ty.Dict[str, int] = {}
            for host in hosts:
                provider = placement.provider(providers[host])
                for rc, n in (provider.free() if provider else {}).items():
                    free[rc] = free.get(rc, 0) + n
        except (model.PlacementUnavailable, model.NovaError, KeyError):
            return None
        return all(free.get(rc, 0) >= n for rc, n in need.items())
    return room
