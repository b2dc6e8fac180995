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

"""Is the source host empty? The proof that ends a drain.

Three reads per host (``observe``): the servers Nova lists on it in any
state and any project, the migration records from or to it, and the
allocations Placement holds against its resource providers. ``judge`` (pure)
turns them into a ``HostReport``: the servers still there, each with what
the batch said of it (skipped and why, failed, not started) or, if the plan
never had it, that it arrived during the run; the migrations still under way
from or to it; and the allocations that nothing on the host explains, which
are leaked.

An allocation is explained when its consumer is a server on the host, the
UUID of a migration still under way from it (Nova moves the source's
allocation to the migration until the migration is confirmed or reverted:
a cold migration at VERIFY_RESIZE still holds it), or a server whose
migration to the host is still under way. Any other consumer is leaked.
"""

import dataclasses
import time
import typing as ty

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus.engine import plan
from osc_migrate_plus import model

# A migration with one of these statuses holds nothing on its hosts any
# more. ``finished`` (the server at VERIFY_RESIZE) is not one: the source
# still holds the migration's allocation until confirm or revert.
SETTLED = model.FINAL_STATUSES
# Results of a server that left its source.
MOVED = (model.Result.MIGRATED, model.Result.CONFIRMED)
# Seconds before a second look at a leak held by a migration Nova just ended.
SETTLE_WAIT = 3.0
# Names shown per part of the summary line; the journal has them all.
SHOWN = 5
# Leaked consumers shown one per line before the summary.
SHOWN_LEAKS = 10
AUDIT = ('nova-manage placement audit --resource_provider %s --verbose'
         ' (add --delete to remove what it finds orphaned)')


@dataclasses.dataclass(frozen=True)
class Observed:
    """What was read of one host."""

    host: str
    servers: ty.List[model.Server]
    migrations: ty.List[model.Migration]  # from or to the host
    # Provider UUID -> consumer -> resources; None: not read (why below).
    allocations: ty.Optional[ty.Dict[str, ty.Dict[str, ty.Dict[str, int]]]]
    placement_error: ty.Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Left:
    """A server still on the host, and what the batch said of it."""

    server: model.Server
    note: str


@dataclasses.dataclass(frozen=True)
class Leak:
    consumer: str
    provider: str
    resources: ty.Dict[str, int]
    # What Nova knows of the consumer, if anything: a migration it ended.
    known_as: str = ''


@dataclasses.dataclass(frozen=True)
class HostReport:
    host: str
    servers: ty.List[Left] = dataclasses.field(default_factory=list)
    leaving: ty.List[model.Migration] = dataclasses.field(
        default_factory=list)
    arriving: ty.List[model.Migration] = dataclasses.field(
        default_factory=list)
    # Consumers holding resources on the host's providers; None: not read.
    allocations: ty.Optional[int] = None
    leaked: ty.List[Leak] = dataclasses.field(default_factory=list)
    providers: ty.List[str] = dataclasses.field(default_factory=list)
    placement_error: ty.Optional[str] = None
    # Nova could not be read: nothing is proven.
    error: ty.Optional[str] = None
    names: ty.Dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def migrations(self) -> ty.List[model.Migration]:
        return self.leaving + self.arriving

    @property
    def empty(self) -> bool:
        """Nothing found (allocations may not have been read: see line)."""
        return self.error is None and not (
            self.servers or self.migrations or self.leaked)

    def fails(self, require_empty: bool) -> bool:
        """Does this host fail the run?

        A server on it (or on its way to it), or a check that could not
        read Nova, always; with ``require_empty`` also a migration still
        holding it (one awaiting confirm included), a leaked allocation, or
        allocations that could not be read.
        """
        if self.error is not None or self.servers or self.arriving:
            return True
        return require_empty and bool(
            self.leaving or self.leaked or self.allocations is None)

    # -- what is said ------------------------------------------------------
    def line(self) -> str:
        """The summary line, the last word of the run on this host."""
        if self.error is not None:
            return '%s: NOT checked: %s' % (self.host, self.error)
        allocations = ('allocations not checked: %s' % self.placement_error
                       if self.allocations is None else None)
        if self.empty:
            counts = '0 servers, 0 migrations'
            if allocations:
                return '%s: empty (%s; %s)' % (
                    self.host, counts, allocations)
            return '%s: empty (%s, %d allocations)' % (
                self.host, counts, self.allocations or 0)
        parts = []
        if self.servers:
            parts.append(_part(len(self.servers), 'server', [
                '%s: %s, %s' % (left.server.name or left.server.id,
                                left.server.status, left.note)
                for left in self.servers]))
        if self.leaving:
            parts.append(_part(len(self.leaving), 'migration', [
                '%s: %s%s' % (self._name(m), m.status,
                              ', awaiting confirm or revert'
                              if m.status == 'finished' else '')
                for m in self.leaving], ' still from it'))
        if self.arriving:
            parts.append(_part(len(self.arriving), 'migration', [
                '%s: %s, from %s' % (self._name(m), m.status,
                                     m.source or '?')
                for m in self.arriving], ' arriving'))
        if self.leaked:
            parts.append(_part(len(self.leaked), 'leaked allocation', [
                'consumer %s' % leak.consumer for leak in self.leaked]))
        if allocations:
            parts.append(allocations)
        return '%s: NOT empty: %s' % (self.host, ', '.join(parts))

    def details(self) -> ty.List[str]:
        """Lines said before the summary: each leaked allocation, the cure."""
        lines = ['%s: leaked allocation: consumer %s holds %s on resource '
                 'provider %s; %s' % (
                     self.host, leak.consumer, _resources(leak.resources),
                     leak.provider, leak.known_as or 'no server on %s and no '
                     'migration from or to it is that consumer' % self.host)
                 for leak in self.leaked[:SHOWN_LEAKS]]
        if len(self.leaked) > SHOWN_LEAKS:
            lines.append('%s: and %d more leaked allocations (in the '
                         'journal)' % (self.host,
                                       len(self.leaked) - SHOWN_LEAKS))
        for provider in sorted({leak.provider for leak in self.leaked}):
            lines.append('%s: to clean up leaked allocations: %s' % (
                self.host, AUDIT % provider))
        return lines

    def to_journal(self, require_empty: bool = False) -> dict:
        return {
            'type': 'host-check', 'host': self.host, 'empty': self.empty,
            'fails': self.fails(require_empty),
            'servers': [{'id': left.server.id, 'name': left.server.name,
                         'status': left.server.status, 'note': left.note}
                        for left in self.servers],
            'migrations': [{'id': m.id, 'uuid': m.uuid,
                            'server': m.server_id, 'status': m.status,
                            'source': m.source, 'dest': m.dest}
                           for m in self.migrations],
            'providers': list(self.providers),
            'allocations': self.allocations,
            'leaked': [{'consumer': leak.consumer,
                        'provider': leak.provider,
                        'resources': dict(leak.resources),
                        'known_as': leak.known_as}
                       for leak in self.leaked],
            'placement_error': self.placement_error,
            'error': self.error, 'line': self.line()}

    def _name(self, migration: model.Migration) -> str:
        sid = migration.server_id or '?'
        return self.names.get(sid) or sid


def _part(count: int, noun: str, items: ty.List[str],
          where: str = '') -> str:
    shown = '; '.join(items[:SHOWN])
    if count > SHOWN:
        shown += '; and %d more' % (count - SHOWN)
    return '%d %s%s%s (%s)' % (count, noun, '' if count == 1 else 's',
                               where, shown)


def _resources(resources: ty.Dict[str, int]) -> str:
    return ', '.join('%s=%s' % (rc, n) for rc, n in sorted(resources.items()))


# -- judging (pure) -----------------------------------------------------------
def judge(seen: Observed, notes: ty.Dict[str, str],
          whole_host: bool = True,
          names: ty.Optional[ty.Dict[str, str]] = None) -> HostReport:
    """The report on one host from what was read.

    ``notes``: what the batch said of each server it planned (``skipped:
    <reason>``, ``failed: <message>``...). A server on the host that the
    plan never had arrived during the run if the plan took the whole host
    (``whole_host``: no names, no --project or --status), else it was not
    selected.
    """
    host = seen.host
    names = dict(names or {})
    names.update({s.id: s.name for s in seen.servers if s.name})
    unplanned = 'arrived during the run (not in the plan)' if whole_host \
        else 'not selected'
    left = [Left(s, notes.get(s.id, unplanned)) for s in sorted(
        seen.servers, key=lambda s: (s.name, s.id))]
    moving = [m for m in seen.migrations if m.status not in SETTLED]
    # Nova listed each of these for its ``host`` filter. Where a policy
    # hides the record's hosts, one of a server the batch had is taken to
    # leave (the batch moved it from there); any other counts as arriving.
    leaving = [m for m in moving if m.source == host or (
        _hidden(m) and m.server_id in notes)]
    arriving = [m for m in moving if m not in leaving and (
        m.dest == host or _hidden(m))]
    explained = {s.id for s in seen.servers}
    explained |= {m.uuid for m in leaving if m.uuid}
    explained |= {m.server_id for m in arriving if m.server_id}
    # Which way a hidden one goes is not known: either consumer is its.
    explained |= {c for m in moving if _hidden(m)
                  for c in (m.uuid, m.server_id) if c}
    # A migration Nova ended whose UUID still holds resources here.
    ended = {m.uuid: 'it is migration %s of %s, %s: Nova should have '
             'released it' % (m.id, names.get(m.server_id or '') or
                              m.server_id, m.status)
             for m in seen.migrations
             if m.uuid and m.status in SETTLED}
    leaked: ty.List[Leak] = []
    count = None
    if seen.allocations is not None:
        count = 0
        for provider, held in sorted(seen.allocations.items()):
            count += len(held)
            leaked += [Leak(consumer, provider, resources,
                            ended.get(consumer, ''))
                       for consumer, resources in sorted(held.items())
                       if consumer not in explained]
    return HostReport(
        host=host, servers=left, leaving=leaving, arriving=arriving,
        allocations=count, leaked=leaked,
        providers=sorted(seen.allocations or {}),
        placement_error=seen.placement_error, names=names)


def _hidden(migration: model.Migration) -> bool:
    return migration.source is None and migration.dest is None


def notes_from_entries(entries: ty.Iterable[batch.Entry]
                       ) -> ty.Dict[str, str]:
    """What a run said of each server: its result and message."""
    notes = {}
    for entry in entries:
        said = entry.result.value if entry.result else entry.state.value
        if entry.result in MOVED and entry.source:
            # Found on a source host after all: Nova moved it from another
            # source (several, without --disable-source).
            said += ' (moved from %s)' % entry.source
        if entry.message.startswith(said):
            said = entry.message
        elif entry.message:
            said = '%s: %s' % (said, entry.message)
        notes[entry.server_id] = said
    return notes


def notes_from_plan(items: ty.Iterable[plan.PlanItem]) -> ty.Dict[str, str]:
    """What a plan (a dry run) said of each server."""
    return {item.server.id: item.verdict.value + (
        ': %s' % item.reason if item.reason else '') for item in items}


# -- reading ------------------------------------------------------------------
def observe(nova: nova_api.Nova,
            placement: ty.Optional[nova_api.Placement],
            host: str,
            listed: ty.Optional[ty.List[model.Server]] = None) -> Observed:
    """Read one host: its servers, its migrations, its allocations.

    ``listed``: the host's servers (every project, no filter) if they were
    just read (a dry run's plan): not read again.

    Nova's errors propagate (nothing can be proven without Nova). Placement
    is optional: unavailable (not in the catalog, refused by its policy) or
    the host's provider unknown, the allocations are "not checked" with
    the reason and the rest is still reported.
    """
    servers = nova.list_servers(host=host) if listed is None else listed
    if not nova.lists_all_projects:
        raise model.NovaError(
            'Nova lists only your own project\'s servers (it refused '
            'all_tenants): the servers of other projects on %s cannot be '
            'seen' % host)
    migrations = nova.migrations_at(host)
    allocations, error = _allocations(nova, placement, host)
    return Observed(host, servers, migrations, allocations, error)


def _allocations(nova: nova_api.Nova,
                 placement: ty.Optional[nova_api.Placement], host: str
                 ) -> ty.Tuple[ty.Optional[ty.Dict[str, ty.Dict[
                     str, ty.Dict[str, int]]]], ty.Optional[str]]:
    if placement is None:
        return None, 'Placement is not available to this command'
    try:
        # A compute node's UUID is its resource provider's (2.53+).
        providers = [h.uuid for h in nova.hypervisors() if h.host == host]
    except model.NovaError as exc:
        return None, ('Nova did not list the hypervisors, so the resource '
                      'provider of %s is not known: %s' % (host, exc))
    if not providers:
        return None, 'Nova lists no compute node of %s' % host
    try:
        return {uuid: placement.provider_allocations(uuid)
                for uuid in providers}, None
    except model.PlacementUnavailable as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: B902
        # The check comes after the run has changed the cloud: whatever
        # goes wrong reading Placement is said, never a lost result table.
        return None, 'Placement could not be read: %s' % exc


def check(nova: nova_api.Nova, placement: ty.Optional[nova_api.Placement],
          hosts: ty.Iterable[str], notes: ty.Dict[str, str],
          whole_host: bool = True,
          names: ty.Optional[ty.Dict[str, str]] = None,
          sleep: ty.Optional[ty.Callable[[float], None]] = None,
          listed: ty.Optional[ty.Dict[str, ty.List[model.Server]]] = None
          ) -> ty.List[HostReport]:
    """Observe and judge each host.

    ``listed``: per host, its servers as just read (see ``observe``).

    One that Nova would not show is NOT checked, with the reason (the
    run's results stand). A leak held by a migration Nova has just ended
    is looked at once more after ``SETTLE_WAIT`` seconds: Nova marks a
    live migration ``completed`` a moment before the source's compute
    releases what the migration held.
    """
    sleep = sleep or time.sleep
    reports = []
    for host in hosts:
        try:
            seen = observe(nova, placement, host,
                           (listed or {}).get(host))
            report = judge(seen, notes, whole_host, names)
            if any(leak.known_as for leak in report.leaked):
                sleep(SETTLE_WAIT)
                report = judge(observe(nova, placement, host), notes,
                               whole_host, names)
        except (model.NovaError, model.CredentialsExpired) as exc:
            report = HostReport(host=host, error=str(exc))
        reports.append(report)
    return reports
