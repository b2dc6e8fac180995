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

"""The one state machine: what phase a migration is in, and its verdict.

Pure: it reads a server snapshot and its migration record and says what is
happening, whether it is over and how, and what the follower should do next
(confirm or revert). Success needs the record AND the server to agree (host
changed, status back to what it was), never "the poll loop ended".
"""

import dataclasses
import enum
import typing as ty


class Result(str, enum.Enum):
    MIGRATED = 'migrated'      # moved; a cold one waits in VERIFY_RESIZE
    CONFIRMED = 'confirmed'
    REVERTED = 'reverted'
    FAILED = 'failed'
    TIMEOUT = 'timeout'
    ABORTED = 'aborted'
    INTERRUPTED = 'interrupted'


class Goal(str, enum.Enum):
    MIGRATE = 'migrate'  # stop at VERIFY_RESIZE (cold) / completed (live)
    CONFIRM = 'confirm'
    REVERT = 'revert'


class Action(str, enum.Enum):
    CONFIRM = 'confirm'
    REVERT = 'revert'


COLD = 'cold'
LIVE = 'live'

# Nova's migration record statuses.
COLD_RUNNING = ('pre-migrating', 'migrating', 'post-migrating')
LIVE_RUNNING = ('accepted', 'queued', 'preparing', 'running',
                'post-migrating')
FAILED_STATUSES = ('error', 'failed', 'cancelled')
FINAL_STATUSES = FAILED_STATUSES + ('confirmed', 'reverted', 'completed',
                                    'done')
# Server task states that mean "a migration is under way" before the record
# may exist (right after the API's 202).
MIGRATING_TASK_STATES = ('resize_prep', 'resize_migrating',
                         'resize_migrated', 'resize_finish', 'migrating',
                         'resize_confirming', 'resize_reverting')


@dataclasses.dataclass(frozen=True)
class Server:
    id: str
    name: str
    status: str
    task_state: ty.Optional[str]
    host: ty.Optional[str]
    project_id: ty.Optional[str] = None
    fault: ty.Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Migration:
    id: int
    uuid: ty.Optional[str]
    type: str  # 'migration', 'resize', 'live-migration', 'evacuation'
    status: str
    source: ty.Optional[str]
    dest: ty.Optional[str]
    created_at: ty.Optional[str] = None
    updated_at: ty.Optional[str] = None
    server_id: ty.Optional[str] = None

    @property
    def kind(self) -> str:
        return LIVE if self.type == 'live-migration' else COLD


@dataclasses.dataclass
class Target:
    """What we know of one server being followed, besides Nova's view."""

    server_id: str
    source: ty.Optional[str]           # host before the migration
    # ACTIVE / SHUTOFF / PAUSED before the migration; None when we attached
    # to a migration already under way (then any settled state it may
    # legitimately end in is accepted).
    original_status: ty.Optional[str]
    goal: Goal = Goal.MIGRATE
    kind: ty.Optional[str] = None       # cold / live, once known
    migration_id: ty.Optional[int] = None  # pinned once seen (or given)
    sent: ty.Optional[Action] = None    # confirm/revert already sent
    abort_sent: bool = False
    explain_tries: int = 0              # polls spent waiting for a reason


@dataclasses.dataclass(frozen=True)
class Assessment:
    phase: str
    result: ty.Optional[Result] = None
    action: ty.Optional[Action] = None
    reason: str = ''

    @property
    def done(self) -> bool:
        return self.result is not None


def assess(target: Target, server: Server,
           migration: ty.Optional[Migration]) -> Assessment:
    """Decide where ``target``'s migration stands."""
    if migration is None:
        return _no_record(server)
    if target.migration_id is not None and migration.id != target.migration_id:
        return Assessment('superseded', Result.FAILED,
                          reason='a newer migration %s (%s) replaced the one '
                                 'being followed (%s)' % (
                                     migration.id, migration.status,
                                     target.migration_id))
    if migration.status in FAILED_STATUSES:
        if migration.status == 'cancelled' and target.abort_sent:
            return Assessment('cancelled', Result.ABORTED,
                              reason='live migration aborted at the deadline')
        return Assessment(migration.status, Result.FAILED,
                          reason='migration %s is %s' % (migration.id,
                                                         migration.status))
    if server.status == 'ERROR':
        return Assessment('error', Result.FAILED,
                          reason='server went to ERROR')
    if migration.kind == LIVE:
        return _live(target, server, migration)
    return _cold(target, server, migration)


def _no_record(server: Server) -> Assessment:
    # Right after the 202 the record may not exist yet; the server already
    # shows the task. Never a verdict: the follower bounds how long.
    if server.status == 'ERROR':
        return Assessment('error', Result.FAILED,
                          reason='server went to ERROR before a migration '
                                 'record appeared')
    return Assessment('starting')


def _settled(server: Server) -> bool:
    # Nova marks the record confirmed/reverted a moment before it saves the
    # server out of VERIFY_RESIZE: not settled yet.
    return server.task_state is None and server.status not in (
        'VERIFY_RESIZE', 'RESIZE', 'REVERT_RESIZE', 'MIGRATING')


SETTLED_STATUSES = {COLD: ('ACTIVE', 'SHUTOFF'), LIVE: ('ACTIVE', 'PAUSED')}


def _status_kept(target: Target, server: Server, kind: str) -> bool:
    if target.original_status is None:
        return server.status in SETTLED_STATUSES[kind]
    return server.status == target.original_status


def _was(target: Target) -> str:
    return target.original_status or 'unknown'


def _cold(target: Target, server: Server,
          migration: Migration) -> Assessment:
    status = migration.status
    source = target.source or migration.source
    if status in COLD_RUNNING:
        return Assessment(status)
    if status == 'finished':
        if server.status != 'VERIFY_RESIZE':
            return Assessment('finishing')
        if server.host == source:
            return Assessment('verify_resize', Result.FAILED,
                              reason='server is in VERIFY_RESIZE on its '
                                     'source host %s' % source)
        if target.goal == Goal.MIGRATE:
            return Assessment('verify_resize', Result.MIGRATED)
        wanted = Action.CONFIRM if target.goal == Goal.CONFIRM \
            else Action.REVERT
        if target.sent == wanted:
            # Sent, Nova has not picked it up yet (confirm is async).
            return Assessment('confirming' if wanted == Action.CONFIRM
                              else 'reverting')
        return Assessment('verify_resize', action=wanted)
    if status == 'confirming':
        return Assessment('confirming')
    if status == 'reverting':
        return Assessment('reverting')
    if status == 'confirmed':
        if not _settled(server) or server.host == source:
            return Assessment('confirming')
        if target.goal == Goal.REVERT:
            return Assessment('confirmed', Result.FAILED,
                              reason='Nova confirmed the migration by itself '
                                     '(resize_confirm_window) before it '
                                     'could be reverted')
        if not _status_kept(target, server, COLD):
            return Assessment('confirmed', Result.FAILED,
                              reason='confirmed on %s but the server is %s, '
                                     'it was %s' % (server.host, server.status,
                                                    _was(target)))
        return Assessment('confirmed', Result.CONFIRMED)
    if status == 'reverted':
        if not _settled(server):
            return Assessment('reverting')
        if target.goal != Goal.REVERT:
            return Assessment('reverted', Result.FAILED,
                              reason='the migration was reverted: server is '
                                     'back on %s' % server.host)
        if server.host != source:
            return Assessment('reverted', Result.FAILED,
                              reason='reverted, but the server is on %s, not '
                                     'its source %s' % (server.host, source))
        if not _status_kept(target, server, COLD):
            return Assessment('reverted', Result.FAILED,
                              reason='reverted to %s but the server is %s, '
                                     'it was %s' % (server.host, server.status,
                                                    _was(target)))
        return Assessment('reverted', Result.REVERTED)
    # 'done' (evacuations) and anything newer Nova may invent: keep
    # following; the deadline bounds it.
    return Assessment(status)


def _live(target: Target, server: Server,
          migration: Migration) -> Assessment:
    if migration.status in LIVE_RUNNING:
        return Assessment(migration.status)
    if migration.status == 'completed':
        source = target.source or migration.source
        if not _settled(server):
            return Assessment('post-migrating')
        if server.host == source:
            return Assessment('completed', Result.FAILED,
                              reason='live migration completed but the '
                                     'server is still on its source host %s'
                              % source)
        if not _status_kept(target, server, LIVE):
            return Assessment('completed', Result.FAILED,
                              reason='moved to %s but the server is %s, it '
                                     'was %s' % (server.host, server.status,
                                                 _was(target)))
        return Assessment('completed', Result.MIGRATED)
    return Assessment(migration.status)


def in_progress(server: Server, migration: ty.Optional[Migration]) -> bool:
    """Is a migration under way, worth following (watch without --start)?

    VERIFY_RESIZE counts: it waits for a decision. (A server whose task
    shows a migration whose record is not there yet is the caller's case.)
    """
    if server.status == 'VERIFY_RESIZE':
        return True
    if migration is None or migration.status in FINAL_STATUSES:
        return False
    if migration.kind == LIVE:
        return migration.status in LIVE_RUNNING
    return migration.status in COLD_RUNNING + ('finished', 'confirming',
                                               'reverting')
