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

"""``batch --rolling``: the command's side of a rolling run.

Kept apart from v1/batch.py, which calls in at a few places: its options,
their validation, starting or resuming the run, and its report (a ``Moves``
column, appended last and only in rolling runs, so that the columns of
other runs do not change).
"""

import argparse
import typing as ty
import uuid

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus.engine import plan
from osc_migrate_plus.engine import rolling
from osc_migrate_plus.engine import rolling_seams as seams
from osc_migrate_plus.engine import session
from osc_migrate_plus import model
from osc_migrate_plus.v1 import common
from osc_migrate_plus.v1 import exit_codes

UsageError = common.UsageError
MOVES = ('Moves',)


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group('rolling maintenance')
    group.add_argument('--rolling', action='store_true',
                       help='Maintain the source hosts one after another: '
                            'disable, drain, check empty, run '
                            '--host-command, enable (--enable-after); '
                            'hosts waiting their turn are kept out of the '
                            'scheduler while the others have room, so each '
                            'server moves once. Implies --confirm')
    group.add_argument('--max-hosts', metavar='<n>',
                       type=common.positive_int,
                       help='With --rolling: hosts maintained at a time '
                            '(default: 1)')
    group.add_argument('--host-command', metavar='<command>',
                       help='With --rolling: run after each host is '
                            'drained and found empty, with /bin/sh -c; the '
                            'host in OSC_MIGRATE_HOST (and '
                            'OSC_MIGRATE_HOST_INDEX, OSC_MIGRATE_HOSTS_TOTAL);'
                            ' non-zero or past --timeout stops the run')
    group.add_argument('--enable-after', action='store_true',
                       help='With --rolling: enable each host\'s '
                            'nova-compute again once it reports up after '
                            'the host command (within --timeout)')


def validate(args: argparse.Namespace) -> None:
    given = [o for o, v in (('--max-hosts', args.max_hosts),
                            ('--host-command', args.host_command is not None),
                            ('--enable-after', args.enable_after)) if v]
    if args.host_command is not None and not args.host_command.strip():
        raise UsageError('--host-command is empty')
    if args.resume:
        return  # the journal says whether it is a rolling run
    if not args.rolling:
        if given:
            raise UsageError('%s need%s --rolling' % (
                ', '.join(given), 's' if len(given) == 1 else ''))
        return
    if not args.aggregate and len(args.source_hosts or ()) < 2:
        raise UsageError('--rolling maintains several hosts one after '
                         'another: name them with --source-host (repeated) '
                         'or --aggregate')
    others = [o for o, v in (('<server>', args.servers),
                             ('--servers-from', args.servers_from),
                             ('--project', args.project),
                             ('--status', args.status),
                             ('--disable-source', args.disable_source))
              if v]
    if others:
        raise UsageError('--rolling drains whole hosts and disables each at '
                         'its turn: drop %s' % ', '.join(others))


def seams_for(placement: nova_api.Placement, gateway: ty.Any,
              require_empty: bool = False
              ) -> ty.Tuple[seams.Room, seams.CheckHost]:
    """The capacity estimate and the host check the run asks."""
    return (seams.capacity_room(gateway, placement),
            seams.host_check(gateway, placement, require_empty))


def rolling_options(args: argparse.Namespace, options: batch.Options,
                    hosts: ty.Sequence[str]) -> rolling.RollingOptions:
    return rolling.RollingOptions(
        hosts=tuple(hosts), run_id=uuid.uuid4().hex[:12],
        max_hosts=args.max_hosts or 1, host_command=args.host_command,
        enable_after=args.enable_after,
        disable_reason=args.disable_reason or rolling.DEFAULT_REASON,
        timeout=options.timeout, interval=options.interval)


def dry_run(reporter: batch.Reporter, gateway: ty.Any,
            ropts: rolling.RollingOptions, items: ty.List[plan.PlanItem],
            room: seams.Room, row: ty.Callable[[plan.PlanItem], tuple]
            ) -> ty.List[tuple]:
    """The plan: host order, per step the room, the moves; rows by step."""
    reporter.info(rolling.order_text(ropts.hosts, items))
    estimates = rolling.estimate(ropts, items, gateway.compute_services(),
                                 room)
    for e in estimates:
        last = e.step == len(estimates)
        reporter.info('step %d: %s, %d server(s) to move; room on %s: %s' % (
            e.step, ', '.join(e.hosts), e.servers,
            ', '.join(e.destinations) or 'no other enabled host',
            {True: 'yes' if last else
             'yes, hosts waiting their turn are kept disabled',
             False: 'no' if last else 'no: fallback, any enabled host',
             None: 'unknown' if last else
             'unknown: fallback, any enabled host'}[e.room]))
    least, most = rolling.planned_moves(estimates)
    servers = sum(e.servers for e in estimates)
    reporter.info('moves: %s for %d server(s)%s' % (
        least if least == most else '%d to %d' % (least, most), servers,
        ' (each moved once)' if most == servers else
        ' (a server of a fallback step may move again)'))
    reporter.info('after each drain: %s; then %s' % (
        'host command %r' % ropts.host_command if ropts.host_command
        else 'no host command',
        'enable once nova-compute is up' if ropts.enable_after
        else 'left disabled'))
    position = {h: n for n, h in enumerate(ropts.hosts)}
    ordered = sorted(items, key=lambda i: position.get(i.server.host or '',
                                                       len(position)))
    return [row(i) + (0 if i.verdict == plan.SKIPPED else 1,)
            for i in ordered]


def header(ropts: rolling.RollingOptions) -> ty.Dict[str, ty.Any]:
    return {'rolling': ropts.to_journal()}


def resumed(started: session.Batch, resumption: session.Resumption,
            args: argparse.Namespace, options: batch.Options,
            gateway: ty.Any, reporter: batch.Reporter,
            placement: nova_api.Placement) -> session.Batch:
    """A resumed batch, as a rolling run if its journal is one."""
    records = resumption.state.rolling
    ropts = rolling.resumed_options(resumption.header, records)
    changes = {k: v for k, v in (('max_hosts', args.max_hosts),
                                 ('host_command', args.host_command),
                                 ('enable_after', args.enable_after or None))
               if v is not None}
    if ropts is None:
        if changes or args.rolling:
            raise UsageError('journal %s is not a rolling run: drop '
                             '--rolling, --max-hosts, --host-command and '
                             '--enable-after' % resumption.path)
        return started
    if changes:
        started.journal.write(dict(changes, type='rolling-options'))
        for key, value in changes.items():
            setattr(ropts, key, value)
    ropts.timeout, ropts.interval = options.timeout, options.interval
    room, check = seams_for(placement, gateway, args.require_empty)
    return rolling.wrap(started, ropts, options, gateway, reporter, room,
                        check, records)


def report(started: rolling.RollingBatch, reporter: ty.Any, code: int,
           row: ty.Callable[[batch.Entry], tuple]
           ) -> ty.Tuple[ty.List[tuple], int]:
    """Rows (one per server, its moves last) and the exit code."""
    outcome = started.outcome
    latest: ty.Dict[str, batch.Entry] = {}
    for entry in started.entries:
        if entry.state == batch.State.QUEUED:
            entry.state = batch.State.DONE
            entry.result = model.Result.NOT_STARTED
            entry.message = 'not reached: the rolling run stopped before ' \
                            'its host'
        latest[entry.server_id] = entry
    counted = rolling.moves(started.journal.path)
    rows = [row(e) + (counted.get(sid, 0),) for sid, e in latest.items()]
    if outcome is not None:
        for host in outcome.hosts:
            reporter.info('Host %s' % host.summary())
        if outcome.left_disabled:
            reporter.error('left disabled by this run: %s (openstack '
                           'compute service set --enable <host> '
                           'nova-compute)' % ', '.join(outcome.left_disabled))
        if outcome.failure:
            reporter.error(outcome.failure)
            if code != exit_codes.INTERRUPTED:
                code = exit_codes.FAILURE
    return rows, code
