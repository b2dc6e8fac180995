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

"""Batch pre-flight: for each selected server, a mode and a verdict.

Pure. A server is ``planned`` (migrate it in this mode), ``adopt`` (it is
already migrating: follow that migration, never submit another) or
``skipped`` with the reason an operator needs.
"""

import dataclasses
import enum
import typing as ty

from osc_migrate_plus import model

COLD, LIVE, AUTO = 'cold', 'live', 'auto'
MODES = (COLD, LIVE, AUTO)


class Disposition(str, enum.Enum):
    PLANNED = 'planned'   # migrate it in its mode
    ADOPT = 'adopt'       # already migrating: follow that one
    SKIPPED = 'skipped'   # with the reason


PLANNED = Disposition.PLANNED
ADOPT = Disposition.ADOPT
SKIPPED = Disposition.SKIPPED

# What each kind of migration accepts (Nova's API state checks).
COLD_STATES = ('ACTIVE', 'SHUTOFF')
LIVE_STATES = ('ACTIVE', 'PAUSED')


@dataclasses.dataclass(frozen=True)
class PlanItem:
    server: model.Server
    mode: ty.Optional[model.Kind]
    verdict: Disposition
    reason: str = ''

    def to_journal(self) -> dict:
        return {'id': self.server.id, 'name': self.server.name,
                'project_id': self.server.project_id,
                'source': self.server.host, 'status': self.server.status,
                'mode': self.mode.value if self.mode else None,
                'verdict': self.verdict.value, 'reason': self.reason}


def choose_mode(requested: str, status: str) -> ty.Optional[model.Kind]:
    """The migration kind for a server in ``status``, or None if none fits.

    ``auto``: live for running or paused servers, cold for stopped ones.
    """
    if requested == AUTO:
        if status in LIVE_STATES:
            return model.Kind.LIVE
        if status in COLD_STATES:
            return model.Kind.COLD
        return None
    accepted = LIVE_STATES if requested == LIVE else COLD_STATES
    return model.Kind(requested) if status in accepted else None


def preflight(server: model.Server, requested_mode: str,
              source_hosts: ty.Sequence[str] = (),
              target_host: ty.Optional[str] = None) -> PlanItem:
    """A server's disposition.

    A host hidden by policy is not "no host": such a server is planned, and
    ``source_hosts`` are checked only where the host is visible (the caller
    vouches for servers Nova listed by host).
    """
    if requested_mode not in MODES:
        raise ValueError('unknown mode %r' % requested_mode)
    if server.status == 'ERROR':
        return PlanItem(server, None, SKIPPED, 'server is in ERROR state')
    if server.status == 'SHELVED_OFFLOADED' or (
            not server.host and not server.host_hidden):
        return PlanItem(server, None, SKIPPED,
                        'server is %s and on no host' % server.status)
    if source_hosts and server.host is not None and \
            server.host not in source_hosts:
        return PlanItem(server, None, SKIPPED, 'not on %s %s (on %s)' % (
            'source host' if len(source_hosts) == 1 else 'the source hosts',
            ', '.join(source_hosts), server.host))
    if (server.status == 'VERIFY_RESIZE'
            or server.task_state in model.MIGRATING_TASK_STATES):
        # Already migrating: follow that one, never submit a second.
        kind = model.Kind.LIVE if server.task_state == 'migrating' \
            else model.Kind.COLD
        return PlanItem(server, kind, ADOPT,
                        'already migrating (%s): adopted' % (
                            server.task_state or server.status))
    if server.task_state is not None:
        return PlanItem(server, None, SKIPPED,
                        'a task is in progress: %s' % server.task_state)
    if target_host is not None and target_host == server.host:
        return PlanItem(server, None, SKIPPED,
                        'already on the target host %s' % target_host)
    mode = choose_mode(requested_mode, server.status)
    if mode is None:
        if requested_mode == COLD and server.status in LIVE_STATES:
            why = 'cold migration needs ACTIVE or SHUTOFF; server is %s ' \
                  '(try --mode live or auto)' % server.status
        elif requested_mode == LIVE and server.status in COLD_STATES:
            why = 'live migration needs ACTIVE or PAUSED; server is %s ' \
                  '(try --mode cold or auto)' % server.status
        else:
            why = 'server is %s: no migration accepts that state' % (
                server.status)
        return PlanItem(server, None, SKIPPED, why)
    return PlanItem(server, mode, PLANNED)


def parse_server_list(text: str) -> ty.List[str]:
    """Names or IDs, one per line; ``#`` starts a comment; blanks ignored."""
    names = []
    for line in text.splitlines():
        entry = line.split('#', 1)[0].strip()
        if entry:
            names.append(entry)
    return names
