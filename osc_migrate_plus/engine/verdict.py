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
happening, whether it is over and how, and what to do next (confirm or
revert). Success needs the record AND the server to agree (status back to
what it was, and the host changed when the host is visible), never "the
poll loop ended".

Host names may be hidden by policy (the server's host attribute, the
record's source and destination). Nova only marks a cold record
``finished`` once the server runs on the destination, a live one
``completed`` once it does, and ``reverted`` once it is back: the record's
status and the server's own state decide then, and hosts are compared only
where both are visible.
"""

import dataclasses
import typing as ty

from osc_migrate_plus import model

R = model.Result


class Intent(ty.Protocol):
    """What we know of a server being followed, besides Nova's view."""

    source: ty.Optional[str]             # host before the migration
    # ACTIVE / SHUTOFF / PAUSED before it; None when we attached to one
    # already under way (then any state it may settle in is accepted).
    original_status: ty.Optional[str]
    goal: model.Goal
    sent: ty.Optional[model.Action]      # confirm/revert already sent
    abort_sent: bool


@dataclasses.dataclass(frozen=True)
class Assessment:
    phase: str
    result: ty.Optional[model.Result] = None
    action: ty.Optional[model.Action] = None
    reason: str = ''

    @property
    def done(self) -> bool:
        return self.result is not None


def assess(intent: Intent, server: model.Server,
           migration: ty.Optional[model.Migration]) -> Assessment:
    """Decide where the followed migration stands."""
    if migration is None:
        return _no_record(server)
    if migration.status in model.FAILED_STATUSES:
        if migration.status == 'cancelled' and intent.abort_sent:
            return Assessment('cancelled', R.ABORTED,
                              reason='live migration aborted at the deadline')
        return Assessment(migration.status, R.FAILED,
                          reason='migration %s is %s' % (migration.id,
                                                         migration.status))
    if server.status == 'ERROR':
        return Assessment('error', R.FAILED, reason='server went to ERROR')
    if migration.kind == model.Kind.LIVE:
        return _live(intent, server, migration)
    return _cold(intent, server, migration)


def _no_record(server: model.Server) -> Assessment:
    # Right after the 202 the record may not exist yet; the server already
    # shows the task. Never a verdict: the step bounds how long.
    if server.status == 'ERROR':
        return Assessment('error', R.FAILED,
                          reason='server went to ERROR before a migration '
                                 'record appeared')
    return Assessment('starting')


def _settled(server: model.Server) -> bool:
    # Nova marks the record confirmed/reverted a moment before it saves the
    # server out of VERIFY_RESIZE: not settled yet.
    return server.task_state is None and server.status not in (
        'VERIFY_RESIZE', 'RESIZE', 'REVERT_RESIZE', 'MIGRATING')


def on_host(server: model.Server, host: ty.Optional[str]
            ) -> ty.Optional[bool]:
    """Is the server on ``host``? None when either is not visible."""
    if server.host is None or host is None:
        return None
    return server.host == host


SETTLED_STATUSES = {model.Kind.COLD: ('ACTIVE', 'SHUTOFF'),
                    model.Kind.LIVE: ('ACTIVE', 'PAUSED')}


def _status_kept(intent: Intent, server: model.Server,
                 kind: model.Kind) -> bool:
    if intent.original_status is None:
        return server.status in SETTLED_STATUSES[kind]
    return server.status == intent.original_status


def _was(intent: Intent) -> str:
    return intent.original_status or 'unknown'


def _source(intent: Intent, migration: model.Migration) -> ty.Optional[str]:
    return intent.source or migration.source


def _cold(intent: Intent, server: model.Server,
          migration: model.Migration) -> Assessment:
    status = migration.status
    source = _source(intent, migration)
    if status in model.COLD_RUNNING:
        return Assessment(status)
    if status == 'finished':
        if server.status != 'VERIFY_RESIZE':
            return Assessment('finishing')
        if intent.goal == model.Goal.MIGRATE:
            if on_host(server, source):
                return Assessment('verify_resize', R.FAILED,
                                  reason='server is in VERIFY_RESIZE on its '
                                         'source host %s' % source)
            return Assessment('verify_resize', R.MIGRATED)
        # Confirmed or reverted as asked even when Nova migrated it to its
        # own host (drivers with COMPUTE_SAME_HOST_COLD_MIGRATE): never left
        # in VERIFY_RESIZE; the verdict then says it did not move.
        wanted = model.Action.CONFIRM if intent.goal == model.Goal.CONFIRM \
            else model.Action.REVERT
        if intent.sent == wanted:
            # Sent, Nova has not picked it up yet (confirm is async).
            return Assessment('confirming' if wanted == model.Action.CONFIRM
                              else 'reverting')
        return Assessment('verify_resize', action=wanted)
    if status in ('confirming', 'reverting'):
        return Assessment(status)
    if status == 'confirmed':
        if not _settled(server):
            return Assessment('confirming')
        if on_host(server, source):
            return Assessment('confirmed', R.FAILED,
                              reason='confirmed, but the server is on its '
                                     'source host %s: Nova migrated it to '
                                     'the same host' % source)
        if intent.goal == model.Goal.REVERT:
            return Assessment('confirmed', R.FAILED,
                              reason='Nova confirmed the migration by itself '
                                     '(resize_confirm_window) before it '
                                     'could be reverted')
        if not _status_kept(intent, server, model.Kind.COLD):
            return Assessment('confirmed', R.FAILED,
                              reason='confirmed but the server is %s, it '
                                     'was %s' % (server.status, _was(intent)))
        return Assessment('confirmed', R.CONFIRMED)
    if status == 'reverted':
        if not _settled(server):
            return Assessment('reverting')
        if intent.goal != model.Goal.REVERT:
            return Assessment('reverted', R.FAILED,
                              reason='the migration was reverted: the server '
                                     'is back on its source')
        if on_host(server, source) is False:
            return Assessment('reverted', R.FAILED,
                              reason='reverted, but the server is on %s, not '
                                     'its source %s' % (server.host, source))
        if not _status_kept(intent, server, model.Kind.COLD):
            return Assessment('reverted', R.FAILED,
                              reason='reverted but the server is %s, it was '
                                     '%s' % (server.status, _was(intent)))
        return Assessment('reverted', R.REVERTED)
    # 'done' (evacuations) and anything newer Nova may invent: keep
    # following; the deadline bounds it.
    return Assessment(status)


def _live(intent: Intent, server: model.Server,
          migration: model.Migration) -> Assessment:
    if migration.status in model.LIVE_RUNNING:
        return Assessment(migration.status)
    if migration.status == 'completed':
        source = _source(intent, migration)
        if not _settled(server):
            return Assessment('post-migrating')
        if on_host(server, source):
            return Assessment('completed', R.FAILED,
                              reason='live migration completed but the '
                                     'server is still on its source host %s'
                              % source)
        if not _status_kept(intent, server, model.Kind.LIVE):
            return Assessment('completed', R.FAILED,
                              reason='moved but the server is %s, it was %s'
                              % (server.status, _was(intent)))
        return Assessment('completed', R.MIGRATED)
    return Assessment(migration.status)


def in_progress(migration: ty.Optional[model.Migration]) -> bool:
    """Is this a migration under way, worth following?

    Only migrate and live-migrate records: a resize (a flavor change) or an
    evacuation is not a migration to follow, confirm or revert. A cold one
    in VERIFY_RESIZE (``finished``) counts: it waits for a decision.
    """
    if migration is None or migration.type not in model.MIGRATION_TYPES:
        return False
    if migration.status in model.FINAL_STATUSES:
        return False
    if migration.kind == model.Kind.LIVE:
        return migration.status in model.LIVE_RUNNING
    return migration.status in model.COLD_RUNNING + (
        'finished', 'confirming', 'reverting')
