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

"""A batch's entries grouped by state, kept current as they change.

Each turn of the run loop wants what waits, what is in flight, whether all
is done and, for the status line, how many of each. Passes over every
entry for those made a turn's CPU grow with the batch (2,000 servers, a
few thousand turns). Entries tell their board when their state or result
changes (``moved``); the board keeps each group in plan order.
"""

import collections
import typing as ty


class Tracked(ty.Protocol):
    """What the board needs of an entry (``batch.Entry``)."""

    state: ty.Any
    result: ty.Any
    order: int
    source: ty.Optional[str]


class Board:
    def __init__(self, entries: ty.Iterable[ty.Any],
                 states: ty.Iterable[ty.Any], waiting: ty.Any) -> None:
        """``waiting``: the state whose entries are counted by source."""
        self._groups: ty.Dict[ty.Any, ty.Dict[int, ty.Any]] = {
            s: {} for s in states}
        # Groups an entry joined out of plan order (a retry, sent back to
        # wait): sorted again when next read, not on every move.
        self._unsorted: ty.Set[ty.Any] = set()
        self._waiting = waiting
        # The source each waiting entry had when it began to wait (an
        # adopted migration's source may be corrected before it leaves).
        self._waits_on: ty.Dict[int, ty.Optional[str]] = {}
        self.sources_waiting: ty.Counter[ty.Optional[str]] = \
            collections.Counter()
        self.tally: ty.Counter[ty.Tuple[ty.Any, ty.Any]] = \
            collections.Counter()
        for order, entry in enumerate(entries):
            entry.order = order
            self._join(entry)
            entry.board = self

    def group(self, state: ty.Any) -> ty.List[ty.Any]:
        """The entries in ``state`` now, in plan order (a copy)."""
        members = self._groups[state]
        if state in self._unsorted:
            self._unsorted.discard(state)
            ordered = sorted(members.items())
            members.clear()
            members.update(ordered)
        return list(members.values())

    def count(self, state: ty.Any) -> int:
        return len(self._groups[state])

    def moved(self, entry: Tracked, state: ty.Any, result: ty.Any) -> None:
        """``entry`` was in ``state`` with ``result``; it changed."""
        self.tally[(state, result)] -= 1
        if not self.tally[(state, result)]:
            del self.tally[(state, result)]
        if state != entry.state:
            del self._groups[state][entry.order]
            if state == self._waiting:
                self._leave_waiting(entry)
        self._join(entry, state)

    def _join(self, entry: Tracked, was: ty.Any = None) -> None:
        self.tally[(entry.state, entry.result)] += 1
        if was == entry.state:
            return
        members = self._groups[entry.state]
        if members and entry.order < next(reversed(members)):
            self._unsorted.add(entry.state)
        members[entry.order] = entry
        if entry.state == self._waiting:
            self._waits_on[entry.order] = entry.source
            self.sources_waiting[entry.source] += 1

    def _leave_waiting(self, entry: Tracked) -> None:
        source = self._waits_on.pop(entry.order)
        self.sources_waiting[source] -= 1
        if not self.sources_waiting[source]:
            del self.sources_waiting[source]
