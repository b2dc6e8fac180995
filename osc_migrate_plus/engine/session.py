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

"""A batch on disk: a new one, or one resumed from its journal.

A new batch writes its header and plan, disables the sources if asked, and
adopts servers already migrating. A resumed batch locks its journal before
reading it, holds the options that decide what "done" means to the
journal's, and decides per server: finished ones stay as they are (except a
``timeout``, still in flight, and a ``not-started``, planned again), one
that was submitted is adopted, one whose request may or may not have reached
Nova is looked for before anything is sent again, a deleted one is reported
as such, and the rest are planned again from what Nova shows now.
"""

import dataclasses
import typing as ty

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus.engine import plan
from osc_migrate_plus.engine import selection
from osc_migrate_plus import model

# Options a resumed batch must keep: they decide what "done" means.
BINDING = ('mode', 'host', 'block_migration', 'confirm', 'verify_command')
# Limits the journal records; a resumed batch keeps them unless they are
# given again, except --timeout: how long to wait is each run's own.
LIMITS = ('max_parallel', 'max_per_source', 'max_per_destination', 'timeout',
          'max_failures', 'on_stall', 'stall_after')
KEPT_LIMITS = ('max_parallel', 'max_per_source', 'max_per_destination',
               'max_failures', 'on_stall', 'stall_after')


DISABLE_REASON = 'osc-migrate-plus batch drain'


class Contradiction(Exception):
    """Options of a resume that contradict its journal."""


@dataclasses.dataclass
class Batch:
    journal: jrn.Journal
    runner: batch.Runner
    entries: ty.List[batch.Entry]
    # How each server already under way is taken up (Runner.adopt's
    # arguments), and those that no longer exist.
    adoptions: ty.List[ty.Tuple[batch.Entry, ty.Dict[str, ty.Any]]]
    deleted: ty.List[batch.Entry] = dataclasses.field(default_factory=list)

    def run(self) -> bool:
        """Follow everything to a result. False if interrupted."""
        for entry in self.deleted:
            self.runner.finish(entry, model.Result.DELETED,
                               'the server was deleted')
        return self.runner.run(self.entries, self.adoptions)

    def close(self) -> None:
        self.journal.close()


def plan_for(nova: nova_api.Nova,
             sel: selection.Selection) -> ty.List[plan.PlanItem]:
    return selection.plan_items(selection.select(nova, sel), sel)


def new(nova: nova_api.Nova, reporter: batch.Reporter,
        items: ty.List[plan.PlanItem], options: batch.Options, path: str,
        selected: ty.Dict[str, ty.Any],
        disable_reason: ty.Optional[str] = None,
        disable_source: bool = False,
        header: ty.Optional[ty.Dict[str, ty.Any]] = None) -> Batch:
    """A new batch with its journal at ``path``.

    ``header``: more of the header (a rolling run's ``rolling``).
    """
    journal = jrn.Journal.create(path, dict(header or {}, **{
        'options': {k: getattr(options, k) for k in BINDING},
        'limits': {k: getattr(options, k) for k in LIMITS},
        'selection': selected,
        'cloud': {'compute': nova.endpoint()},
        # Whose migrations this user reads: None, every project's.
        'migrations_project': nova.migrations_project,
        # --disable-source's reason, or None: a resume finishes the job.
        'disable_source': (disable_reason or DISABLE_REASON)
        if disable_source else None,
    }))
    try:
        reporter.info('journal: %s (resume with --resume %s)'
                      % (journal.path, journal.path))
        journal.write({'type': 'plan',
                       'servers': [i.to_journal() for i in items]})
        if disable_source:
            _disable_sources(nova, journal, reporter, {
                i.server.host for i in items
                if i.verdict == plan.PLANNED and i.server.host},
                disable_reason or DISABLE_REASON)
        entries = [batch.new_entry(item, options) for item in items]
        runner = batch.Runner(nova, journal, reporter, options)
        return Batch(journal, runner, entries, [
            (e, {}) for e in entries if e.item.verdict == plan.ADOPT])
    except BaseException:
        journal.close()
        raise


def _disable_sources(nova: nova_api.Nova, journal: jrn.Journal,
                     reporter: batch.Reporter, sources: ty.Set[str],
                     reason: str) -> None:
    """Disable these hosts' compute services, each journaled once done.

    One refused midway (an expired token, a 403) leaves the rest enabled:
    a resume disables them before it submits anything.
    """
    for service in nova.compute_services():
        if service['host'] in sources:
            nova.disable_service(service['id'], reason)
            journal.write({'type': 'service-disabled',
                           'host': service['host'], 'reason': reason})
            reporter.info('disabled nova-compute on %s (%s); it stays '
                          'disabled: re-enable it with openstack compute '
                          'service set --enable %s nova-compute' % (
                              service['host'], reason, service['host']))


def source_hosts(header: dict) -> ty.Tuple[str, ...]:
    """The hosts a journal's batch drains (older journals name one)."""
    selected = header.get('selection', {})
    hosts = selected.get('source_hosts')
    if hosts is None:
        hosts = [selected['source_host']] if selected.get('source_host') \
            else []
    return tuple(hosts)


class Resumption:
    """A journal being resumed: locked first, then read."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.journal = jrn.Journal.reopen(path)
        try:
            self.state = jrn.replay(path)
        except BaseException:
            self.journal.close()
            raise

    @property
    def header(self) -> dict:
        return self.state.header

    def options(self, given: batch.Options,
                explicit: ty.Iterable[str]) -> batch.Options:
        """``given``, with the options the journal binds.

        Those the user gave (``explicit``) must agree with the journal.
        """
        recorded = self.header.get('options', {})
        explicit = set(explicit)
        differences = jrn.binding_differences(recorded, {
            k: getattr(given, k) for k in BINDING if k in explicit})
        options = dataclasses.replace(given)
        for key in BINDING:
            if key in recorded:
                setattr(options, key, recorded[key])
        if differences:
            raise Contradiction('options contradict the journal %s: %s'
                                % (self.path, '; '.join(differences)))
        limits = self.header.get('limits', {})
        for key in KEPT_LIMITS:
            if key not in explicit and limits.get(key) is not None:
                setattr(options, key, limits[key])
        options.source_hosts = source_hosts(self.header)
        return options

    def projects(self) -> ty.Set[str]:
        """The projects of the journal's servers."""
        return {saved.plan['project_id'] for saved in
                self.state.servers.values()
                if saved.plan and saved.plan.get('project_id')}

    def check_scope(self, nova: nova_api.Nova) -> None:
        """Refuse to resume blind to migrations the batch started.

        Nova lists to a project manager only the migrations its project
        started: a journal written by a user who reads every project's
        (an admin), or another project's, has migrations such a user
        cannot see, and would take for never started.
        """
        mine = nova.migrations_project
        recorded = self.header.get('migrations_project')
        if mine is None or recorded == mine:
            return
        raise model.NovaError(
            'journal %s was written by a user who reads %s migrations; Nova '
            'shows you only those your project (%s) started, so the '
            'migrations that run started would look never started. Resume '
            'it with the credentials that started it. Nothing was changed.'
            % (self.path, "every project's" if recorded is None else
               "project %s's" % recorded, mine))

    def check_cloud(self, endpoint: ty.Optional[str]) -> None:
        recorded = self.header.get('cloud', {}).get('compute')
        if recorded and endpoint and \
                recorded.rstrip('/') != endpoint.rstrip('/'):
            raise model.NovaError('journal %s belongs to another cloud (%s); '
                                  'this one is %s' % (self.path, recorded,
                                                      endpoint))

    def start(self, nova: nova_api.Nova, reporter: batch.Reporter,
              options: batch.Options) -> Batch:
        """Append to the journal from here on and decide each server."""
        self.journal.cut_torn()
        reporter.info('resuming journal %s' % self.path)
        if self.state.torn:
            reporter.info('its last line was torn (a write cut short by a '
                          'crash) and is dropped; Nova is read again for '
                          'where each server stands')
        self.journal.write({'type': 'resumed'})
        reason = self.header.get('disable_source')
        if reason:
            # Sources the first run did not get to disable (it stopped
            # midway): before anything is submitted.
            planned = [saved.plan for saved in self.state.servers.values()
                       if saved.plan and saved.plan.get('verdict')
                       == plan.PLANNED.value]
            _disable_sources(nova, self.journal, reporter, {
                p['source'] for p in planned if p.get('source')
            } - self.state.disabled, reason)
        runner = batch.Runner(nova, self.journal, reporter, options)
        # --max-failures counts this run's failures: a resume, after the
        # operator looked at them, starts with a whole budget.
        resumed = Batch(self.journal, runner, [], [])
        for sid, saved in self.state.servers.items():
            _resume_one(nova, resumed, sid, saved, options)
        return resumed

    def close(self) -> None:
        self.journal.close()


def _resume_one(nova: nova_api.Nova, resumed: Batch, sid: str,
                saved: jrn.ServerState, options: batch.Options) -> None:
    record = saved.plan or {}
    kind = model.Kind(record['mode']) if record.get('mode') else None
    old = model.Server(sid, record.get('name') or '',
                       record.get('status') or '', None,
                       record.get('source'), record.get('project_id'))
    state = jrn.reopened(saved)
    if state in (jrn.FINISHED, jrn.SKIPPED):
        # Finished servers are not touched again.
        entry = batch.new_entry(plan.PlanItem(
            old, kind, plan.SKIPPED if state == jrn.SKIPPED
            else plan.PLANNED, record.get('reason', '')), options)
        entry.state = batch.State.DONE
        entry.result = model.Result(saved.result) if saved.result \
            else model.Result.SKIPPED
        entry.message = 'finished before the resume%s' % (
            ': ' + saved.message if saved.message else '') \
            if state == jrn.FINISHED else entry.item.reason
        entry.attempts = saved.attempts
        resumed.entries.append(entry)
        return
    try:
        server = nova.get_server(sid)
    except model.NotFound:
        entry = batch.new_entry(plan.PlanItem(old, kind, plan.PLANNED),
                                options)
        resumed.entries.append(entry)
        resumed.deleted.append(entry)
        return
    # Its source is where the batch found it, wherever it is now.
    as_found = dataclasses.replace(server, host=old.host or server.host)
    how: ty.Optional[ty.Dict[str, ty.Any]] = None
    if state == jrn.SUBMITTED:
        how = {'migration_id': saved.migration_id,
               'baseline_id': saved.baseline_id}
        if saved.stall:
            how['stall_done'] = saved.stall
    elif state in (jrn.SUBMITTING, jrn.UNCERTAIN):
        # The request may or may not have reached Nova, and may yet be
        # carried out: look for it before anything is sent again.
        how = {'baseline_id': saved.baseline_id, 'uncertain': True,
               'lost_at': saved.lost_at}
    if how is not None:
        entry = batch.new_entry(plan.PlanItem(as_found, kind, plan.ADOPT),
                                options)
        if record.get('verdict') == plan.PLANNED.value:
            # The status it had before our migration, from the plan.
            entry.follow.original_status = old.status or None
        entry.unanswered = int(bool(how.get('uncertain')))
    else:
        # Never submitted, or Nova showed nothing of it: plan it again
        # from what the server is now.
        entry = batch.new_entry(plan.preflight(
            as_found, options.mode, options.source_hosts, options.host),
            options)
        # What Nova shows now: at its turn the server is checked against
        # the plan's source (moved meanwhile: not migrated again).
        entry.follow.server = server
        if entry.item.verdict == plan.ADOPT:
            how = {}
    entry.attempts = saved.attempts
    if saved.attempts:
        # Records up to the one before our first submission are older.
        entry.baseline_read = True
        entry.follow.baseline_id = saved.baseline_id
        entry.follow.not_before = model.nova_time(saved.not_before)
    resumed.entries.append(entry)
    if how is not None:
        resumed.adoptions.append((entry, how))
