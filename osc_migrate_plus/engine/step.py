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

"""One server followed to a verdict: the step both commands share.

Given one observation of a server and its migration records, ``Stepper.step``
decides what comes next: wait, verify, confirm, revert, abort, or the
verdict. It owns everything about following one server: which record is
ours (newer than the baseline, then pinned), the state machine
(``verdict.assess``), the wait for Nova to record why a migration failed,
confirm and revert that tolerate races and lost answers, the start that
never shows up, the request whose answer was lost, and the deadline.

``watch`` and ``batch`` differ only in how they observe (per-server reads,
or one bulk read for every server in flight) and in admission (limits and
retries, batch only).
"""

import dataclasses
import datetime
import enum
import typing as ty

from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus.engine import stall
from osc_migrate_plus.engine import verdict
from osc_migrate_plus.engine import verify
from osc_migrate_plus import model

R = model.Result

# After an answer that may have been lost (a reset, a timeout, a 502/504),
# Nova may still carry the request out: nothing is sent again until Nova
# has shown no sign of it (no newer record, no migrating task) this long.
LOST_REPLY_WINDOW = 60.0
# Accepted (202), yet no record and the server idle this long: the start
# was lost in Nova (the conductor failed before it recorded anything).
START_GRACE = 60.0
# Refusals of a confirm/revert tolerated before giving up. 409 is a task
# under way; 400 ("has not been resized") and 404 are what Nova answers when
# it, or someone else, confirmed or reverted first: the next look tells.
ACTION_CONFLICTS = 3
RACE_STATUSES = (400, 404, 409)
# How long to wait for Nova to record why a migration failed (it marks the
# record error before it finishes the instance-action event): this many
# looks, and this many seconds (polls may come a quarter interval apart).
EXPLAIN_POLLS = 3
EXPLAIN_SECONDS = 6.0
# After an abort, how long to wait for Nova to cancel.
ABORT_GRACE = 60.0
ABORTABLE = ('running',)
ABORTABLE_265 = ('queued', 'preparing')
# A record in one of these is still Nova's business: nothing the step
# decides on changes in the server until the record moves on (finished,
# completed, error...), so a poll may leave the server unread meanwhile ...
UNDER_WAY = ('accepted', 'queued', 'preparing', 'running', 'pre-migrating',
             'migrating', 'post-migrating')
# ... but not for longer than this (seconds): a server deleted, or put in
# ERROR, or left idle by a restarted nova-compute, with its record left as
# it was, shows only in the server.
SERVER_AT_LEAST_EVERY = 30.0
# Likewise a confirm or revert Nova has in hand (its API sets these before
# it answers): the record moving on is the news.
IN_HAND = ('confirming', 'reverting')
# A record under way whose server has been idle on its source this long
# (seconds, fresh looks) was abandoned by Nova: nothing will move it on.
ABANDONED_AFTER = 60.0
HIDDEN_HOSTS = ('host names are hidden by policy: verdict from the '
                'migration record and the server state')
SUCCESS = (R.MIGRATED, R.CONFIRMED, R.REVERTED)


class Start(str, enum.Enum):
    """How the migration being followed came about."""

    SENT = 'sent'            # Nova accepted our request (202)
    UNCERTAIN = 'uncertain'  # our request's answer was lost
    ADOPTED = 'adopted'      # found under way (or resumed)


def _before(record: model.Migration, when: datetime.datetime) -> bool:
    # created_at: stamped by the conductor as it creates the record (ours,
    # after the baseline was read), never later by a compute host whose
    # clock may be behind; a record created before and still changing is
    # not ours either.
    stamp = model.nova_time(record.created_at or record.updated_at)
    return stamp is not None and stamp < when


@dataclasses.dataclass
class Follow:
    """Everything known of one server being followed."""

    server_id: str
    source: ty.Optional[str]            # host before the migration
    # ACTIVE / SHUTOFF / PAUSED before it; None when adopted under way.
    original_status: ty.Optional[str]
    goal: model.Goal = model.Goal.MIGRATE
    kind: ty.Optional[model.Kind] = None  # once known
    baseline_id: int = 0                # records up to this one are older
    # Also older: a final record created before then (Nova's clock). Set
    # when the baseline is the source host's newest record: a record of the
    # server elsewhere, before it came back here, may have a higher ID, but
    # was created before that read; ours is created after.
    not_before: ty.Optional[datetime.datetime] = None
    migration_id: ty.Optional[int] = None  # ours, pinned once seen
    start: Start = Start.ADOPTED
    start_at: float = 0.0               # monotonic
    deadline: ty.Optional[float] = None
    server: ty.Optional[model.Server] = None  # as last seen
    migration: ty.Optional[model.Migration] = None
    phase: str = ''
    sent: ty.Optional[model.Action] = None  # confirm/revert sent
    abort_sent: bool = False
    explain_tries: int = 0
    explain_since: ty.Optional[float] = None
    refusals: int = 0
    verification: ty.Optional[verify.Verification] = None
    verified: ty.Optional[verify.Outcome] = None
    # A live migration's progress, for --on-stall; what was done once it
    # stalled (a policy value: sent at most once, also across --resume),
    # "stalled 120 s at 91%", and Nova's refusal of it, if any.
    progress: stall.Tracker = dataclasses.field(
        default_factory=stall.Tracker)
    stall_action: ty.Optional[str] = None
    stall_note: str = ''
    stall_refused: str = ''
    # Set by the step, for the driver: a failure seen in a partial (bulk)
    # view, to be confirmed by a direct read; a confirm/revert that got no
    # clean answer, not to be sent again before a fresh look.
    needs_look: bool = False
    look_again: bool = False
    # Since when (monotonic) the server, freshly seen, has been idle while
    # its record says under way (``Stepper._abandoned``).
    idle_since: ty.Optional[float] = None
    idle_on: ty.Optional[ty.Tuple[int, str]] = None  # the record, then
    # A confirm/revert decided, for the driver to send (``defer_actions``).
    pending: ty.Optional[model.Action] = None

    def evidence_due(self) -> ty.Optional[float]:
        """When a fresh look at Nova can settle a start not yet seen."""
        if self.migration is not None:
            return None
        wait = LOST_REPLY_WINDOW if self.start == Start.UNCERTAIN \
            else START_GRACE
        return self.start_at + wait

    def newer(self, records: ty.Iterable[model.Migration]
              ) -> ty.List[model.Migration]:
        """The records that may be ours: newer than the baseline."""
        found = [r for r in records if r.id > self.baseline_id]
        if self.not_before is None:
            return found
        return [r for r in found if r.status not in model.FINAL_STATUSES
                or not _before(r, self.not_before)]

    def ours(self, records: ty.Sequence[model.Migration]
             ) -> ty.Optional[model.Migration]:
        """Our record as these show it, else as last seen (or None)."""
        if self.migration_id is not None:
            return next((r for r in records if r.id == self.migration_id),
                        self.migration)
        newer = self.newer(records)
        return max(newer, key=lambda r: r.id) if newer else None

    def server_matters(self, records: ty.Sequence[model.Migration],
                       now: float) -> bool:
        """Whether a look at the server may tell more than ``records``.

        Not while our record is under way and nothing was asked of Nova:
        then a poll can be the one read of the records. Nor while Nova has
        a confirm or revert in hand (its record
        ``confirming``, ``reverting``: Nova's API sets that before it
        answers): the record moving on is the news. Nor before any
        record of ours shows: the start is judged from a direct read once
        it is due (``evidence_due``), and the record is what shows it went.
        Always at the deadline: a timeout is never concluded from an old
        view (the server may have been deleted, its records with it).
        A caller reads the server anyway at least every
        SERVER_AT_LEAST_EVERY seconds.
        """
        if self.server is None or self.pending is not None or \
                self.needs_look or self.look_again or \
                (self.deadline is not None and now >= self.deadline):
            return True
        record = self.ours(records)
        if self.sent is not None:
            return record is None or record.status not in IN_HAND
        # In hand without a clean answer of ours (a lost reply Nova
        # applied, an adopted or resumed migration): the same.
        return record is not None and \
            record.status not in UNDER_WAY + IN_HAND

    @property
    def hosts_hidden(self) -> bool:
        return bool((self.server is not None and self.server.host_hidden)
                    or (self.migration is not None
                        and self.migration.source is None))

    def stop(self) -> None:
        """The follow is over: a verify command still running goes too."""
        if self.verification is not None:
            self.verification.kill()


@dataclasses.dataclass(frozen=True)
class Observation:
    """One look at a server in Nova."""

    server: ty.Optional[model.Server] = None  # None: not changed
    records: ty.Sequence[model.Migration] = ()  # its records in view
    gone: bool = False    # the server no longer exists
    fresh: bool = False   # read directly just now (not a bulk delta)
    # The live migration's progress document (GET /servers/{id}/
    # migrations/{mid}), when it was read for this look.
    progress: ty.Optional[ty.Mapping[str, ty.Any]] = None


@dataclasses.dataclass(frozen=True)
class Verdict:
    result: model.Result
    message: str = ''


class Listener(ty.Protocol):
    def event(self, f: Follow, name: str, text: str,
              **fields: ty.Any) -> None: ...


class Stepper:
    def __init__(self, nova: nova_api.Nova, listener: Listener,
                 timeout: float = 3600.0, abort_on_timeout: bool = False,
                 verify_command: ty.Optional[str] = None,
                 on_stall: stall.Policy = stall.Policy.WAIT,
                 stall_after: float = stall.DEFAULT_STALL_AFTER,
                 defer_actions: bool = False) -> None:
        self.nova = nova
        # Batch sends the confirms and reverts of one poll round together
        # (``send``, then ``sent``), not one after another inside the step.
        self.defer_actions = defer_actions
        self.listener = listener
        self.timeout = timeout
        self.abort_on_timeout = abort_on_timeout
        self.verify_command = verify_command
        self.on_stall = stall.Policy(on_stall)
        self.stall_after = stall_after

    def begin(self, f: Follow, start: Start, now: float) -> None:
        """The migration is ours to follow from ``now``.

        Each request Nova accepts gets the whole --timeout: the time spent
        finding out that an earlier one was never carried out is not spent
        following a migration.
        """
        f.start, f.start_at = start, now
        if self.timeout and (f.deadline is None or start == Start.SENT):
            f.deadline = now + self.timeout

    def progress_target(self, f: Follow, records: ty.Sequence[
            model.Migration], display: bool = False
    ) -> ty.Optional[model.Migration]:
        """The live migration whose progress to read with this look.

        Only a running live migration of ours has figures, and only stall
        handling (or a display, ``display``) needs them: none once the
        stall was dealt with.
        """
        if not display and (self.on_stall == stall.Policy.WAIT
                            or f.stall_action is not None):
            return None
        record = f.ours(records)
        if record is None or record.type != 'live-migration' or \
                record.status != 'running':
            return None
        return record

    # -- the step ------------------------------------------------------------
    def step(self, f: Follow, obs: Observation,
             now: float) -> ty.Optional[Verdict]:
        """Act on one observation; the verdict once there is one."""
        found = self._step(f, obs, now)
        if found is None or not f.stall_note:
            return found
        return Verdict(found.result, self._stall_message(f, found))

    def _step(self, f: Follow, obs: Observation,
              now: float) -> ty.Optional[Verdict]:
        if obs.gone or (obs.server is not None
                        and obs.server.status == 'DELETED'):
            return Verdict(R.DELETED, 'the server was deleted')
        if obs.server is not None:
            f.server = obs.server
        taken = self._take_record(f, obs.records)
        if taken is not None:
            return taken
        server = f.server
        if server is None:  # never seen yet (a failed first read)
            return self._deadline(f, now)
        if f.start == Start.UNCERTAIN and (
                f.migration is not None
                or server.task_state in model.MIGRATING_TASK_STATES):
            f.start = Start.SENT
            self.listener.event(f, 'taken', 'Nova carried out the request '
                                'whose answer was lost: following it')
        a = verdict.assess(f, server, f.migration)
        if a.phase != f.phase:
            f.phase = a.phase
            self.listener.event(f, 'phase', a.phase, phase=a.phase)
        news = obs.fresh or obs.server is not None or bool(obs.records)
        if a.result == R.FAILED and not obs.fresh:
            # A bulk view is partial: the server may not be in it although
            # it changed (its row stamped by a host whose clock is behind).
            # A failure is only ever concluded from a fresh look.
            f.needs_look = True
            return self._deadline(f, now)
        f.needs_look = False
        if a.action is None and obs.fresh:
            # The fresh look a confirm or revert without a clean answer
            # asked for: nothing to send again (Nova has it in hand, or
            # something else happened).
            f.look_again = False
        if a.result is not None:
            return self._conclude(f, a, now)
        if a.action is not None:
            if f.look_again and not news:
                # The last attempt got no clean answer: act again only on
                # what Nova shows now, never on the same old view.
                return self._deadline(f, now)
            f.look_again = False
            refused = self._act(f, a.action, now)
            if refused is not None or f.pending is not None:
                # Once sent (``sent``), the next look judges it.
                return refused
        elif f.migration is None:
            nothing = self._nothing_yet(f, server, obs, now)
            if nothing is not None:
                return nothing
        else:
            abandoned = self._abandoned(f, f.migration, server, obs, now)
            if abandoned is not None:
                return abandoned
            if obs.progress is not None:
                self._watch_progress(f, f.migration, obs.progress, now)
        return self._deadline(f, now)

    def _abandoned(self, f: Follow, record: model.Migration,
                   server: model.Server, obs: Observation,
                   now: float) -> ty.Optional[Verdict]:
        """A record left under way while its server is idle on its source.

        nova-compute restarting mid-migration
        (``ComputeManager._init_instance``) rolls a cold copy back onto the
        source and clears the server's task, and leaves the record
        ``migrating`` for good; a live migration not yet ``running`` keeps
        its record as it was. Nothing will move it on: failed once the
        server has been idle on its source (seen there: not with host
        names hidden) ABANDONED_AFTER seconds with the record unchanged,
        concluded from a fresh look (never from a view older than the
        record, such as the plan's).
        """
        stamp = model.nova_time(server.updated)
        created = model.nova_time(record.created_at)
        # On its source, seen: with host names hidden, a live migration's
        # server idle on the destination before the source marks the
        # record completed (``_post_live_migration`` updates the host's
        # resources first, which can take a minute) looks the same.
        idle = (record.status in UNDER_WAY and server.task_state is None
                and server.status not in ('ERROR', 'DELETED')
                and verdict.on_host(server, f.source) is True
                and stamp is not None and created is not None
                and stamp > created)
        if not idle:
            f.idle_since = None
            return None
        if f.idle_since is None or f.idle_on != (record.id, record.status):
            # The clock restarts when the record moves (Nova at work).
            f.idle_since, f.idle_on = now, (record.id, record.status)
        if now - f.idle_since < ABANDONED_AFTER:
            return None
        if not obs.fresh:
            f.needs_look = True  # a failure only from a fresh look
            return None
        return Verdict(R.FAILED, self._explain(f, now, (
            'Nova left migration %s %s while the server has been idle on '
            'its source for %ds: the migration was abandoned (nova-compute '
            'restarted during it?)' % (record.id, record.status,
                                       now - f.idle_since)),
            wait=False) or '')

    def _take_record(self, f: Follow, records: ty.Sequence[model.Migration]
                     ) -> ty.Optional[Verdict]:
        """Find our record among those in view; pin it once seen."""
        if f.migration_id is not None:
            for record in records:
                if record.id == f.migration_id:
                    f.migration = record
            return None
        newer = f.newer(records)
        if not newer:
            return None
        record = max(newer, key=lambda r: r.id)
        f.migration, f.migration_id, f.kind = record, record.id, record.kind
        self.listener.event(f, 'migration', 'migration %s (%s)' % (
            record.id, record.type), migration_id=record.id)
        if record.type not in model.MIGRATION_TYPES:
            # Only adoption can meet one: a tenant's resize, an evacuation.
            return Verdict(R.SKIPPED, 'a %s is under way (migration %s), '
                           'not a migration: left to its owner'
                           % (record.type, record.id))
        return None

    def _nothing_yet(self, f: Follow, server: model.Server,
                     obs: Observation, now: float) -> ty.Optional[Verdict]:
        """No record of ours: is it coming, or did nothing start?

        Only a fresh look decides that nothing started: a bulk read that
        does not mention the server says nothing about it.
        """
        due = f.evidence_due()
        if not obs.fresh or due is None or now < due:
            return None
        if f.start == Start.UNCERTAIN:
            if server.task_state in model.MIGRATING_TASK_STATES:
                return None
            return Verdict(R.NOT_STARTED,
                           'Nova shows no migration %ds after the answer to '
                           'the migrate request was lost: nothing was '
                           'started (if Nova still carries it out, it will '
                           'show as a migration of the server)'
                           % LOST_REPLY_WINDOW)
        if server.task_state is not None:
            return None
        return Verdict(R.FAILED, self._explain(f, now, (
            'no migration record appeared within %ds and the server is '
            'idle' % START_GRACE), wait=False) or '')

    # -- verdicts ------------------------------------------------------------
    def _conclude(self, f: Follow, a: verdict.Assessment,
                  now: float) -> ty.Optional[Verdict]:
        result = a.result
        assert result is not None  # noqa: S101 (only called with one)
        message = a.reason
        if result == R.FAILED:
            explained = self._explain(f, now, message)
            if explained is None:
                return None  # Nova is still recording why: next look
            message = explained
        elif result == R.MIGRATED and f.migration is not None and \
                f.migration.kind == model.Kind.LIVE:
            if self.verify_command:
                outcome = self._verify(f, now)
                if outcome is None:
                    return self._deadline(f, now)
                if not outcome.passed:
                    return Verdict(R.FAILED, outcome.message)
        elif result == R.MIGRATED:
            message = ('left in VERIFY_RESIZE: confirm with openstack server '
                       'migration confirm %s' % f.server_id)
        elif result == R.CONFIRMED and self.verify_command and (
                f.verified is None or not f.verified.passed):
            # Confirmed by Nova (resize_confirm_window) or someone else
            # before the verify command, the gate the user set, passed.
            outcome = self._verify(f, now)
            if outcome is None:
                return self._deadline(f, now)
            if not outcome.passed:
                return Verdict(R.FAILED, 'confirmed by Nova (or someone '
                               'else) without the verification: %s'
                               % outcome.message)
        elif result == R.REVERTED and f.verified is not None and \
                not f.verified.passed:
            message = 'reverted after failed verification: %s' % (
                f.verified.message)
        if result in SUCCESS and f.hosts_hidden:
            message = '; '.join(p for p in (message, HIDDEN_HOSTS) if p)
        return Verdict(result, message)

    def _explain(self, f: Follow, now: float, message: str,
                 wait: bool = True) -> ty.Optional[str]:
        """The failure message with Nova's reason; None: ask next look.

        ``wait``: Nova may still be recording why; else say what it has.
        """
        server = f.server or model.Server(f.server_id, '', '', None, None)
        try:
            reason = self.nova.explain(server, f.migration)
        except model.NovaError as exc:
            reason = '(could not read the reason: %s)' % exc
        if reason is None:
            f.explain_tries += 1
            if f.explain_since is None:
                f.explain_since = now
            if wait and (f.explain_tries <= EXPLAIN_POLLS or
                         now - f.explain_since < EXPLAIN_SECONDS):
                return None
            reason = '(Nova has not recorded why)'
        return '%s: %s' % (message, reason) if reason else message

    # -- actions -------------------------------------------------------------
    def _act(self, f: Follow, action: model.Action,
             now: float) -> ty.Optional[Verdict]:
        """Confirm or revert at VERIFY_RESIZE (verify first if asked)."""
        if action == model.Action.CONFIRM and self.verify_command:
            outcome = self._verify(f, now)
            if outcome is None:
                return None
            if not outcome.passed:
                f.goal = model.Goal.REVERT
                action = model.Action.REVERT
        f.pending = action
        if self.defer_actions:
            return None
        return self._sent(f, self.send(f), now)

    def send(self, f: Follow) -> ty.Optional[model.NovaError]:
        """Send the pending confirm or revert; Nova's error, if any.

        Touches nothing but Nova, so a driver may send several at once
        from threads; ``sent`` then judges each answer, one at a time.
        """
        try:
            if f.pending == model.Action.CONFIRM:
                self.nova.confirm(f.server_id)
            elif f.pending == model.Action.REVERT:
                self.nova.revert(f.server_id)
        except model.NovaError as exc:
            return exc
        return None

    def sent(self, f: Follow, error: ty.Optional[model.NovaError],
             now: float) -> ty.Optional[Verdict]:
        """Judge the answer to a pending action ``send`` sent."""
        found = self._sent(f, error, now)
        if found is None or not f.stall_note:
            return found
        return Verdict(found.result, self._stall_message(f, found))

    def _sent(self, f: Follow, error: ty.Optional[model.NovaError],
              now: float) -> ty.Optional[Verdict]:
        action, f.pending = f.pending, None
        if action is None:
            return None
        if isinstance(error, model.Transient):
            # It may have been carried out: a fresh look tells, and a
            # second one is refused harmlessly (a race status).
            f.look_again = True
            self.listener.event(f, 'retry', '%s got no answer, will look '
                                'again: %s' % (action.value, error))
            return None
        if error is not None:
            if error.status in RACE_STATUSES and \
                    f.refusals < ACTION_CONFLICTS:
                f.refusals += 1
                f.look_again = True
                self.listener.event(f, 'retry', '%s refused, will look '
                                    'again: %s' % (action.value, error))
                return None
            return Verdict(R.FAILED, '%s refused: %s' % (action.value,
                                                         error))
        f.sent = action
        self.listener.event(f, action.value + '-sent', action.value + ' sent')
        return None

    def _verify(self, f: Follow, now: float) -> ty.Optional[verify.Outcome]:
        """Start or check the verify command; its outcome once ended."""
        if f.verified is not None:
            return f.verified
        if f.verification is None:
            server = f.server
            dest = (f.migration.dest if f.migration else None) or (
                server.host if server else None)
            f.verification = verify.Verification(
                self.verify_command or 'false', verify.environment(
                    f.server_id, server.name if server else None,
                    server.project_id if server else None, f.source, dest,
                    f.kind.value if f.kind else None), now)
            self.listener.event(f, 'verify-started', 'verifying')
            return None
        outcome = f.verification.poll(now)
        if outcome is None:
            return None
        f.verified = outcome
        self.listener.event(f, 'verified', 'verify %s' % (
            'passed' if outcome.passed else 'failed'),
            exit_code=outcome.exit_code, passed=outcome.passed,
            output_tail=outcome.tail)
        return outcome

    # -- stalls --------------------------------------------------------------
    def _watch_progress(self, f: Follow, migration: model.Migration,
                        progress: ty.Mapping[str, ty.Any],
                        now: float) -> None:
        """Judge one progress reading; act once on a stall (--on-stall)."""
        if migration.kind != model.Kind.LIVE or \
                migration.status != 'running' or \
                progress.get('id', migration.id) != migration.id:
            return
        tracker = f.progress
        if tracker.migration_id != migration.id:
            tracker = f.progress = stall.Tracker(migration_id=migration.id)
        if tracker.look(progress, now) is None:
            if not tracker.seen_figures and not tracker.said_none:
                tracker.said_none = True
                self.listener.event(f, 'no-figures', stall.NO_FIGURES)
            return
        if f.stall_action is not None or \
                not tracker.is_stalled(now, self.stall_after):
            return
        note = tracker.describe(now)
        if self.on_stall == stall.Policy.WAIT:
            if not tracker.said_waiting:
                tracker.said_waiting = True
                self.listener.event(f, 'stalled', '%s: waiting (--on-stall '
                                    'wait)' % note)
            return
        f.stall_note = note
        self.listener.event(f, 'stalled', note, note=note,
                            migration_id=migration.id,
                            policy=self.on_stall.value)
        if self.on_stall == stall.Policy.FORCE_COMPLETE:
            self._force_complete(f, migration, note)
        else:
            self._stall_abort(f, migration, note, now)

    def _force_complete(self, f: Follow, migration: model.Migration,
                        note: str) -> None:
        """Ask Nova to complete it (2.22): once, whatever the answer."""
        # Recorded before it goes out: an answer lost, or a crash before
        # it comes, must never lead to a second one (nor does --resume).
        f.stall_action = stall.Policy.FORCE_COMPLETE.value
        self.listener.event(f, 'force-complete-sent', '%s: forcing it to '
                            'complete' % note, note=note,
                            migration_id=migration.id)
        try:
            self.nova.force_complete(f.server_id, migration.id)
        except model.Transient as exc:
            self.listener.event(f, 'note', 'no answer to force-complete '
                                '(%s): not sent again; following it' % exc)
        except model.NovaError as exc:
            # A 403 (policy), 400 (no longer running), 409: never again.
            f.stall_refused = 'force-complete refused: %s' % exc
            self.listener.event(f, 'force-complete-refused',
                                f.stall_refused, message=str(exc))

    def _stall_abort(self, f: Follow, migration: model.Migration, note: str,
                     now: float) -> None:
        """Abort it (2.24): once; the server stays on its source."""
        f.stall_action = stall.Policy.ABORT.value
        f.abort_sent = True
        self.listener.event(f, 'abort-sent', '%s: aborting it' % note,
                            why='stall', note=note,
                            migration_id=migration.id)
        try:
            self.nova.abort(f.server_id, migration.id)
        except model.Transient as exc:
            self.listener.event(f, 'note', 'no answer to the abort (%s): '
                                'not sent again; following it' % exc)
        except model.NovaError as exc:
            f.abort_sent = False
            f.stall_refused = 'abort refused: %s' % exc
            self.listener.event(f, 'abort-refused', f.stall_refused,
                                message=str(exc))
            return
        # Nova cancels within seconds: no need to wait for the whole
        # deadline to learn that it did not; nor to judge it before Nova
        # had the time to, when the stall came just before the deadline.
        f.deadline = now + ABORT_GRACE

    def _stall_message(self, f: Follow, found: Verdict) -> str:
        """The verdict's message, saying what the stall led to and why."""
        note = f.stall_note
        if f.stall_refused:
            said = '%s: %s' % (note, f.stall_refused)
        elif f.stall_action == stall.Policy.ABORT.value:
            if found.result == R.ABORTED:
                source = f.source or (f.migration.source if f.migration
                                      else None)
                return '%s: aborted, the server stays on %s' % (
                    note, source or 'its source host')
            said = '%s: abort sent, but %s' % (
                note, 'the migration completed first'
                if found.result == R.MIGRATED else 'Nova did not cancel it')
        else:
            said = '%s: forced to complete' % note
        return '; '.join(p for p in (said, found.message) if p)

    # -- the deadline --------------------------------------------------------
    def _deadline(self, f: Follow, now: float) -> ty.Optional[Verdict]:
        """At the deadline: abort (and keep following) or give a verdict."""
        if f.deadline is None or now < f.deadline:
            return None
        what = 'timed out after %ds' % self.timeout
        migration = f.migration
        if f.start == Start.UNCERTAIN:
            return Verdict(R.TIMEOUT, '%s; the answer to the migrate request '
                           'was lost and Nova shows no migration yet: '
                           '--resume looks for it again' % what)
        if f.abort_sent and f.stall_action == stall.Policy.ABORT.value:
            return Verdict(R.TIMEOUT, 'Nova has not cancelled the live '
                           'migration by the deadline')
        if f.abort_sent:
            return Verdict(R.TIMEOUT, '%s; abort requested but Nova has not '
                           'cancelled the live migration' % what)
        if not self.abort_on_timeout:
            return Verdict(R.TIMEOUT, '%s; the migration goes on in Nova'
                           % what)
        if migration is None or migration.kind != model.Kind.LIVE:
            return Verdict(R.TIMEOUT, '%s; cold migrations cannot be '
                           'aborted, it goes on in Nova' % what)
        abortable = ABORTABLE + (ABORTABLE_265 if self.nova.supports(
            '2.65') else ())
        if migration.status not in abortable:
            return Verdict(R.TIMEOUT, '%s; a live migration in status %s '
                           'cannot be aborted' % (what, migration.status))
        try:
            self.nova.abort(f.server_id, migration.id)
        except model.NovaError as exc:
            return Verdict(R.TIMEOUT, '%s; abort refused: %s' % (what, exc))
        f.abort_sent = True
        f.deadline = now + ABORT_GRACE
        self.listener.event(f, 'abort-sent', 'deadline reached: abort sent')
        return None
