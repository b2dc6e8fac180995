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

"""``openstack server migrate report``: what a batch did, from its journal.

Reads journals only: no cloud, no credentials (``auth_required`` False, so
OSC neither asks for nor loads any), no request to Nova.
"""

import argparse
import datetime
import os
import typing as ty

from osc_lib.command import command

from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import report
from osc_migrate_plus.v1 import batch
from osc_migrate_plus.v1 import common
from osc_migrate_plus.v1 import exit_codes
from osc_migrate_plus.v1 import report_html

UsageError = common.UsageError

LIST_COLUMNS = ('Journal', 'Started', 'Finished', 'Selection', 'Servers',
                'Done', 'Failed', 'In Flight', 'State')
# A journal --list cannot read.
DAMAGED = 'damaged'


def _when(value: ty.Optional[datetime.datetime]) -> ty.Optional[str]:
    if value is None:
        return None
    return value.astimezone(datetime.timezone.utc).strftime(
        '%Y-%m-%dT%H:%M:%SZ')


def exit_code(rebuilt: report.Report) -> int:
    """The exit code the batch had (or, interrupted or running, would).

    As ``batch`` decides it at the end of its last run: from the results;
    1 if a host check failed the run (an interrupted run stays 130), or if
    an error of Nova's ended it.
    """
    code = batch.exit_code_for([s.result for s in rebuilt.servers],
                               rebuilt.completed)
    last = rebuilt.runs[-1] if rebuilt.runs else None
    if last is None or rebuilt.state == report.RUNNING:
        return code
    if last.error:
        return exit_codes.FAILURE
    if code != exit_codes.INTERRUPTED and last.host_check_failed:
        return exit_codes.FAILURE
    return code


class ReportMigrations(common.VerdictCommand, command.Lister):
    """Report what a batch did, from its journal alone.

    With a journal: the same columns as batch's report, rebuilt from the
    journal (no cloud needed), exiting with the code that batch had (0, 1,
    3, or 130 for one interrupted or still running). --list: the journals
    under $XDG_STATE_HOME/osc-migrate-plus/. --html: also a self-contained
    page with a timeline of every server's phases. A damaged journal is a
    usage error (exit 2) with the message --resume gives.
    """

    name = 'report'
    # Journals only: OSC must not require (or load) credentials.
    auth_required = False

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument('journal', metavar='<journal>', nargs='?',
                            help='Journal of a batch (its --state-file, or '
                                 'the path it printed at the start)')
        parser.add_argument('--list', action='store_true',
                            help='List the journals under the default state '
                                 'directory ($XDG_STATE_HOME/'
                                 'osc-migrate-plus/)')
        parser.add_argument('--html', metavar='<file>',
                            help='Also write a self-contained HTML page '
                                 '(timeline, summary) to this file')
        return parser

    @staticmethod
    def validate(args: argparse.Namespace) -> None:
        if args.list and args.journal:
            raise UsageError('--list lists every journal; drop <journal> '
                             'or --list')
        if args.list and args.html:
            raise UsageError('--html needs a <journal>, not --list')
        if not (args.list or args.journal):
            raise UsageError('name a <journal>, or use --list to see them')

    def produce(self, parsed_args: argparse.Namespace) -> common.Report:
        if parsed_args.list:
            return self._list()
        try:
            rebuilt = report.build(parsed_args.journal)
        except (jrn.JournalError, OSError) as exc:
            raise UsageError(_reason(exc, parsed_args.journal))
        code = exit_code(rebuilt)
        if parsed_args.html:
            page = report_html.render(rebuilt, code, batch.COLUMNS)
            try:
                # 0600 as the journal: the page names every project's
                # servers and Nova's fault messages.
                fd = os.open(parsed_args.html,
                             os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.fchmod(fd, 0o600)  # an existing file keeps its mode
                with os.fdopen(fd, 'w', encoding='utf-8') as f:
                    f.write(page)
            except OSError as exc:
                raise UsageError('--html: cannot write %s: %s'
                                 % (parsed_args.html, exc.strerror))
        self._say(parsed_args, rebuilt, code)
        return common.Report(batch.COLUMNS,
                             [s.row() for s in rebuilt.servers], code)

    def _say(self, args: argparse.Namespace, rebuilt: report.Report,
             code: int) -> None:
        options = getattr(self.app, 'options', None)
        if getattr(options, 'verbose_level', 1) == 0:  # openstack -q
            return
        c = rebuilt.counts()
        parts = ['%d of %d servers migrated' % (c['done'], c['servers'])]
        success = [r.value for r in report.SUCCESS]
        others = {k: v for k, v in rebuilt.results().items()
                  if k not in success}
        parts += ['%d %s' % (n, k or 'without a result yet')
                  for k, n in sorted(others.items())]
        if rebuilt.state == report.RUNNING:
            state = 'a batch is still running it'
        else:
            state = '%s: the batch exited %d' % (rebuilt.state, code)
        self.app.stderr.write('%s (%s)\n' % (', '.join(parts), state))
        if args.html:
            self.app.stderr.write('wrote %s\n' % args.html)

    def _list(self) -> common.Report:
        rows: ty.List[tuple] = []
        for item in report.list_journals():
            r = item.report
            if r is None:
                self.app.stderr.write('%s\n' % item.error)
                rows.append((item.path, None, None, None, None, None, None,
                             None, DAMAGED))
                continue
            c = r.counts()
            rows.append((r.path, _when(r.started), _when(r.finished),
                         r.selection(), c['servers'], c['done'],
                         c['failed'], c['inflight'], r.state))
        return common.Report(LIST_COLUMNS, rows, exit_codes.SUCCESS)


def _reason(exc: Exception, path: str) -> str:
    if isinstance(exc, jrn.JournalError):
        return str(exc)
    strerror = getattr(exc, 'strerror', None) or str(exc)
    return 'cannot read journal %s: %s' % (os.path.abspath(path), strerror)
