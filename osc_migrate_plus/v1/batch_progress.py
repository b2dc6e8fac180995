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

"""Batch progress on stderr.

On a terminal, a live status line drawn by rich (done / failed / in flight /
queued, elapsed, ETA) with events printed above it; otherwise one
timestamped line per event. Always a summary line at the end.
"""

import collections
import datetime
import typing as ty

from osc_migrate_plus.engine import batch
from osc_migrate_plus.engine import board as boards
from osc_migrate_plus.engine import pace as pacing
from osc_migrate_plus import model
from osc_migrate_plus.v1 import progress

R = model.Result
SUCCESS_RESULTS = (R.MIGRATED, R.CONFIRMED)
# Neither moved nor failed.
ASIDE = (R.SKIPPED, R.DELETED)


def clock(seconds: float) -> str:
    """1h02m03s, 2m03s or 3s (whole seconds, cut)."""
    seconds = int(seconds)
    if seconds >= 3600:
        return '%dh%02dm%02ds' % (seconds // 3600, seconds % 3600 // 60,
                                  seconds % 60)
    if seconds >= 60:
        return '%dm%02ds' % (seconds // 60, seconds % 60)
    return '%ds' % seconds


def counts(entries: ty.List[batch.Entry]) -> ty.Dict[str, int]:
    return tallied(collections.Counter((e.state, e.result) for e in entries))


def tallied(seen: ty.Mapping[ty.Tuple[batch.State, ty.Optional[R]], int]
            ) -> ty.Dict[str, int]:
    """What the status line counts, from entries by state and result.

    The run's board keeps that tally: the line is drawn every poll round.
    """
    c = dict.fromkeys(('done', 'failed', 'skipped', 'inflight', 'queued'), 0)
    for (state, result), n in seen.items():
        if result in SUCCESS_RESULTS:
            c['done'] += n
        elif result in ASIDE:
            c['skipped'] += n
        elif state == batch.State.DONE:
            c['failed'] += n
        if state == batch.State.INFLIGHT:
            c['inflight'] += n
        elif state == batch.State.QUEUED:
            c['queued'] += n
    return c


def in_flight(count: int, pace: ty.Optional[pacing.Pace]) -> str:
    """``4``, or with --max-parallel auto ``4/auto:5`` (its limit now)."""
    if pace is None:
        return str(count)
    return '%d/auto:%d' % (count, pace.limit)


def summary(entries: ty.List[batch.Entry], elapsed: float) -> str:
    c = counts(entries)
    other: ty.Dict[str, int] = {}
    for e in entries:
        if e.state == batch.State.DONE and e.result not in SUCCESS_RESULTS:
            key = e.result.value if e.result else '?'
            other[key] = other.get(key, 0) + 1
    parts = ['%d of %d servers migrated' % (c['done'], len(entries))]
    parts += ['%d %s' % (n, r) for r, n in sorted(other.items())]
    return '%s in %s' % (', '.join(parts), clock(elapsed))


class BatchProgress:
    def __init__(self, stream: ty.TextIO, quiet: bool = False,
                 tty: ty.Optional[bool] = None) -> None:
        self.stream = stream
        self.quiet = quiet
        if tty is None:
            tty = progress.is_tty(stream)
        self.tty = tty and not quiet
        self._live: ty.Any = None
        self._console: ty.Any = None
        self._started_at: ty.Optional[float] = None
        self._hinted: ty.Set[str] = set()
        # --max-parallel auto's controller, while a batch runs with it.
        self.pace: ty.Optional[pacing.Pace] = None

    def _line(self, text: str) -> None:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%dT%H:%M:%SZ')
        if self._console is not None:
            self._console.print('%s %s' % (stamp, text), markup=False,
                                highlight=False)
        else:
            self.stream.write('%s %s\n' % (stamp, text))
            self.stream.flush()

    def info(self, text: str) -> None:
        """Plain information (journal path, disabled services)."""
        if not self.quiet:
            self._line(progress.safe(text))

    def error(self, text: str) -> None:
        self._line(progress.safe(text))

    def event(self, entry: batch.Entry, text: str) -> None:
        failing = entry.result not in (None,) + SUCCESS_RESULTS
        if self.quiet and not (entry.state == batch.State.DONE and failing):
            return
        server = entry.server
        self._line('%s (%s): %s' % (progress.safe(server.name),
                                    entry.server_id, progress.safe(text)))
        hint = entry.hint
        if entry.state == batch.State.DONE and hint is not None and \
                hint.key not in self._hinted:
            # Once per cause and run, not once per server (even quiet).
            self._hinted.add(hint.key)
            self._line(progress.hint_line(hint))

    def status(self, board: boards.Board, elapsed: float) -> None:
        if not self.tty:
            return
        if self._live is None:
            from rich import console
            from rich import live
            self._console = console.Console(file=self.stream,
                                            stderr=True)
            self._live = live.Live(console=self._console,
                                   auto_refresh=False, transient=True)
            self._live.start()
        c = tallied(board.tally)
        finished = c['done'] + c['failed']
        todo = c['inflight'] + c['queued']
        eta = ''
        if finished and todo:
            eta = ', ETA %s' % clock(elapsed / finished * todo)
        text = ('done %d, failed %d, in flight %s, queued %d, skipped %d; '
                '%s elapsed%s' % (c['done'], c['failed'], in_flight(
                    c['inflight'], self.pace), c['queued'], c['skipped'],
                    clock(elapsed), eta))
        from rich import text as rich_text
        self._live.update(rich_text.Text(text), refresh=True)

    def close(self, entries: ty.List[batch.Entry], elapsed: float) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._console = None
        if not self.quiet:
            self._line(summary(entries, elapsed))
