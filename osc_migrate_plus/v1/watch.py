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

"""``openstack server migrate watch``: one server's migration to a verdict."""

import argparse
import re
import signal
import time
import typing as ty

from osc_lib.command import command
from osc_lib import exceptions

from osc_migrate_plus.engine import follower
from osc_migrate_plus.engine import hints
from osc_migrate_plus.engine import selection
from osc_migrate_plus.engine import stall
from osc_migrate_plus.engine import step
from osc_migrate_plus.engine import verdict
from osc_migrate_plus import gateway as gw
from osc_migrate_plus import model
from osc_migrate_plus.v1 import common
from osc_migrate_plus.v1 import exit_codes
from osc_migrate_plus.v1 import progress

UsageError = common.UsageError

_UUID = re.compile('[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}')
# Seconds to wait for the record of a migration just accepted before
# calling it invisible (the conductor writes it within about a second).
INVISIBLE_WAIT = 5
# How a record long over is reported when the server has moved since.
FINAL_RESULTS = {'confirmed': model.Result.CONFIRMED,
                 'completed': model.Result.MIGRATED,
                 'done': model.Result.MIGRATED,
                 'reverted': model.Result.REVERTED,
                 'error': model.Result.FAILED,
                 'failed': model.Result.FAILED,
                 'cancelled': model.Result.FAILED}
COLUMNS = ('Server ID', 'Server Name', 'Result', 'Status', 'Source Host',
           'Destination Host', 'Migration ID', 'Migration Type',
           'Migration Status', 'Started At', 'Finished At', 'Duration',
           'Message')


def outcome_row(outcome: follower.Outcome,
                source: ty.Optional[str]) -> ty.Tuple[ty.Any, ...]:
    server, migration = outcome.server, outcome.migration
    started = model.nova_time(migration.created_at) if migration else None
    finished = None
    if migration and outcome.result in (model.Result.MIGRATED,
                                        model.Result.CONFIRMED,
                                        model.Result.REVERTED,
                                        model.Result.FAILED,
                                        model.Result.ABORTED):
        finished = model.nova_time(migration.updated_at)
    if started and finished:
        duration = round((finished - started).total_seconds(), 1)
    else:
        duration = round(outcome.elapsed, 1)
    return (
        server.id, server.name, outcome.result.value, server.status,
        (migration.source if migration else None) or source,
        migration.dest if migration else None,
        migration.id if migration else None,
        migration.type if migration else None,
        migration.status if migration else None,
        started.isoformat() if started else None,
        finished.isoformat() if finished else None,
        duration, outcome.message,
    )


class WatchMigration(common.VerdictCommand, command.ShowOne):
    """Follow a server's migration to a verdict (optionally start it).

    Success only when Nova's migration record and the server agree: a cold
    migration finished with the server in VERIFY_RESIZE on another host (then
    confirmed or reverted if asked), a live migration completed with the
    server on another host. Exit codes: 0 success, 1 failure, 2 usage error,
    3 timeout or aborted, 130 interrupted. Progress goes to stderr; stdout
    carries only the result.
    """

    name = 'watch'

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument('server', metavar='<server>',
                            help='Server to follow (name or ID; an admin may '
                                 'name a server of any project)')
        parser.add_argument(
            '--start', action='store_true',
            help='Start the migration first (cold unless --live-migration)')
        parser.add_argument(
            '--live-migration', action='store_true',
            help='With --start: live-migrate instead of cold-migrate')
        parser.add_argument(
            '--host', metavar='<host>',
            help='With --start: target compute host (cold: '
                 '--os-compute-api-version 2.56 or greater; live: 2.30)')
        block = parser.add_mutually_exclusive_group()
        block.add_argument(
            '--block-migration', action='store_true',
            help='With --start --live-migration: copy the disks (default: '
                 'Nova decides, "auto")')
        block.add_argument(
            '--shared-migration', action='store_true',
            help='With --start --live-migration: disks are on shared '
                 'storage')
        decide = parser.add_mutually_exclusive_group()
        decide.add_argument(
            '--confirm', action='store_true',
            help='Confirm the cold migration when it reaches VERIFY_RESIZE '
                 'and follow it until confirmed')
        decide.add_argument(
            '--revert', action='store_true',
            help='Revert the cold migration when it reaches VERIFY_RESIZE '
                 'and follow it until the server is back on its source')
        common.add_follow_options(parser)
        parser.add_argument(
            '--abort-on-timeout', action='store_true',
            help='At the deadline, abort a live migration still running '
                 '(compute API 2.24; queued/preparing ones from 2.65). Cold '
                 'migrations cannot be aborted.')
        common.add_stall_options(parser)
        parser.add_argument(
            '--migration', metavar='<id>',
            help='Follow (or report on) this migration of the server (ID or '
                 'UUID) instead of the one in progress')
        return parser

    # -- validation --------------------------------------------------------
    @staticmethod
    def validate(args: argparse.Namespace) -> None:
        start_only = [name for name, given in (
            ('--live-migration', args.live_migration),
            ('--host', args.host is not None),
            ('--block-migration', args.block_migration),
            ('--shared-migration', args.shared_migration)) if given]
        if start_only and not args.start:
            raise UsageError('%s only make%s sense with --start'
                             % (', '.join(start_only),
                                's' if len(start_only) == 1 else ''))
        if ((args.block_migration or args.shared_migration)
                and not args.live_migration):
            raise UsageError('--block-migration and --shared-migration need '
                             '--live-migration')
        if args.revert and args.live_migration:
            raise UsageError('a live migration cannot be reverted; --revert '
                             'is for cold migrations')
        if args.migration is not None and not (
                args.migration.isdigit() or _UUID.fullmatch(args.migration)):
            raise UsageError('--migration takes a migration ID (a number) '
                             'or UUID, not %r' % args.migration)
        if args.migration is not None and args.start:
            raise UsageError('--migration follows an existing migration; it '
                             'cannot be combined with --start')
        common.stall_options(args)

    # -- the work ----------------------------------------------------------
    def produce(self, parsed_args: argparse.Namespace) -> common.Report:
        # The plugin's client (plugin.make_client): the sdk compute proxy.
        compute = getattr(self.app.client_manager, 'migrate_plus')
        gateway = gw.NovaGateway(compute)
        quiet = common.is_quiet(self.app, parsed_args)
        reporter = progress.StderrProgress(self.app.stderr, quiet=quiet)
        on_stall, stall_after = common.stall_options(parsed_args)
        loop = follower.Follower(
            gateway, reporter, interval=parsed_args.interval,
            timeout=parsed_args.timeout,
            abort_on_timeout=parsed_args.abort_on_timeout,
            on_stall=stall.Policy(on_stall or stall.Policy.WAIT),
            stall_after=stall_after or stall.DEFAULT_STALL_AFTER)
        previous = {s: signal.signal(s, _interrupt)
                    for s in (signal.SIGTERM, signal.SIGHUP)}
        f: ty.Optional[step.Follow] = None
        try:
            server = gateway.find_server(parsed_args.server)
            gateway.check_can_follow([server.project_id])
            if parsed_args.start:
                f = self._to_start(gateway, server, parsed_args)
                # Known before the request goes out: a Ctrl-C from here on
                # still reports.
                loop.start(f, live=parsed_args.live_migration,
                           host=parsed_args.host,
                           block_migration=_block(parsed_args))
                outcome = loop.follow(f)
            else:
                f, report = self._attach(gateway, server, parsed_args)
                outcome = report or loop.follow(f)
        except KeyboardInterrupt:
            if f is None:
                raise
            outcome = self._interrupted(loop, f, reporter, parsed_args)
        except model.MicroversionError:
            raise
        except model.NovaError as exc:
            # Refused (watch --start), or nothing to follow: Nova's reason,
            # then what to do about it if the cause is known.
            raise exceptions.CommandError(hints.annotate(str(exc))[0])
        except model.CredentialsExpired as exc:
            text = 'credentials expired: %s' % exc
            # Attached to one, or ours was sent: it goes on without us.
            if f is not None and (not parsed_args.start or f.start_at):
                text += ('. The migration goes on in Nova; with fresh '
                         'credentials follow it again: %s'
                         % self._again(f, parsed_args))
            elif parsed_args.start:
                text += '; no migration was started'
            else:
                text += '; nothing was changed'

            raise exceptions.CommandError(text)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
            reporter.close()
        assert f is not None  # noqa: S101 (set, or we re-raised)
        if outcome.hint is not None:
            reporter.hint(outcome.hint)
        if outcome.result == model.Result.NOT_STARTED:
            outcome.result = model.Result.FAILED
            outcome.message += ('; before starting it again, check that no '
                                'new migration of it shows (openstack '
                                'server migration list --server %s)'
                                % outcome.server.id)
        return common.Report(COLUMNS, common.shell_safe(
            parsed_args, outcome_row(outcome, f.source)),
            exit_codes.for_result(outcome.result))

    def _to_start(self, gateway: gw.NovaGateway, server: model.Server,
                  args: argparse.Namespace) -> step.Follow:
        if args.host:
            gateway.require('2.30' if args.live_migration else '2.56',
                            '--host with %s migration' % (
                                'a live' if args.live_migration else 'a cold'))
            selection.check_hosts(gateway, [('--host', args.host)])
            if args.host == server.host:
                raise model.NovaError('Server %s is already on host %s.' % (
                    server.id, args.host))
        return step.Follow(
            server_id=server.id, source=server.host,
            original_status=server.status, goal=_goal(args),
            kind=model.Kind.LIVE if args.live_migration else model.Kind.COLD,
            server=server)

    def _attach(self, gateway: gw.NovaGateway, server: model.Server,
                args: argparse.Namespace
                ) -> ty.Tuple[step.Follow, ty.Optional[follower.Outcome]]:
        """The migration to follow, or the report on one long over."""
        records = gateway.migrations(server.id)
        newest = records[0] if records else None
        if args.migration is not None:
            wanted = args.migration
            chosen = next((m for m in records if str(m.id) == wanted
                           or m.uuid == wanted), None)
            if chosen is None:
                raise model.NovaError(
                    'Migration %s does not belong to server %s; its '
                    'migrations: %s' % (wanted, server.id, ', '.join(
                        str(m.id) for m in records) or 'none'))
            f = self._follow(server, chosen, args)
            if chosen is not newest and chosen.status in FINAL_RESULTS:
                # Newer migrations moved the server since: its state now
                # says nothing of this one; the record alone does.
                return f, follower.Outcome(
                    FINAL_RESULTS[chosen.status], server, chosen,
                    'migration %s ended %s; the server has migrated since '
                    '(migration %s): reported from the record alone' % (
                        chosen.id, chosen.status, newest.id if newest
                        else '?'))
            return f, None
        if newest is not None and verdict.in_progress(newest):
            return self._follow(server, newest, args), None
        if newest is not None and newest.type not in \
                model.MIGRATION_TYPES and \
                newest.status not in model.FINAL_STATUSES:
            raise model.NovaError(
                'Server %s has a %s in progress (migration %s, %s), not a '
                'migration: watch follows migrations only.' % (
                    server.id, newest.type, newest.id, newest.status))
        if gateway.migrations_project:
            self._check_visible(gateway, server, newest)
        if server.task_state in model.MIGRATING_TASK_STATES:
            # Just accepted: its record is not there yet.
            return step.Follow(server_id=server.id, source=server.host,
                               original_status=None, goal=_goal(args),
                               baseline_id=newest.id if newest else 0,
                               server=server), None
        if newest is None:
            raise model.NovaError('Server %s has no migration in progress '
                                  'and has never been migrated. Start one '
                                  'with --start.' % server.id)
        raise model.NovaError(
            'Server %s has no migration in progress. The newest is migration '
            '%s (%s, %s, %s -> %s, created %s); to report on it: --migration '
            '%s' % (server.id, newest.id, newest.type, newest.status,
                    newest.source, newest.dest, newest.created_at, newest.id))

    @staticmethod
    def _check_visible(gateway: gw.NovaGateway, server: model.Server,
                       newest: ty.Optional[model.Migration]) -> None:
        """Refuse a migration under way that Nova does not show us.

        Nova's ``project_id`` filter (all a project manager may read) is
        the project that started a migration: one an admin started is not
        listed. A record the conductor has yet to write is, within
        seconds: look once more before saying so.
        """
        if server.status != 'VERIFY_RESIZE' and \
                server.task_state not in model.MIGRATING_TASK_STATES:
            return
        if server.task_state is not None:
            time.sleep(INVISIBLE_WAIT)
            records = gateway.migrations(server.id, limit=1)
            if records and (newest is None or records[0].id > newest.id):
                return  # it was written meanwhile: ours to see
        raise model.NovaError(
            'Server %s is %s, but Nova shows you no migration of it under '
            'way: to a project manager it lists only the migrations started '
            'by its project (%s), and this one was started by another '
            'project (an admin?). Follow it with admin credentials%s.' % (
                server.id, server.task_state or server.status,
                gateway.migrations_project,
                ', or end it with openstack server migration confirm (or '
                'revert)' if server.status == 'VERIFY_RESIZE' else ''))

    @staticmethod
    def _follow(server: model.Server, migration: model.Migration,
                args: argparse.Namespace) -> step.Follow:
        return step.Follow(server_id=server.id, source=migration.source,
                           original_status=None, goal=_goal(args),
                           kind=migration.kind, migration_id=migration.id,
                           server=server)

    @staticmethod
    def _again(f: step.Follow, args: argparse.Namespace) -> str:
        """The command that follows this migration again."""
        again = 'openstack server migrate watch %s' % f.server_id
        if f.migration_id is not None:
            again += ' --migration %s' % f.migration_id
        if args.confirm:
            again += ' --confirm'
        elif args.revert:
            again += ' --revert'
        return again

    def _interrupted(self, loop: follower.Follower, f: step.Follow,
                     reporter: progress.StderrProgress,
                     args: argparse.Namespace) -> follower.Outcome:
        reporter.close()
        text = ('Interrupted: the migration goes on in Nova. Follow it '
                'again with: %s' % self._again(f, args))
        reporter.message(text)
        return loop.outcome(model.Result.INTERRUPTED, f, text)


def _block(args: argparse.Namespace) -> ty.Optional[bool]:
    """--block-migration, --shared-migration, or Nova decides (None)."""
    if args.block_migration:
        return True
    if args.shared_migration:
        return False
    return None


def _goal(args: argparse.Namespace) -> model.Goal:
    if args.confirm:
        return model.Goal.CONFIRM
    if args.revert:
        return model.Goal.REVERT
    return model.Goal.MIGRATE


def _interrupt(signum: int, frame: ty.Any) -> None:
    raise KeyboardInterrupt()
