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

"""Is a live migration stalled? Judged from Nova's progress figures.

Pure: it is fed the server migration document Nova shows of a running live
migration (``GET /servers/{id}/migrations/{mid}``, 2.23+) and the time of
each look, and says when the memory (and disk) still to transfer has not
reached a new low for ``stall_after`` seconds.

A new low, not merely a decrease: the memory still to copy rises and falls
as the guest dirties pages, and a migration that only wobbles around the
same figure is not getting anywhere. Memory and disk count separately: a
block migration copying its disk is progressing although its memory waits.
"""

import dataclasses
import enum
import typing as ty

DEFAULT_STALL_AFTER = 120.0
NO_FIGURES = ('no progress figures from Nova: stall detection off for this '
              'migration')


class Policy(str, enum.Enum):
    """What to do with a live migration that stalled (--on-stall)."""

    WAIT = 'wait'
    FORCE_COMPLETE = 'force-complete'
    ABORT = 'abort'


POLICIES = tuple(p.value for p in Policy)


class Figures(ty.NamedTuple):
    memory: int                 # bytes still to transfer
    disk: ty.Optional[int]      # None: no disk copy reported
    percent: ty.Optional[int]   # transferred, of the total; None: unknown


def _number(value: ty.Any) -> ty.Optional[int]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def figures(progress: ty.Mapping[str, ty.Any]) -> ty.Optional[Figures]:
    """The figures of one progress document; None if it has none.

    Nova shows ``null`` (or 0 with a total of 0) until the driver reports
    any: a driver that never does (most but libvirt) has none.
    """
    memory = _number(progress.get('memory_remaining_bytes'))
    memory_total = _number(progress.get('memory_total_bytes'))
    if memory is None or not memory_total:
        return None
    disk = _number(progress.get('disk_remaining_bytes'))
    disk_total = _number(progress.get('disk_total_bytes')) or 0
    if not disk_total:
        disk = None
    total = memory_total + disk_total
    left = memory + (disk or 0)
    # Rounded, but never 100% while anything is left.
    percent = max(0, min(100 if left <= 0 else 99,
                         round(100 * (total - left) / total)))
    return Figures(memory, disk, percent)


@dataclasses.dataclass
class Tracker:
    """What one migration's progress has shown so far."""

    migration_id: ty.Optional[int] = None
    lowest_memory: ty.Optional[int] = None
    lowest_disk: ty.Optional[int] = None
    since: float = 0.0          # when the last new low was seen
    percent: ty.Optional[int] = None
    seen_figures: bool = False
    said_none: bool = False     # "no figures" said once
    said_waiting: bool = False  # "stalled, waiting" said once per stall

    def look(self, progress: ty.Mapping[str, ty.Any],
             now: float) -> ty.Optional[Figures]:
        """Take one look; the figures, None if Nova shows none."""
        found = figures(progress)
        if found is None:
            return None
        if not self.seen_figures:
            self.seen_figures = True
            self.lowest_memory, self.lowest_disk = found.memory, found.disk
            self.since = now
        elif self._lower(found):
            self.since = now
            self.said_waiting = False
        self.percent = found.percent
        return found

    def _lower(self, found: Figures) -> bool:
        lower = False
        if self.lowest_memory is None or found.memory < self.lowest_memory:
            self.lowest_memory, lower = found.memory, True
        if found.disk is not None and (self.lowest_disk is None
                                       or found.disk < self.lowest_disk):
            self.lowest_disk, lower = found.disk, True
        return lower

    def stalled_for(self, now: float) -> float:
        """Seconds without a new low (0 before any figures)."""
        return now - self.since if self.seen_figures else 0.0

    def is_stalled(self, now: float, stall_after: float) -> bool:
        return self.seen_figures and self.stalled_for(now) >= stall_after

    def describe(self, now: float) -> str:
        """"stalled 120 s at 91%": how long, and how far it got."""
        text = 'stalled %d s' % int(self.stalled_for(now))
        if self.percent is not None:
            text += ' at %d%%' % self.percent
        return text
