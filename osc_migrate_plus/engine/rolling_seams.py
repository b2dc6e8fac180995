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

"""The two questions a rolling run asks, answered by the batch's own parts.

``room``: the capacity estimate (engine/capacity.py) over the hosts that may
take a step's servers. ``check_host``: the host check (engine/hostcheck.py)
of one host, before its command. The rolling run depends only on the two
signatures below (a test may stand anything behind them).
"""

import typing as ty

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import capacity
from osc_migrate_plus.engine import hostcheck
from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus.engine import plan
from osc_migrate_plus import model

# Do these servers fit on these hosts? None: unknown (Placement refused,
# a server's allocation not found...). Used to steer the scheduler.
Room = ty.Callable[[ty.Sequence[model.Server], ty.Sequence[str]],
                   ty.Optional[bool]]


class HostCheck(ty.NamedTuple):
    empty: bool   # nothing of any server is left on the host
    line: str     # the one-line summary for progress, journal and report


# The host, and the run's entries (what was said of each server).
CheckHost = ty.Callable[[str, ty.Sequence[batch.Entry]], HostCheck]


def capacity_room(nova: nova_api.Nova,
                  placement: nova_api.Placement) -> Room:
    """The capacity estimate, its candidates limited to ``hosts``."""
    def room(servers: ty.Sequence[model.Server],
             hosts: ty.Sequence[str]) -> ty.Optional[bool]:
        if not servers:
            return True
        found = capacity.check(
            nova, placement, [plan.PlanItem(s, None, plan.PLANNED)
                              for s in servers], only_hosts=set(hosts))
        if not found.checked or any(v.fit == capacity.Fit.UNKNOWN
                                    for v in found.verdicts.values()):
            return None
        return not found.without_room
    return room


def host_check(nova: nova_api.Nova,
               placement: ty.Optional[nova_api.Placement],
               require_empty: bool = False) -> CheckHost:
    """The host check: no server, none arriving, no migration holding it.

    ``require_empty`` (--require-empty): a leaked allocation, or
    allocations that could not be read, keep the host's command from
    running too.
    """
    def check(host: str, entries: ty.Sequence[batch.Entry]) -> HostCheck:
        [report] = hostcheck.check(
            nova, placement, [host], hostcheck.notes_from_entries(entries),
            names={e.server_id: e.server.name for e in entries})
        held = report.fails(require_empty) or bool(report.leaving)
        return HostCheck(not held, report.line())
    return check
