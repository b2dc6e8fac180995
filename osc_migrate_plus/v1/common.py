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

"""What the two commands share: option types, follow options, usage errors."""

import abc
import argparse
import logging
import math
import typing as ty

from cliff import display

from osc_migrate_plus.engine import stall
from osc_migrate_plus import model
from osc_migrate_plus.v1 import exit_codes


class UsageError(Exception):
    """Options that contradict each other: exit 2, nothing sent to Nova."""


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError('must be greater than 0, got %s'
                                         % text)
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError('must be 0 (no limit) or more, got '
                                         '%s' % text)
    return value


def add_follow_options(parser: argparse.ArgumentParser,
                       interval_help: str = 'Seconds between two polls of '
                       'Nova (default: 2).') -> None:
    """--timeout, --interval, --quiet: shared with batch."""
    parser.add_argument(
        '--timeout', metavar='<seconds>', type=non_negative_int,
        default=3600,
        help='Give up following after this many seconds and exit 3 '
             '(default: 3600; 0: no limit). The migration itself goes on '
             'in Nova.')
    parser.add_argument(
        '--interval', metavar='<seconds>', type=positive_float, default=2.0,
        help=interval_help)
    parser.add_argument(
        '--quiet', action='store_true',
        help='No progress on stderr; only the result on stdout.')


def add_stall_options(parser: argparse.ArgumentParser,
                      batch: bool = False) -> None:
    """--on-stall, --stall-after: shared with batch.

    Both default to None so that a resumed batch keeps its journal's.
    """
    parser.add_argument(
        '--on-stall', metavar='{%s}' % ','.join(stall.POLICIES),
        choices=stall.POLICIES, default=None,
        help='What to do with a live migration whose memory (and disk) '
             'still to transfer has not decreased for --stall-after '
             'seconds: wait (default), force-complete (compute API 2.22: '
             'pause the guest to finish the copy) or abort (2.24: the '
             'server stays on its source). Sent once; read from Nova\'s '
             'progress figures, so a migration that reports none is never '
             'stalled.%s' % (' Live migrations only: with --mode cold it '
                             'changes nothing.' if batch else
                             ' Live migrations only.'))
    parser.add_argument(
        '--stall-after', metavar='<seconds>', default=None,
        help='Seconds without progress that make a live migration stalled '
             '(default: %d)' % stall.DEFAULT_STALL_AFTER)


def stall_options(args: argparse.Namespace
                  ) -> ty.Tuple[ty.Optional[str], ty.Optional[float]]:
    """--on-stall and --stall-after as given (None: not given).

    Raises UsageError for a --stall-after that is not a positive number.
    """
    text = getattr(args, 'stall_after', None)
    after = None
    if text is not None:
        try:
            after = float(text)
        except ValueError:
            after = None
        if after is None or not math.isfinite(after) or after <= 0:
            raise UsageError('--stall-after must be a positive number of '
                             'seconds, not %r' % text)
    return getattr(args, 'on_stall', None), after


def is_quiet(app: ty.Any, args: argparse.Namespace) -> bool:
    # cliff parses its global options with parse_known_args over the whole
    # command line, so `--quiet` after the subcommand lands in OSC's global
    # -q/--quiet (verbose_level 0) and never reaches our parser.
    options = getattr(app, 'options', None)
    return bool(args.quiet or getattr(options, 'verbose_level', 1) == 0)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError('must be 1 or more, got %s' % text)
    return value


def shell_safe(parsed_args: argparse.Namespace,
               row: ty.Sequence[ty.Any]) -> ty.Tuple[ty.Any, ...]:
    """Make ``-f shell`` output safe to ``eval``.

    cliff's shell formatter writes ``name="value"`` escaping only double
    quotes, so a server named ``$(touch pwned)`` would run when a script
    evals the output. Server names are tenant data: for that formatter only,
    escape what a double-quoted shell string expands.
    """
    if getattr(parsed_args, 'formatter', None) != 'shell':
        return tuple(row)
    return tuple(
        v.replace('\\', '\\\\').replace('$', '\\$').replace('`', '\\`')
        if isinstance(v, str) else v for v in row)


class Report(ty.NamedTuple):
    columns: ty.Tuple[str, ...]
    data: ty.Any   # a row (watch) or rows (batch)
    exit_code: int


class VerdictCommand(display.DisplayCommandBase, metaclass=abc.ABCMeta):
    """A display command whose ``run()`` returns the documented exit code.

    cliff's display commands always return 0; overriding ``run()`` is
    cliff's own way to return something else. ``produce`` does the work
    and says the exit code with the report. Usage errors exit 2 before
    anything is sent; a microversion too low exits 2 when the user chose
    it (--os-compute-api-version), 1 when the cloud is too old.
    """

    name = ''
    log: logging.Logger  # set on each command by osc-lib's metaclass

    @staticmethod
    def validate(args: argparse.Namespace) -> None:
        """Raise UsageError for options that contradict each other."""

    @abc.abstractmethod
    def produce(self, args: argparse.Namespace) -> Report:
        """Do the work: the report and the exit code it earns."""

    def take_action(self, parsed_args: argparse.Namespace) -> ty.Any:
        columns, data, _ = self.produce(parsed_args)
        return columns, data

    def run(self, parsed_args: argparse.Namespace) -> int:
        self.log.debug('run(%s)', parsed_args)  # as osc-lib's commands do
        error = 'openstack server migrate %s: error: %%s\n' % self.name
        try:
            self.validate(parsed_args)
            parsed_args = self._run_before_hooks(parsed_args)
            formatter = self._formatter_plugins[parsed_args.formatter].obj
            assert formatter is not None  # noqa: S101 (cliff does too)
            self.formatter = formatter
            report = self.produce(parsed_args)
            columns, data = self._run_after_hooks(
                parsed_args, (report.columns, report.data))
            self.produce_output(parsed_args, columns, data)
        except UsageError as exc:
            self.app.stderr.write(error % exc)
            return exit_codes.USAGE
        except model.MicroversionError as exc:
            self.app.stderr.write('%s\n' % exc)
            return exit_codes.USAGE if exc.explicit else exit_codes.FAILURE
        return report.exit_code
