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

"""Which servers a batch takes, and where each stands on a resume.

Selection reads Nova through the gateway (names and IDs, or every server of
an exact host in all projects, filtered); planning narrows by project and
status and runs the pre-flight; a resume decides per journaled server:
finished ones are kept as they are, submitted ones are adopted, the rest are
planned again (after checking Nova for a submission that may have landed).
"""

import dataclasses
import typing as ty

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import plan
from osc_migrate_plus.engine import verdict
from osc_migrate_plus import gateway as gw


@dataclasses.dataclass(frozen=True)
class Selection:
    names: ty.List[str]
    source_host: ty.Optional[str] = None
    project: ty.Optional[str] = None
    status: ty.Optional[str] = None
    mode: str = plan.COLD
    target_host: ty.Optional[str] = None


def select(gateway: gw.NovaGateway,
           sel: Selection) -> ty.List[verdict.Server]:
    """The selected servers, each once, in the order given or listed."""
    if sel.source_host or sel.target_host:
        hosts = gateway.compute_hosts()
        for option, host in (('--source-host', sel.source_host),
                             ('--host', sel.target_host)):
            if host and host not in hosts:
                raise gw.NovaError('%s %s: no such compute host; compute '
                                   'hosts: %s' % (option, host,
                                                  ', '.join(hosts)))
    servers: ty.Dict[str, verdict.Server] = {}
    if sel.names:
        for name in sel.names:
            server = gateway.find_server(name)
            servers.setdefault(server.id, server)
    else:
        for server in gateway.list_servers(host=sel.source_host,
                                           project=sel.project,
                                           status=sel.status):
            servers.setdefault(server.id, server)
    return list(servers.values())


def plan_items(servers: ty.List[verdict.Server],
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
        else:
            items.append(plan.preflight(server, sel.mode, sel.source_host,
                                        sel.target_host))
    return items


def resumed_entry(gateway: gw.NovaGateway, sid: str,
                  saved: jrn.ServerState, options: batch.Options,
                  source_host: ty.Optional[str]
                  ) -> ty.Tuple[batch.Entry, ty.Optional[tuple]]:
    """One server of a resumed batch, and how to adopt it (or None)."""
    record = saved.plan or {}
    old = verdict.Server(sid, record.get('name') or '',
                         record.get('status') or '', None,
                         record.get('source'), record.get('project_id'))
    if saved.state in (jrn.FINISHED, jrn.SKIPPED):
        # Finished servers are not touched again.
        item = plan.PlanItem(old, record.get('mode'), plan.SKIPPED
                             if saved.state == jrn.SKIPPED
                             else plan.PLANNED, record.get('reason', ''))
        entry = batch.new_entry(item, options)
        entry.state = 'done'
        entry.result = saved.result or batch.SKIPPED
        entry.message = 'finished before the resume' if \
            saved.state == jrn.FINISHED else item.reason
        entry.attempts = saved.attempts
        return entry, None
    server = gateway.get_server(sid)
    # Its source is where the batch found it, wherever it is now.
    as_found = dataclasses.replace(server, host=old.host or server.host)
    adopt: ty.Optional[tuple] = None
    if saved.state == jrn.SUBMITTED:
        adopt = (saved.migration_id, saved.baseline_id)
    elif saved.state == jrn.SUBMITTING:
        # The request may or may not have reached Nova: look.
        newest = gateway.newest_migration(sid)
        if (newest is not None and newest.id > saved.baseline_id) or \
                server.task_state in verdict.MIGRATING_TASK_STATES:
            adopt = (None, saved.baseline_id)
    if adopt is not None:
        entry = batch.new_entry(plan.PlanItem(
            as_found, record.get('mode'), plan.ADOPT), options)
    else:
        # Never submitted, or the submission never reached Nova: plan it
        # again from what the server is now.
        entry = batch.new_entry(plan.preflight(
            server, options.mode, source_host, options.host), options)
        if entry.item.verdict == plan.ADOPT:
            adopt = (None, 0)
    entry.attempts = saved.attempts
    return entry, adopt
