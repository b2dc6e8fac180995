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

"""Will the plan fit? An estimate from Placement, before anything moves.

Each planned server needs what its allocation holds on its source host's
resource provider (every resource class of it). The candidates are the
other compute hosts (not one this batch drains, nor, for a server named
alone, its own; service enabled and up; only the ``--host`` target when
given), each with what Placement lets
consumers use: (total - reserved) x allocation_ratio - used, and at most
``max_unit`` per consumer. The plan is placed on a copy of those free
capacities, largest server first (the largest share of any class of the
candidates' total free), each on the first candidate with room for all of
it (hosts by name).

Only an estimate: Nova's scheduler also applies filters the client cannot
see (affinity, aggregates, traits, PCI devices), spreads rather than packs,
and other users' servers move meanwhile. A fit is no promise.

``estimate`` is pure; ``check`` does the reads: the hypervisors (Nova),
one allocations read per source provider (every server's needs at once) and
one provider read per candidate: a few requests per host, none per server.
"""

import dataclasses
import enum
import math
import typing as ty

from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus.engine import plan
from osc_migrate_plus import model

# Listed first in messages; any other class follows by name.
CLASSES = ('VCPU', 'MEMORY_MB', 'DISK_GB')


class Fit(str, enum.Enum):
    FITS = 'fits'
    NO_CAPACITY = 'no capacity'
    UNKNOWN = 'unknown'   # its needs could not be read


@dataclasses.dataclass(frozen=True)
class Need:
    """What one planned server holds; ``resources`` None when unknown."""

    server_id: str
    name: str
    resources: ty.Optional[ty.Dict[str, int]]
    why_unknown: str = ''
    source: ty.Optional[str] = None  # its host: never its destination


@dataclasses.dataclass(frozen=True)
class Host:
    """A candidate: what it has free, and the most one consumer may take."""

    name: str
    free: ty.Dict[str, int]
    max_unit: ty.Dict[str, int] = dataclasses.field(default_factory=dict)
    host: str = ''  # the compute host (``name`` may add the node)


@dataclasses.dataclass(frozen=True)
class Verdict:
    fit: Fit
    message: str


@dataclasses.dataclass
class Estimate:
    checked: bool
    # Per planned server ID (empty when not checked).
    verdicts: ty.Dict[str, Verdict]
    # The one line for the whole plan ('' when there was nothing to check).
    summary: str
    # Why not checked.
    reason: str = ''
    names: ty.Dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def without_room(self) -> ty.List[str]:
        """IDs of the servers that do not fit, in the plan's order."""
        return [sid for sid, v in self.verdicts.items()
                if v.fit == Fit.NO_CAPACITY]

    def message(self, server_id: str) -> str:
        """The server's capacity message for the ``Message`` column."""
        if not self.checked:
            return 'capacity not checked: %s' % self.reason
        verdict = self.verdicts.get(server_id)
        return verdict.message if verdict else ''


def not_checked(reason: str) -> Estimate:
    return Estimate(False, {}, 'capacity not checked: %s; the run goes on '
                    'without the estimate' % reason, reason)


def _ordered(classes: ty.Iterable[str]) -> ty.List[str]:
    classes = set(classes)
    return [c for c in CLASSES if c in classes] + sorted(classes -
                                                         set(CLASSES))


def amounts(resources: ty.Dict[str, int]) -> str:
    """``VCPU 2, MEMORY_MB 4096, DISK_GB 20``."""
    return ', '.join('%s %d' % (rc, resources[rc])
                     for rc in _ordered(resources))


def _usable(host: Host, free: ty.Dict[str, int], rc: str) -> int:
    """What one more consumer could take of ``rc`` there."""
    left = free.get(rc, 0)
    if rc in host.max_unit:
        left = min(left, host.max_unit[rc])
    return max(left, 0)


def _room(host: Host, free: ty.Dict[str, int],
          needs: ty.Dict[str, int]) -> bool:
    return all(n <= 0 or (rc in free and n <= _usable(host, free, rc))
               for rc, n in needs.items())


def estimate(needs: ty.Sequence[Need], hosts: ty.Sequence[Host],
             no_host: str = 'no candidate host') -> Estimate:
    """Place ``needs`` on ``hosts``: largest first, first fit.

    ``no_host`` says why there is no candidate, for the messages.
    """
    free = {h.name: dict(h.free) for h in hosts}
    before: ty.Dict[str, int] = {}
    for h in hosts:
        for rc, n in h.free.items():
            before[rc] = before.get(rc, 0) + max(n, 0)

    def share(need: Need) -> float:
        # The largest fraction of the candidates' free it takes of any
        # class; a class no candidate has is infinitely large.
        assert need.resources is not None  # noqa: S101 (filtered below)
        shares = [n / before[rc] if before.get(rc, 0) > 0 else math.inf
                  for rc, n in need.resources.items() if n > 0]
        return max(shares, default=0.0)

    known = [n for n in needs if n.resources is not None]
    # Stable: equal shares keep the plan's order.
    largest_first = sorted(known, key=share, reverse=True)
    verdicts: ty.Dict[str, Verdict] = {}
    for need in largest_first:
        resources = need.resources or {}
        for h in hosts:
            if need.source and h.host == need.source:
                continue
            if _room(h, free[h.name], resources):
                for rc, n in resources.items():
                    free[h.name][rc] = free[h.name].get(rc, 0) - n
                verdicts[need.server_id] = Verdict(
                    Fit.FITS, 'capacity: fits (needs %s)'
                    % amounts(resources))
                break
        else:
            others = [h for h in hosts
                      if not (need.source and h.host == need.source)]
            if others:
                most = {rc: max(_usable(h, free[h.name], rc)
                                for h in others)
                        for rc in resources}
                where = 'the most one candidate host has left: %s' % \
                    amounts(most)
            else:
                where = no_host
            verdicts[need.server_id] = Verdict(
                Fit.NO_CAPACITY, 'capacity: no capacity: needs %s; %s'
                % (amounts(resources), where))
    for need in needs:
        if need.resources is None:
            verdicts[need.server_id] = Verdict(
                Fit.UNKNOWN, 'capacity: unknown: %s' % need.why_unknown)
    # In the plan's order.
    ordered = {n.server_id: verdicts[n.server_id] for n in needs}
    result = Estimate(True, ordered, '', names={n.server_id: n.name or
                                                n.server_id for n in needs})
    result.summary = _summary(result, needs, hosts, before, free)
    return result


def _summary(result: Estimate, needs: ty.Sequence[Need],
             hosts: ty.Sequence[Host], before: ty.Dict[str, int],
             free: ty.Dict[str, ty.Dict[str, int]]) -> str:
    wanted: ty.Dict[str, int] = {}
    for need in needs:
        for rc, n in (need.resources or {}).items():
            wanted[rc] = wanted.get(rc, 0) + n
    after = {rc: sum(max(free[h.name].get(rc, 0), 0) for h in hosts)
             for rc in before}
    shown = set(wanted) | set(before)
    parts = ['capacity estimate from Placement: %d planned server(s) need '
             '%s; %d candidate host(s) have %s free, %s after the plan' % (
                 len(needs), amounts({rc: wanted.get(rc, 0) for rc in
                                      shown}) or 'nothing',
                 len(hosts), amounts({rc: before.get(rc, 0) for rc in
                                      shown}) or 'nothing',
                 amounts({rc: after.get(rc, 0) for rc in shown})
                 or 'nothing')]
    short = result.without_room
    if short:
        parts.append('%d without room: %s' % (
            len(short), ', '.join(result.names[s] for s in short)))
    unknown = [sid for sid, v in result.verdicts.items()
               if v.fit == Fit.UNKNOWN]
    if unknown:
        parts.append('%d not estimated: %s' % (
            len(unknown), ', '.join(result.names[s] for s in unknown)))
    if not short and not unknown:
        parts.append('all fit')
    return '; '.join(parts)


def check(nova: nova_api.Nova, placement: nova_api.Placement,
          items: ty.Sequence[plan.PlanItem],
          target_host: ty.Optional[str] = None,
          only_hosts: ty.Optional[ty.Collection[str]] = None,
          drained: ty.Optional[ty.Collection[str]] = None) -> Estimate:
    """The estimate for the planned servers of ``items``.

    ``only_hosts``: the candidates are among these (a rolling run's step:
    the hosts waiting their turn are no destinations). ``drained``: the
    hosts being emptied, no destinations either (None: every host a
    planned server is on). Servers named one by one leave their hosts
    open to the others: each only not to its own.

    Never fails the run: when Nova will not list the hypervisors (admin
    only by default) or Placement cannot be read, the estimate says
    "capacity not checked" and why.
    """
    planned = [i for i in items if i.verdict == plan.PLANNED]
    if not planned:
        return Estimate(True, {}, '')
    try:
        nodes = nova.hypervisors()
    except model.NovaError as exc:
        if exc.status == 403:
            return not_checked(
                'Nova refused to list the compute hosts\' resource '
                'providers (os-hypervisors: %s); its policy allows admins '
                'only by default' % exc)
        return not_checked('listing the hypervisors failed: %s' % exc)
    by_host: ty.Dict[str, ty.List[model.Hypervisor]] = {}
    for node in nodes:
        if node.host:
            by_host.setdefault(node.host, []).append(node)
    sources = {i.server.host for i in planned if i.server.host} \
        if drained is None else set(drained)
    try:
        needs = _needs(placement, planned, by_host)
        hosts = _candidates(placement, nodes, sources, target_host,
                            only_hosts)
    except model.PlacementUnavailable as exc:
        return not_checked(str(exc))
    if target_host is not None:
        no_host = ('no candidate host: the target %s is not an enabled, up '
                   'compute host other than a source' % target_host)
    else:
        no_host = ('no candidate host: no enabled, up compute host other '
                   'than the %s' % ('sources' if sources else
                                    'server\'s own'))
    return estimate(needs, hosts, no_host)


def _needs(placement: nova_api.Placement,
           planned: ty.Sequence[plan.PlanItem],
           by_host: ty.Dict[str, ty.List[model.Hypervisor]]
           ) -> ty.List[Need]:
    """Each server's allocation on its host: one read per source node."""
    held: ty.Dict[str, ty.Dict[str, ty.Dict[str, int]]] = {}
    for host in sorted({i.server.host for i in planned
                        if i.server.host in by_host}):
        mine: ty.Dict[str, ty.Dict[str, int]] = {}
        for node in by_host[host]:
            for consumer, resources in \
                    placement.provider_allocations(node.uuid).items():
                mine.setdefault(consumer, {}).update(resources)
        held[host] = mine
    needs = []
    for item in planned:
        s = item.server
        if s.host is None:
            needs.append(Need(s.id, s.name, None, 'its host is hidden by '
                                                  'policy'))
        elif s.host not in by_host:
            needs.append(Need(s.id, s.name, None, 'its host %s has no '
                              'compute node in os-hypervisors' % s.host))
        elif s.id not in held[s.host]:
            needs.append(Need(s.id, s.name, None, 'Placement holds no '
                              'allocation of it on its host %s' % s.host))
        else:
            needs.append(Need(s.id, s.name, held[s.host][s.id],
                              source=s.host))
    return needs


def _candidates(placement: nova_api.Placement,
                nodes: ty.Sequence[model.Hypervisor],
                sources: ty.Set[str],
                target_host: ty.Optional[str],
                only_hosts: ty.Optional[ty.Collection[str]] = None
                ) -> ty.List[Host]:
    hosts = []
    for node in sorted(nodes, key=lambda n: (n.host or '', n.name)):
        if not node.host or node.host in sources or \
                not (node.enabled and node.up):
            continue
        if only_hosts is not None and node.host not in only_hosts:
            continue
        if target_host is not None and node.host != target_host:
            continue
        provider = placement.provider(node.uuid)
        if provider is None:
            continue  # no provider (yet): Nova cannot place there either
        name = node.host if len([n for n in nodes if n.host == node.host]
                                ) == 1 else '%s (%s)' % (node.host,
                                                         node.name)
        hosts.append(Host(name, provider.free(), {
            rc: inv.max_unit for rc, inv in provider.inventories.items()
            if inv.max_unit is not None}, host=node.host))
    return hosts
