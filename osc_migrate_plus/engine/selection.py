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

"""Which servers a batch takes, and what the pre-flight says of each.

Selection reads Nova (names and IDs, or every server of an exact host in all
projects, filtered); planning narrows by project and status and runs the
pre-flight.
"""

import dataclasses
import typing as ty
import uuid

from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus.engine import plan
from osc_migrate_plus.engine import verdict
from osc_migrate_plus import model


@dataclasses.dataclass(frozen=True)
class Selection:
    names: ty.List[str]
    source_hosts: ty.Tuple[str, ...] = ()
    project: ty.Optional[str] = None
    status: ty.Optional[str] = None
    mode: str = plan.COLD
    target_host: ty.Optional[str] = None


def check_hosts(nova: nova_api.Nova,
                named: ty.Sequence[ty.Tuple[str, ty.Optional[str]]]) -> None:
    """Each ``(option, host)`` given names a compute host.

    Compute services are admin-only by Nova's default policy: their 403
    means these options are not for this user, said before anything changes.
    """
    named = [(option, host) for option, host in named if host]
    if not named:
        return
    try:
        hosts = nova.compute_hosts()
    except model.NovaError as exc:
        if exc.status != 403:
            raise
        raise model.NovaError(
            '%s: Nova does not let you list compute hosts (%s): naming a '
            'compute host (--source-host, --host, --disable-source) needs '
            'admin. A project manager migrates the servers of its own '
            'project, named or with --project, and lets Nova choose the '
            'destination. Nothing was changed.' % (' '.join(
                '%s %s' % pair for pair in named), exc), exc.status)
    for option, host in named:
        if host not in hosts:
            raise model.NovaError('%s %s: no such compute host; compute '
                                  'hosts: %s' % (option, host,
                                                 ', '.join(hosts)))


def aggregate_hosts(nova: nova_api.Nova, name: str) -> ty.Tuple[str, ...]:
    """The compute hosts of the host aggregate ``name`` (admin)."""
    try:
        aggregates = nova.aggregates()
    except model.NovaError as exc:
        if exc.status != 403:
            raise
        raise model.NovaError('--aggregate %s: Nova does not let you list '
                              'host aggregates (%s): it needs admin. Nothing '
                              'was changed.' % (name, exc), exc.status)
    found = [a for a in aggregates if a.get('name') == name]
    if not found:
        raise model.NovaError('--aggregate %s: no such host aggregate; '
                              'aggregates: %s' % (name, ', '.join(sorted(
                                  a.get('name') or '?' for a in aggregates))
                                  or 'none'))
    hosts = tuple(sorted(found[0].get('hosts') or ()))
    if not hosts:
        raise model.NovaError('--aggregate %s: the aggregate has no hosts'
                              % name)
    return hosts


def _hosts_text(hosts: ty.Sequence[str]) -> str:
    return ', '.join(hosts)


def select(nova: nova_api.Nova, sel: Selection) -> ty.List[model.Server]:
    """The selected servers, each once, in the order given or listed."""
    check_hosts(nova, [('--source-host', h) for h in sel.source_hosts]
                + [('--host', sel.target_host)])
    if sel.target_host and sel.target_host in sel.source_hosts:
        raise model.NovaError('--host %s is also a source host: a server '
                              'cannot be moved to the host it is drained '
                              'from' % sel.target_host)
    servers: ty.Dict[str, model.Server] = {}
    if sel.names:
        for server in _named(nova, sel.names):
            servers.setdefault(server.id, server)
        return list(servers.values())
    for host in sel.source_hosts or (None,):
        listed = nova.list_servers(host=host, project=sel.project,
                                   status=sel.status)
        hidden = [s for s in listed if s.host_hidden]
        if hidden and host:
            _check_host_filter(nova, sel)
        if host and not nova.lists_all_projects:
            _refuse_own_project(sel)
        _check_project_filter(listed, sel)
        for server in listed:
            if server.host_hidden and host:
                # Nova listed it by host, so that is where it is.
                server = dataclasses.replace(server, host=host)
            servers.setdefault(server.id, server)
    return list(servers.values())


def _id_key(text: str) -> ty.Optional[str]:
    """A server ID as written (dashes or not, any case), else None."""
    bare = text.replace('-', '').lower()
    if len(bare) == 32 and all(c in '0123456789abcdef' for c in bare):
        return bare
    return None


def _named(nova: nova_api.Nova,
           names: ty.Sequence[str]) -> ty.List[model.Server]:
    """Each named server, in the order given.

    One read each costs a request per server, yet servers named together
    mostly share a few hosts: after reading one, one listing of its host
    answers every other server named by ID there. Listing goes on while it
    pays (it found another), so the cost is at most one read each, plus
    one. Names, which need not be unique, are always looked up alone.
    """
    found: ty.Dict[str, model.Server] = {}
    listing_pays = True
    for name in names:
        if name in found:
            continue
        server = found[name] = nova.find_server(name)
        if not (listing_pays and server.host) or server.host_hidden:
            continue
        left = {_id_key(n): n for n in names
                if n not in found and _id_key(n)}
        if not left:
            continue
        hits = 0
        for listed in nova.list_servers(host=server.host):
            other = left.get(_id_key(listed.id))
            if other is not None and listed.host == server.host:
                found[other] = listed
                hits += 1
        listing_pays = hits > 0
    return [found[n] for n in names]


def _refuse_own_project(sel: Selection) -> None:
    hosts = _hosts_text(sel.source_hosts)
    raise model.NovaError(
        '--source-host %s: Nova lists you only the servers of your own '
        'project (it refused all_tenants), so a drain of %s would leave '
        'every other project\'s servers there; it needs admin. Nothing was '
        'changed.' % (hosts, hosts))


def _check_host_filter(nova: nova_api.Nova, sel: Selection) -> None:
    """Refuse --source-host if Nova ignores the host filter for us.

    Nova silently drops a filter its policy does not allow
    (``os_compute_api:servers:allow_all_filters``), and where it also hides
    host names nothing would tell the servers of that host from the others:
    a drain would move every server. One listing for a host that cannot
    exist tells.
    """
    probe = 'osc-migrate-plus-no-such-host-%s' % uuid.uuid4().hex
    if nova.list_servers(host=probe, project=sel.project, status=sel.status):
        raise model.NovaError(
            '--source-host %s: this cloud hides host names from you '
            '(policy os_compute_api:os-extended-server-attributes) and '
            'ignores the host filter for you (policy '
            'os_compute_api:servers:allow_all_filters), so the servers of '
            '%s cannot be told from the others. Name the servers instead; '
            'nothing was changed.' % (_hosts_text(sel.source_hosts),
                                      _hosts_text(sel.source_hosts)))


def _check_project_filter(listed: ty.List[model.Server],
                          sel: Selection) -> None:
    """Refuse --project if Nova ignored it: it lists only our own project.

    Nova keeps the ``project_id`` filter for admins and drops it for
    everyone else without a word.
    """
    others = sorted({s.project_id or '?' for s in listed
                     if sel.project and s.project_id != sel.project})
    if others:
        raise model.NovaError(
            '--project %s: Nova lists only the servers of your own project '
            '(%s) to you; the servers of another project need admin. '
            'Nothing was changed.' % (sel.project, ', '.join(others)))


def plan_items(servers: ty.List[model.Server],
               sel: Selection) -> ty.List[plan.PlanItem]:
    """Pre-flight each server.

    Named servers outside the filters are skipped with the reason (listed
    ones were filtered by Nova already).
    """
    items = []
    wanted_status = sel.status.upper() if sel.status else None
    for server in servers:
        if sel.project and server.project_id != sel.project:
            items.append(plan.PlanItem(server, None, plan.SKIPPED,
                                       'not in project %s' % sel.project))
        elif wanted_status and server.status != wanted_status:
            items.append(plan.PlanItem(server, None, plan.SKIPPED,
                                       'status is %s, not %s' % (
                                           server.status, wanted_status)))
        elif sel.source_hosts and server.host is None and \
                server.host_hidden:
            items.append(plan.PlanItem(
                server, None, plan.SKIPPED, 'its host is hidden by policy: '
                'cannot tell whether it is on %s'
                % _hosts_text(sel.source_hosts)))
        else:
            items.append(plan.preflight(server, sel.mode, sel.source_hosts,
                                        sel.target_host))
    return items


def visible_adoptions(nova: nova_api.Nova,
                      items: ty.List[plan.PlanItem]) -> ty.List[plan.PlanItem]:
    """Skip servers under a migration that Nova does not show us.

    A project manager reads only the migrations its project started
    (``project_id``): one an admin started on its server is not listed,
    and following it would end in a wrong verdict.
    """
    if not nova.migrations_project:
        return items
    checked = []
    for item in items:
        if item.verdict == plan.ADOPT and not verdict.in_progress(
                next(iter(nova.migrations(item.server.id, limit=1)), None)):
            item = plan.PlanItem(
                item.server, None, plan.SKIPPED,
                'a migration is under way that Nova does not show you: it '
                'lists to a project manager only the migrations its project '
                '(%s) started; follow it with admin credentials'
                % nova.migrations_project)
        checked.append(item)
    return checked
