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

"""``openstack server migrate batch``: drain a host or move a set."""

import argparse
import signal
import sys
import time
import typing as ty

from osc_lib.command import command
from osc_lib import exceptions

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import capacity
from osc_migrate_plus.engine import hints
from osc_migrate_plus.engine import hostcheck
from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus.engine import pace as pacing
from osc_migrate_plus.engine import plan
from osc_migrate_plus.engine import rolling
from osc_migrate_plus.engine import selection
from osc_migrate_plus.engine import session
from osc_migrate_plus import gateway as gw
from osc_migrate_plus import model
from osc_migrate_plus.v1 import batch_hostcheck as host_check
from osc_migrate_plus.v1 import batch_progress
from osc_migrate_plus.v1 import common
from osc_migrate_plus.v1 import exit_codes
from osc_migrate_plus.v1 import rolling as rolling_cmd

UsageError = common.UsageError

COLUMNS = ('Server ID', 'Name', 'Project ID', 'Source Host',
           'Destination Host', 'Mode', 'Result', 'Attempts', 'Duration',
           'Message')
# One place for the defaults: the engine's.
DEFAULTS = batch.Options()


class BatchMigrate(common.VerdictCommand, command.Lister):
    """Migrate many servers: a whole host, a list, a filter.

    Plans first (each server planned, adopted if already migrating, or
    skipped with the reason), then migrates within concurrency limits,
    follows every migration with bulk polls, confirms when asked, and keeps
    a journal so an interrupted batch can be resumed without migrating any
    server twice. Before anything moves, estimates from Placement whether
    the other compute hosts can take the planned servers, and refuses to
    start if not (unless --ignore-capacity). With --source-host or
    --aggregate it ends by checking that each source host is empty:
    servers, migrations and allocations in Placement still there. Exit
    codes: 0 every server reached its goal (and every source host is empty
    of servers), 1 any failed or was skipped, a server is still on a source
    host, or the plan does not fit, 2 usage error, 3 none failed but some
    timed out or were aborted (--on-stall abort), 130 interrupted. A dry run
    exits 0 when it could plan and the planned servers fit (or capacity
    could not be checked); 1 when some do not fit, or with --require-empty
    a source host is not empty.
    """

    name = 'batch'
    _placement_gateway: ty.Optional[nova_api.Placement] = None

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument('servers', metavar='<server>', nargs='*',
                            help='Servers to migrate (name or ID)')
        select = parser.add_argument_group('selection (together they '
                                           'narrow)')
        hosts = select.add_mutually_exclusive_group()
        hosts.add_argument('--source-host', metavar='<host>',
                           dest='source_hosts', action='append',
                           help='Every server on this exact compute host, '
                                'all projects (repeat for several hosts: '
                                'one batch over all their servers)')
        hosts.add_argument('--aggregate', metavar='<aggregate>',
                           help='Every server on the compute hosts of this '
                                'host aggregate (name), all projects')
        select.add_argument('--servers-from', metavar='<file>',
                            help='Names or IDs, one per line, # comments; '
                                 '"-" for stdin')
        select.add_argument('--project', metavar='<project>',
                            help='Servers of this project (ID): alone, '
                                 'every server of it; with names or '
                                 '--source-host, only those of it')
        select.add_argument('--status', metavar='<status>',
                            help='Only servers in this status (e.g. ACTIVE)')
        how = parser.add_argument_group('how')
        how.add_argument('--mode', choices=plan.MODES, default=None,
                         help='cold (default), live, or auto: live for '
                              'ACTIVE/PAUSED servers, cold for SHUTOFF')
        how.add_argument('--live-migration', action='store_true',
                         help='Shorthand for --mode live')
        how.add_argument('--host', metavar='<target-host>',
                         help='Target compute host (cold: compute API 2.56 '
                              'or greater; live: 2.30)')
        block = how.add_mutually_exclusive_group()
        block.add_argument('--block-migration', action='store_true',
                           help='Live: copy the disks (default: auto)')
        block.add_argument('--shared-migration', action='store_true',
                           help='Live: disks are on shared storage')
        how.add_argument('--confirm', action='store_true',
                         help='Confirm each cold migration at VERIFY_RESIZE '
                              '(without it they are left for you)')
        how.add_argument('--verify-command', metavar='<command>',
                         help='Run before confirming each cold migration '
                              '(and after each live one), with facts in '
                              'OSC_MIGRATE_* environment variables; exit 0 '
                              'confirms, anything else reverts (fails a '
                              'live one). Implies --confirm')
        limits = parser.add_argument_group('limits')
        # Limits default to None: a resume takes the journal's unless they
        # are given again.
        limits.add_argument('--max-parallel', metavar='<n|auto>',
                            type=parallel_limit,
                            help='Migrations in flight overall, or auto: '
                                 'as many as Nova sustains, found while the '
                                 'batch runs, within --max-per-source and '
                                 '--max-per-destination if given (default: '
                                 '%s)'
                                 % DEFAULTS.max_parallel)
        limits.add_argument('--max-per-source', metavar='<n>',
                            type=common.positive_int,
                            help='From one host (default: %d; none with '
                                 '--max-parallel auto)'
                                 % DEFAULTS.max_per_source)
        limits.add_argument('--max-per-destination', metavar='<n>',
                            type=common.positive_int,
                            help='To one host (default: %d; none with '
                                 '--max-parallel auto)'
                                 % DEFAULTS.max_per_destination)
        common.add_follow_options(
            parser, interval_help='Longest gap between two polls of Nova '
            '(default: 2). Polls come sooner, at most every quarter '
            'interval, while the run\'s migrations take less than this.')
        parser.set_defaults(timeout=None)
        common.add_stall_options(parser, batch=True)
        limits.add_argument('--retries', metavar='<n>',
                            type=common.non_negative_int,
                            default=DEFAULTS.retries,
                            help='Retries of a submission refused for a '
                                 'transient reason (409 task state, 5xx, '
                                 'connection); never 400/403/404 '
                                 '(default: %(default)s)')
        limits.add_argument('--max-failures', metavar='<n>',
                            type=common.positive_int,
                            help='After this many failures stop submitting, '
                                 'follow what is in flight, report the rest '
                                 'not-started')
        drain = parser.add_argument_group('drain')
        drain.add_argument('--disable-source', action='store_true',
                           help='Disable the source compute service(s) '
                                'before submitting (left disabled)')
        drain.add_argument('--disable-reason', metavar='<text>',
                           help='Reason recorded with --disable-source')
        drain.add_argument('--require-empty', action='store_true',
                           help='With --source-host or --aggregate: fail '
                                '(exit 1) unless the host check finds each '
                                'source host wholly empty: no server, no '
                                'migration still holding it (one awaiting '
                                'confirm included), no leaked allocation, '
                                'and Placement read. Without it only '
                                'servers left fail the run')
        state = parser.add_argument_group('journal')
        state.add_argument('--state-file', metavar='<path>',
                           help='Journal path (default: a new file under '
                                '$XDG_STATE_HOME/osc-migrate-plus/)')
        state.add_argument('--resume', metavar='<path>',
                           help='Continue the batch of this journal')
        room = parser.add_argument_group('capacity')
        room.add_argument('--ignore-capacity', action='store_true',
                          help='Go even if the estimate from Placement says '
                               'some planned servers do not fit on the '
                               'other compute hosts: Nova\'s scheduler '
                               'decides (refuses them with NoValidHost)')
        parser.add_argument('--dry-run', action='store_true',
                            help='Print the plan, with the capacity '
                                 'estimate; change nothing')
        rolling_cmd.add_options(parser)
        return parser

    # -- validation --------------------------------------------------------
    @staticmethod
    def validate(args: argparse.Namespace) -> None:
        if args.live_migration:
            if args.mode not in (None, plan.LIVE):
                raise UsageError('--live-migration contradicts '
                                 '--mode %s' % args.mode)
            args.mode = plan.LIVE
        if args.resume:
            given = [o for o, v in (
                ('<server>', args.servers),
                ('--source-host', args.source_hosts),
                ('--aggregate', args.aggregate),
                ('--servers-from', args.servers_from),
                ('--project', args.project), ('--status', args.status),
                ('--state-file', args.state_file),
                ('--disable-source', args.disable_source),
                ('--dry-run', args.dry_run)) if v]
            if given:
                raise UsageError('--resume takes the selection and '
                                 'journal from the journal; drop %s'
                                 % ', '.join(given))
            if args.ignore_capacity:
                raise UsageError('--resume does not check capacity (it '
                                 'continues a run that started); drop '
                                 '--ignore-capacity')
        else:
            if args.mode is None:
                args.mode = plan.COLD
            if not (args.servers or args.source_hosts or args.aggregate
                    or args.servers_from or args.project):
                raise UsageError('select servers: name them, or use '
                                 '--source-host, --aggregate, --project or '
                                 '--servers-from')
            if args.source_hosts and \
                    len(set(args.source_hosts)) != len(args.source_hosts):
                raise UsageError('--source-host names a host twice: %s'
                                 % ', '.join(args.source_hosts))
        if (args.block_migration or args.shared_migration) and \
                args.mode == plan.COLD:
            raise UsageError('--block-migration and --shared-migration'
                             ' are for live migrations (--mode live or'
                             ' auto)')
        if args.disable_reason and not (args.disable_source or
                                        args.rolling):
            raise UsageError('--disable-reason needs --disable-source or '
                             '--rolling')
        if args.require_empty and not (args.source_hosts or args.aggregate
                                       or args.resume):
            raise UsageError('--require-empty needs --source-host or '
                             '--aggregate: it is the source hosts that must '
                             'be empty')
        if args.verify_command is not None and not args.verify_command:
            raise UsageError('--verify-command is empty')
        common.stall_options(args)
        rolling_cmd.validate(args)

    # -- the work ----------------------------------------------------------
    def produce(self, parsed_args: argparse.Namespace) -> common.Report:
        compute = getattr(self.app.client_manager, 'migrate_plus')
        gateway = gw.NovaGateway(compute)
        reporter = batch_progress.BatchProgress(
            self.app.stderr, quiet=common.is_quiet(self.app, parsed_args))
        try:
            if parsed_args.resume:
                return self._resume(gateway, reporter, parsed_args)
            return self._new(gateway, reporter, parsed_args)
        except (model.MicroversionError, UsageError):
            raise
        except model.NovaError as exc:
            # Refused before anything moved (a 403 on reading migrations):
            # Nova's reason, then what to do about it if the cause is known.
            raise exceptions.CommandError(hints.annotate(str(exc))[0])
        except (jrn.JournalError, OSError) as exc:
            raise exceptions.CommandError(str(exc))
        except model.CredentialsExpired as exc:
            raise exceptions.CommandError('credentials expired: %s' % exc)

    def _options(self, args: argparse.Namespace) -> batch.Options:
        block = True if args.block_migration else (
            False if args.shared_migration else None)
        options = batch.Options(
            mode=args.mode, host=args.host, block_migration=block,
            # A rolling run's host is done once its servers are confirmed.
            confirm=bool(args.confirm or args.verify_command
                         or getattr(args, 'rolling', False)),
            verify_command=args.verify_command,
            source_hosts=tuple(getattr(args, 'source_hosts', None) or ()),
            interval=args.interval, retries=args.retries,
            max_failures=args.max_failures or 0)
        on_stall, stall_after = common.stall_options(args)
        given = dict(vars(args), on_stall=on_stall, stall_after=stall_after)
        for key in session.LIMITS:
            if given.get(key) is not None:
                setattr(options, key, given[key])
        if options.max_parallel == batch.AUTO:
            # auto finds what Nova sustains, also per host (it backs off
            # when migrations queue on a compute or slow down): the
            # per-host limits bind only when given.
            for key in ('max_per_source', 'max_per_destination'):
                if given.get(key) is None:
                    setattr(options, key, 0)
        return options

    @staticmethod
    def _gates(gateway: gw.NovaGateway, options: batch.Options,
               disable_source: bool = False,
               rolling_run: bool = False) -> None:
        gateway.microversion  # the 2.59 floor
        if options.host:
            gateway.require('2.56' if options.mode != plan.LIVE else '2.30',
                            '--host')
            if options.mode == plan.AUTO:
                gateway.require('2.56', '--host with --mode auto')
        if disable_source:
            gateway.require('2.53', '--disable-source')
        if rolling_run:
            gateway.require('2.53', '--rolling')

    @staticmethod
    def _listed(args: argparse.Namespace) -> ty.List[str]:
        """Names from --servers-from (a file, or - for stdin)."""
        if not args.servers_from:
            return []
        if args.servers_from == '-':
            text = sys.stdin.read()
        else:
            try:
                with open(args.servers_from) as f:
                    text = f.read()
            except OSError as exc:
                raise UsageError('--servers-from: cannot read %s: %s'
                                 % (args.servers_from, exc.strerror))
        listed = plan.parse_server_list(text)
        if not listed:
            raise UsageError('--servers-from %s names no server'
                             % args.servers_from)
        return listed

    def _host_check(self, args: argparse.Namespace,
                    source_hosts: ty.Sequence[str],
                    selected: ty.Dict[str, ty.Any]
                    ) -> ty.Optional[host_check.HostCheck]:
        """The end-of-run check of the source hosts, if the batch has any."""
        if not source_hosts:
            if args.require_empty:
                raise UsageError('--require-empty needs a batch with '
                                 '--source-host or --aggregate; this '
                                 'journal has none')
            return None
        return host_check.HostCheck(
            list(source_hosts),
            whole_host=not any(selected.get(k) for k in (
                'servers', 'servers_from', 'project', 'status')),
            require_empty=args.require_empty,
            placement=self._placement())

    def _new(self, gateway: gw.NovaGateway,
             reporter: batch_progress.BatchProgress,
             args: argparse.Namespace) -> common.Report:
        names = list(args.servers) + self._listed(args)
        options = self._options(args)
        self._gates(gateway, options, args.disable_source, args.rolling)
        if args.aggregate:
            options.source_hosts = selection.aggregate_hosts(
                gateway, args.aggregate)
        wanted = selection.Selection(
            names=names,
            source_hosts=options.source_hosts, project=args.project,
            status=args.status, mode=args.mode, target_host=args.host)
        if len(options.source_hosts) > 1 and not (args.disable_source or
                                                  args.rolling):
            # Nova may pick one source as another's destination: only a
            # disabled service keeps its scheduler away.
            reporter.info('several source hosts without --disable-source: '
                          'Nova may move a server onto another of them')
        items = session.plan_for(gateway, wanted)
        if items:
            gateway.check_can_follow({i.server.project_id for i in items})
            items = selection.visible_adoptions(gateway, items)
        selected = {'servers': list(args.servers),
                    'servers_from': args.servers_from,
                    'source_hosts': list(options.source_hosts),
                    'aggregate': args.aggregate, 'project': args.project,
                    'status': args.status}
        if args.rolling:
            return self._rolling(gateway, reporter, args, options, items,
                                 selected)
        check = self._host_check(args, options.source_hosts, selected)
        # Named servers: the others' hosts are destinations too.
        room = capacity.check(gateway, self._placement(), items, args.host,
                              drained=options.source_hosts)
        short = room.without_room
        if args.dry_run:
            code = exit_codes.FAILURE if short and not args.ignore_capacity \
                else exit_codes.SUCCESS
            if options.max_parallel == batch.AUTO:
                reporter.info('--max-parallel auto: would start with %d in '
                              'flight and find what Nova sustains while it '
                              'runs (at most %d)' % (pacing.START,
                                                     pacing.CEILING))
            if check is not None:
                # The plan listed the whole hosts a moment ago: not twice.
                reports = check.run(
                    gateway, reporter, hostcheck.notes_from_plan(items),
                    {i.server.id: i.server.name for i in items},
                    listed={h: [i.server for i in items
                                if i.server.host == h] for h in check.hosts}
                    if check.whole_host else None)
                if check.require_empty:
                    code = check.exit_code(code, reports)
            self._say_room(reporter, room)
            return common.Report(
                COLUMNS, [self._plan_row(i, room) for i in items], code)
        self._say_room(reporter, room)
        if short and not args.ignore_capacity:
            return self._refused(reporter, items, room)
        if short:
            reporter.error('going on all the same (--ignore-capacity): '
                           'Nova\'s scheduler decides where %d server(s) '
                           'without room by the estimate go, if anywhere'
                           % len(short))
        started = session.new(
            gateway, reporter, items, options,
            args.state_file or jrn.default_path(), selected,
            disable_reason=args.disable_reason,
            disable_source=args.disable_source)
        return self._run(started, reporter, check)

    def _resume(self, gateway: gw.NovaGateway,
                reporter: batch_progress.BatchProgress,
                args: argparse.Namespace) -> common.Report:
        resumption = session.Resumption(args.resume)
        try:
            given = self._options(args)
            explicit = [k for k in session.BINDING
                        if getattr(given, k) not in (None, False)]
            explicit += [k for k in session.LIMITS
                         if getattr(args, k, None) is not None]
            try:
                options = resumption.options(given, explicit)
            except session.Contradiction as exc:
                raise UsageError(str(exc))
            if 'max_parallel' in explicit and \
                    options.max_parallel == batch.AUTO:
                # As on a new run: auto's per-host limits are those given
                # now, not the journal's (a run's defaults would hold a
                # one-host drain at 2).
                for key in ('max_per_source', 'max_per_destination'):
                    if key not in explicit:
                        setattr(options, key, 0)
            options.mode = options.mode or plan.COLD
            check = self._host_check(args, options.source_hosts,
                                     resumption.header.get('selection', {}))
            self._gates(gateway, options)
            resumption.check_cloud(gateway.endpoint())
            gateway.check_can_follow(resumption.projects())
            resumption.check_scope(gateway)
            resumed = resumption.start(gateway, reporter, options)
            resumed = rolling_cmd.resumed(resumed, resumption, args,
                                          options, gateway, reporter,
                                          self._placement())
            if isinstance(resumed, rolling.RollingBatch):
                check = None  # each host is checked at its turn
        except BaseException:
            resumption.close()
            raise
        return self._run(resumed, reporter, check)

    def _rolling(self, gateway: gw.NovaGateway,
                 reporter: batch_progress.BatchProgress,
                 args: argparse.Namespace, options: batch.Options,
                 items: ty.List[plan.PlanItem],
                 selected: ty.Dict[str, ty.Any]) -> common.Report:
        """A rolling run (v1/rolling.py): room per step, a check per host.

        Not the whole plan's estimate nor the end-of-run check: the hosts
        done take the next ones' servers, and each host is checked before
        its command.
        """
        ropts = rolling_cmd.rolling_options(
            args, options, rolling.order_hosts(options.source_hosts, items))
        room, check = rolling_cmd.seams_for(self._placement(), gateway,
                                            args.require_empty)
        if args.dry_run:
            return common.Report(
                COLUMNS + rolling_cmd.MOVES, rolling_cmd.dry_run(
                    reporter, gateway, ropts, items, room, self._plan_row),
                exit_codes.SUCCESS)
        started = session.new(
            gateway, reporter, items, options,
            args.state_file or jrn.default_path(), selected,
            disable_reason=args.disable_reason,
            header=rolling_cmd.header(ropts))
        reporter.info(rolling.order_text(ropts.hosts, items))
        return self._run(rolling.wrap(started, ropts, options, gateway,
                                      reporter, room, check), reporter)

    def _run(self, started: session.Batch,
             reporter: batch_progress.BatchProgress,
             check: ty.Optional[host_check.HostCheck] = None
             ) -> common.Report:
        signals = {'count': 0}

        def on_signal(signum: int, frame: ty.Any) -> None:
            signals['count'] += 1
            if signals['count'] > 1:
                # Second time: leave now. Every journal line is already
                # whole on disk, so --resume still works.
                raise KeyboardInterrupt()
            started.runner.stop_requested = True
            reporter.error('stopping: no new submissions; in-flight '
                           'migrations go on in Nova (Ctrl-C again to '
                           'quit at once)')

        # A closed terminal (SIGHUP, a dropped SSH session) stops it too.
        previous = {s: signal.signal(s, on_signal)
                    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        began = time.monotonic()
        # The live status line shows auto's limit as it moves.
        reporter.pace = started.runner.pace
        try:
            completed = started.run()
            entries = started.entries
            reporter.close(entries, time.monotonic() - began)
            fatal = started.runner.fatal
            reports: ty.List[hostcheck.HostReport] = []
            if check is not None and fatal is None:
                # After the summary: the check's lines are the last ones.
                # Its journal record goes in before the journal closes.
                reports = check.run(
                    started.runner.nova, reporter,
                    hostcheck.notes_from_entries(entries),
                    {e.server_id: e.server.name for e in entries},
                    started.journal)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            started.close()
        code = batch_exit_code(entries, completed)
        if check is not None:
            code = check.exit_code(code, reports)
        if isinstance(fatal, model.CredentialsExpired):
            reporter.error(
                'credentials expired: %s. Nothing more was sent; what is in '
                'flight goes on in Nova and is in the journal. Get fresh '
                'credentials (a new token), then resume. For long runs use '
                'an application credential or a password, which are renewed '
                'as needed.' % fatal)
            code = exit_codes.FAILURE
        elif fatal is not None:
            reporter.error('following stopped: %s'
                           % hints.annotate(str(fatal))[0])
            code = exit_codes.FAILURE
        if not completed:
            reporter.error('interrupted: resume with openstack server '
                           'migrate batch --resume %s' % started.journal.path)
        if isinstance(started, rolling.RollingBatch):
            rows, code = rolling_cmd.report(started, reporter, code,
                                            self._row)
            return common.Report(COLUMNS + rolling_cmd.MOVES, rows, code)
        return common.Report(COLUMNS, [self._row(e) for e in entries], code)

    @staticmethod
    def _say_room(reporter: batch_progress.BatchProgress,
                  room: capacity.Estimate) -> None:
        """The plan's capacity line: a dry run's last line on stderr.

        An error when it stops the run, so that --quiet shows it too.
        """
        if room.summary:
            (reporter.error if room.without_room else reporter.info)(
                room.summary)

    def _placement(self) -> nova_api.Placement:
        """Placement as the user's clouds.yaml and catalog reach it.

        One gateway for the run: the estimate, the host checks and rolling
        steps share what it read once (every provider's tree).
        """
        if self._placement_gateway is None:
            self._placement_gateway = self._find_placement()
        return self._placement_gateway

    def _find_placement(self) -> nova_api.Placement:
        found = host_check.placement_gateway(self.app)
        if found is not None:
            return found
        # Older SDKs raise at attribute access when the service is not in
        # the catalog (newer ones when it is used: the gateway says so).
        try:
            self.app.client_manager.sdk_connection.placement
        except Exception as exc:  # noqa: B902
            return _Unavailable('Placement is not in the service catalog: '
                                '%s' % exc)
        return _Unavailable('Placement is not in the service catalog')

    @staticmethod
    def _refused(reporter: batch_progress.BatchProgress,
                 items: ty.List[plan.PlanItem],
                 room: capacity.Estimate) -> common.Report:
        """Not started: the plan does not fit. Nothing was changed."""
        short = room.without_room
        reporter.error(
            'not started: %d of %d planned servers would not fit on the '
            'other compute hosts by the estimate from Placement: %s. Nothing '
            'was changed. Make room (or enable hosts), migrate fewer, or add '
            '--ignore-capacity to go anyway and let Nova\'s scheduler '
            'decide.' % (len(short), len(room.verdicts),
                         ', '.join(room.names[s] for s in short)))
        rows = []
        for item in items:
            s = item.server
            if item.verdict == plan.SKIPPED:
                result, message = model.Result.SKIPPED, item.reason
            elif item.verdict == plan.ADOPT:
                result = model.Result.NOT_STARTED
                message = '%s; not followed: the plan does not fit' % (
                    item.reason)
            else:
                result = model.Result.NOT_STARTED
                message = 'not started: the plan does not fit; %s' % (
                    room.message(s.id))
            rows.append((s.id, s.name, s.project_id, s.host, None,
                         item.mode.value if item.mode else None,
                         result.value, 0, None, message))
        return common.Report(COLUMNS, rows, exit_codes.FAILURE)

    @staticmethod
    def _plan_row(item: plan.PlanItem,
                  room: ty.Optional[capacity.Estimate] = None) -> tuple:
        s = item.server
        result = model.Result.SKIPPED if item.verdict == plan.SKIPPED \
            else model.Result.PLANNED
        message = item.reason if item.verdict != plan.PLANNED else (
            room.message(s.id) if room is not None else '')
        return (s.id, s.name, s.project_id, s.host, None,
                item.mode.value if item.mode else None, result.value, 0,
                None, message)

    @staticmethod
    def _row(entry: batch.Entry) -> tuple:
        s = entry.item.server
        mode = entry.follow.kind or entry.item.mode
        return (s.id, entry.server.name, s.project_id, entry.source,
                entry.destination, mode.value if mode else None,
                entry.result.value if entry.result else None,
                entry.attempts, batch.duration(entry), entry.message)


class _Unavailable:
    """A Placement that cannot be reached: every read says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def provider(self, uuid: str) -> ty.Optional[model.Provider]:
        raise model.PlacementUnavailable(self.reason)

    def provider_allocations(self, uuid: str
                             ) -> ty.Dict[str, ty.Dict[str, int]]:
        raise model.PlacementUnavailable(self.reason)


def parallel_limit(text: str) -> ty.Union[int, str]:
    """--max-parallel: a number of migrations, or auto."""
    if text.strip().lower() == batch.AUTO:
        return batch.AUTO
    try:
        return common.positive_int(text)
    except ValueError:
        raise argparse.ArgumentTypeError('must be a number (1 or more) or '
                                         'auto, got %s' % text)


def batch_exit_code(entries: ty.List[batch.Entry], completed: bool) -> int:
    """The batch's exit code from its results.

    0 every server reached its goal (a deleted one needs none), 1 any
    failed or was skipped, 3 none failed but some timed out or were
    aborted (as ``watch``: given up on, the server unharmed where it was).
    """
    return exit_code_for([e.result for e in entries], completed)


def exit_code_for(results: ty.Iterable[ty.Optional[model.Result]],
                  completed: bool) -> int:
    """The batch's exit code from its servers' results (``report`` too)."""
    if not completed:
        return exit_codes.INTERRUPTED
    seen = set(results) - {model.Result.DELETED}
    given_up = {model.Result.TIMEOUT, model.Result.ABORTED}
    if seen - {model.Result.MIGRATED, model.Result.CONFIRMED} - given_up:
        return exit_codes.FAILURE
    if seen & given_up:
        return exit_codes.TIMEOUT
    return exit_codes.SUCCESS
