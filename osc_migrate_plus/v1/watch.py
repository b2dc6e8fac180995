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
import datetime
import re
import signal
import typing as ty

from osc_lib.command import command
from osc_lib import exceptions

from osc_migrate_plus.engine import follower
from osc_migrate_plus.engine import verdict
from osc_migrate_plus import exit_codes
from osc_migrate_plus import gateway as gw
from osc_migrate_plus import progress
from osc_migrate_plus.v1 import common

UsageError = common.UsageError

_UUID = re.compile('[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}')
COLUMNS = ('Server ID', 'Server Name', 'Result', 'Status', 'Source Host',
           'Destination Host', 'Migration ID', 'Migration Type',
           'Migration Status', 'Started At', 'Finished At', 'Duration',
           'Message')


def _parse_time(text: ty.Optional[str]) -> ty.Optional[datetime.datetime]:
    if not text:
        return None
    value = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value


def outcome_row(outcome: follower.Outcome,
                source: ty.Optional[str]) -> ty.Tuple[ty.Any, ...]:
    server, migration = outcome.server, outcome.migration
    started = _parse_time(migration.created_at) if migration else None
    finished = None
    if migration and outcome.result in (verdict.Result.MIGRATED,
                                        verdict.Result.CONFIRMED,
                                        verdict.Result.REVERTED,
                                        verdict.Result.FAILED,
                                        verdict.Result.ABORTED):
        finished = _parse_time(migration.updated_at)
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


class WatchMigration(command.ShowOne):
    """Follow a server's migration to a verdict (optionally start it).

    Success only when Nova's migration record and the server agree: a cold
    migration finished with the server in VERIFY_RESIZE on another host (then
    confirmed or reverted if asked), a live migration completed with the
    server on another host. Exit codes: 0 success, 1 failure, 2 usage error,
    3 timeout, 130 interrupted. Progress goes to stderr; stdout carries only
    the result.
    """

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

    def run(self, parsed_args: argparse.Namespace) -> int:
        return common.run_with_exit_codes(self, parsed_args, super().run,
                                          'watch')

    # -- the work ----------------------------------------------------------
    def take_action(self, parsed_args: argparse.Namespace
                    ) -> ty.Tuple[ty.Tuple[str, ...], ty.Tuple[ty.Any, ...]]:
        # The plugin's client (plugin.make_client): the sdk compute proxy.
        compute = getattr(self.app.client_manager, 'migrate_plus')
        self._gateway = gateway = gw.NovaGateway(compute)
        quiet = common.is_quiet(self.app, parsed_args)
        reporter = progress.StderrProgress(self.app.stderr, quiet=quiet)
        try:
            server = gateway.find_server(parsed_args.server)
            if parsed_args.start:
                target, after_id = self._start(gateway, server, parsed_args)
            else:
                target, after_id = self._attach(gateway, server, parsed_args)
        except gw.MicroversionError:
            raise
        except gw.NovaError as exc:
            raise exceptions.CommandError(str(exc))

        loop = follower.Follower(
            gateway, reporter, interval=parsed_args.interval,
            timeout=parsed_args.timeout,
            abort_on_timeout=parsed_args.abort_on_timeout)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            outcome = loop.follow(target, after_id)
        except KeyboardInterrupt:
            outcome = self._interrupted(loop, target, reporter, parsed_args)
        except gw.NovaError as exc:
            reporter.close()
            raise exceptions.CommandError(str(exc))
        finally:
            signal.signal(signal.SIGTERM, previous)
        reporter.close()
        self._exit_code = exit_codes.for_result(outcome.result)
        return COLUMNS, common.shell_safe(
            parsed_args, outcome_row(outcome, target.source))

    def _start(self, gateway: gw.NovaGateway, server: verdict.Server,
               args: argparse.Namespace
               ) -> ty.Tuple[verdict.Target, int]:
        if args.host:
            gateway.require('2.30' if args.live_migration else '2.56',
                            '--host with %s migration' % (
                                'a live' if args.live_migration else 'a cold'))
            hosts = gateway.compute_hosts()
            if args.host not in hosts:
                raise gw.NovaError('Compute host %r not found; compute hosts: '
                                   '%s' % (args.host, ', '.join(hosts)))
            if args.host == server.host:
                raise gw.NovaError('Server %s is already on host %s.' % (
                    server.id, args.host))
        block: ty.Optional[bool] = None
        if args.block_migration:
            block = True
        elif args.shared_migration:
            block = False
        newest = gateway.newest_migration(server.id)
        gateway.start_migration(server.id, live=args.live_migration,
                                host=args.host, block_migration=block)
        target = verdict.Target(
            server_id=server.id, source=server.host,
            original_status=server.status, goal=_goal(args),
            kind=verdict.LIVE if args.live_migration else verdict.COLD)
        return target, newest.id if newest else 0

    def _attach(self, gateway: gw.NovaGateway, server: verdict.Server,
                args: argparse.Namespace
                ) -> ty.Tuple[verdict.Target, int]:
        records = gateway.migrations(server.id)
        if args.migration is not None:
            wanted = args.migration
            chosen = next((m for m in records if str(m.id) == wanted
                           or m.uuid == wanted), None)
            if chosen is None:
                raise gw.NovaError(
                    'Migration %s does not belong to server %s; its '
                    'migrations: %s' % (wanted, server.id, ', '.join(
                        str(m.id) for m in records) or 'none'))
            return self._target(server, chosen, args), 0
        newest = records[0] if records else None
        if newest is not None and verdict.in_progress(server, newest):
            return self._target(server, newest, args), 0
        if server.task_state in verdict.MIGRATING_TASK_STATES:
            # Just accepted: its record is not there yet.
            target = verdict.Target(server_id=server.id, source=server.host,
                                    original_status=None, goal=_goal(args))
            return target, newest.id if newest else 0
        if newest is None:
            raise gw.NovaError('Server %s has no migration in progress and '
                               'has never been migrated. Start one with '
                               '--start.' % server.id)
        raise gw.NovaError(
            'Server %s has no migration in progress. The newest is migration '
            '%s (%s, %s, %s -> %s, created %s); to report on it: --migration '
            '%s' % (server.id, newest.id, newest.type, newest.status,
                    newest.source, newest.dest, newest.created_at, newest.id))

    @staticmethod
    def _target(server: verdict.Server, migration: verdict.Migration,
                args: argparse.Namespace) -> verdict.Target:
        return verdict.Target(server_id=server.id, source=migration.source,
                              original_status=None, goal=_goal(args),
                              kind=migration.kind,
                              migration_id=migration.id)

    def _interrupted(self, loop: follower.Follower, target: verdict.Target,
                     reporter: progress.StderrProgress,
                     args: argparse.Namespace) -> follower.Outcome:
        reporter.close()
        again = 'openstack server migrate watch %s' % target.server_id
        if target.migration_id is not None:
            again += ' --migration %s' % target.migration_id
        if args.confirm:
            again += ' --confirm'
        elif args.revert:
            again += ' --revert'
        text = ('Interrupted: the migration goes on in Nova. Follow it '
                'again with: %s' % again)
        reporter.message(text)
        return loop.outcome_so_far(verdict.Result.INTERRUPTED, target,
                                   loop.elapsed(), text)


def _goal(args: argparse.Namespace) -> verdict.Goal:
    if args.confirm:
        return verdict.Goal.CONFIRM
    if args.revert:
        return verdict.Goal.REVERT
    return verdict.Goal.MIGRATE


def _interrupt(signum: int, frame: ty.Any) -> None:
    raise KeyboardInterrupt()
