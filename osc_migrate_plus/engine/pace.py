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

"""``--max-parallel auto``: as many in flight as the cloud sustains.

Pure: fed events with the time they happened (the Runner's clock), asked
for the limit. A migration holds a slot from its submission until its
confirm (or revert) is sent or it ends, as the fixed limit counts it.

How it decides (doc/source/user/pace.rst says it for users):

* Each migration that ends well is a sample: how long it held its slot
  (``seconds``) and how many held slots, on average, while it did
  (``load``). By Little's law ``load / seconds`` is the rate the batch
  completed migrations at, at that load.
* The fastest migration of the last few minutes (``base``) is what one
  takes when Nova is not busy. A sample that took longer at the same load
  spent the difference waiting for Nova: ``load * (1 - base / seconds)``
  migrations were waiting rather than being worked on (the estimate TCP
  Vegas makes of a queue).
* Fewer than ``LOW`` waiting: more in flight would add completions per
  minute, so the limit rises by one (by one per migration done until the
  first decrease, then by one per round of migrations). More than
  ``HIGH`` waiting: each migration's time grew markedly for nothing, so
  the limit falls to what Nova worked on plus a short queue.
* Nova pushing back (a 5xx, a 409 over a task state, Nova unreachable,
  migrations sitting in ``queued``/``pre-migrating``) cuts the limit to
  ``CUT`` of itself, at most once per ``base`` seconds.
* Never below 1, never above the ceiling (at most ``CEILING``, and never
  more than the per-host limits can let through).
"""

import dataclasses
import math
import typing as ty

START = 3
CEILING = 20
# Migrations waiting on Nova (see above): below LOW add, above HIGH remove.
LOW = 1.0
HIGH = 2.0
CUT = 0.7
# Samples kept: those done in the last WINDOW seconds (or 5 ``base``).
WINDOW = 120.0
# How long a migration may sit in a waiting status before it counts as
# Nova queueing it (or ``base``, if longer).
WAIT_GRACE = 10.0
# Two pushbacks closer than this (or ``base``) are one.
PUSHBACK_GAP = 5.0
# Samples averaged for a decision: quantized by the poll interval, one
# alone is noisy.
AVERAGED = 3


@dataclasses.dataclass(frozen=True)
class Sample:
    admitted: float
    done: float
    load: float     # mean slots held while it held one (itself included)
    seconds: float  # how long it held its slot


@dataclasses.dataclass(frozen=True)
class Change:
    at: float
    limit: int
    why: str


class Pace:
    """How many migrations may be in flight now."""

    def __init__(self, start: int = START, ceiling: int = CEILING,
                 quantum: float = 0.0) -> None:
        self.ceiling = max(1, ceiling)
        # A migration's end is seen at a poll: durations are known to
        # within the poll interval, and no less is evidence of waiting.
        self.quantum = quantum
        self.limit = max(1, min(start, self.ceiling))
        self.slow_start = True
        self.changes: ty.List[Change] = [Change(0.0, self.limit, 'start')]
        self._changed_at = -math.inf
        self._cut_at = -math.inf
        self._pushed_at = -math.inf
        # Slot holders: when admitted, and the area (slot-seconds) then.
        self._open: ty.Dict[str, ty.Tuple[float, float]] = {}
        self._area = 0.0
        self._area_at: ty.Optional[float] = None
        self._samples: ty.List[Sample] = []

    # -- events ------------------------------------------------------------
    def admitted(self, key: str, now: float) -> None:
        self._tick(now)
        self._open.setdefault(key, (now, self._area))

    def done(self, key: str, now: float, sample: bool = True) -> None:
        """``key`` gave its slot back; ``sample``: it ended well.

        A failure or a retry says nothing of how fast Nova migrates.
        """
        self._tick(now)
        opened = self._open.pop(key, None)
        if opened is None or not sample:
            return
        admitted, area = opened
        seconds = now - admitted
        if seconds <= 0:
            return
        self._samples.append(Sample(admitted, now,
                                    (self._area - area) / seconds, seconds))
        self._expire(now)
        self._judge(now)

    def track(self, now: float, holding: ty.Iterable[str],
              ended_well: ty.Callable[[str], bool]) -> None:
        """The slot holders now: admits the new, ends those gone."""
        holding = set(holding)
        for key in [k for k in self._open if k not in holding]:
            self.done(key, now, ended_well(key))
        for key in sorted(holding - set(self._open)):
            self.admitted(key, now)
        self._early(now)

    def pushback(self, now: float, why: str) -> None:
        """Nova refused or queued work: cut the limit, once per burst."""
        gap = max(PUSHBACK_GAP, self.base() or 0.0)
        if now - self._pushed_at < gap:
            return
        self._pushed_at = now
        self.slow_start = False
        self._set(now, min(self.limit - 1, int(self.limit * CUT)),
                  'Nova pushed back: %s' % why, cut=True)

    def waiting(self, now: float, keys: ty.Iterable[str]) -> None:
        """These slot holders' migrations wait in Nova (queued and such).

        A few moments there is normal; many held there long is Nova
        queueing what the batch sends.
        """
        grace = max(WAIT_GRACE, self.base() or 0.0)
        held = [k for k in keys if k in self._open
                and now - self._open[k][0] >= grace]
        if len(held) >= max(2, self.limit / 2):
            self.pushback(now, '%d migrations waiting in Nova for %ds or '
                          'more' % (len(held), grace))

    # -- state -------------------------------------------------------------
    def base(self) -> ty.Optional[float]:
        """The fastest a migration held its slot, lately."""
        return min((s.seconds for s in self._samples), default=None)

    @property
    def holding(self) -> int:
        return len(self._open)

    # -- deciding ----------------------------------------------------------
    def _tick(self, now: float) -> None:
        if self._area_at is not None and now > self._area_at:
            self._area += len(self._open) * (now - self._area_at)
        if self._area_at is None or now > self._area_at:
            self._area_at = now

    def _expire(self, now: float) -> None:
        base = self.base() or 0.0
        keep = max(WINDOW, 5 * base)
        self._samples = [s for s in self._samples if now - s.done <= keep]

    def _waiting(self, load: float, seconds: float, base: float) -> float:
        return max(0.0, load * (1.0 - (base + self.quantum) / seconds))

    def _judge(self, now: float) -> None:
        base = self.base()
        if base is None:
            return
        # Until the first decrease every sample since a cut counts (the
        # limit grows by one per migration done); after it only those
        # admitted since the last change, which ran under it.
        since = self._cut_at if self.slow_start else self._changed_at
        recent = [s for s in self._samples if s.admitted >= since]
        if not recent:
            return
        last = recent[-AVERAGED:]
        waiting = sum(self._waiting(s.load, s.seconds, base)
                      for s in last) / len(last)
        if waiting > HIGH:
            self._decrease(now, last, base, waiting)
            return
        load = max(s.load for s in last)
        in_use = load >= (self.limit * 2 / 3 if self.slow_start
                          else self.limit - 1)
        if waiting < LOW and in_use:
            self._set(now, self.limit + 1, 'migrations take %.0fs at %.1f '
                      'in flight (fastest %.0fs): room for more' % (
                          last[-1].seconds, last[-1].load, base))

    def _early(self, now: float) -> None:
        """Migrations still running already took longer than is healthy.

        A running migration has taken at least its age: when two or more
        already show more than ``HIGH`` waiting, decrease without waiting
        for them to end (the estimate of what Nova works on only falls as
        they age, so this never cuts below it).
        """
        base = self.base()
        if base is None:
            return
        self._tick(now)
        late = []
        for admitted, area in self._open.values():
            age = now - admitted
            if age <= base:
                continue
            load = (self._area - area) / age
            if self._waiting(load, age, base) > HIGH:
                late.append(Sample(admitted, now, load, age))
        if len(late) >= 2:
            self._decrease(now, late, base, sum(
                self._waiting(s.load, s.seconds, base) for s in late
            ) / len(late))

    def _decrease(self, now: float, samples: ty.Sequence[Sample],
                  base: float, waiting: float) -> None:
        # What Nova worked on at once, plus a short queue.
        working = sum(s.load * base / s.seconds for s in samples) / len(
            samples)
        target = int(round(working + (LOW + HIGH) / 2))
        self.slow_start = False
        if target < self.limit:
            self._set(now, target, 'migrations take up to %.0fs (fastest '
                      '%.0fs): about %.1f waiting on Nova' % (
                          max(s.seconds for s in samples), base, waiting),
                      cut=True)

    def _set(self, now: float, limit: int, why: str,
             cut: bool = False) -> None:
        limit = max(1, min(limit, self.ceiling))
        if cut:
            self._cut_at = now
        if limit == self.limit:
            return
        self.limit = limit
        self._changed_at = now
        self.changes.append(Change(now, limit, why))
