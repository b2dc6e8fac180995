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

"""When a batch polls: every ``--interval``, or when news is due sooner.

A poll sees a migration that ended at most one gap after it ended, and its
slot is refilled (its confirm sent) only then. When this cloud's migrations
take less than ``--interval`` (small servers, a test cloud, a devstack
gate) most of each slot would be the wait for the next poll. So once the
run knows how long its migrations take, the next poll goes out when one
in flight is due to have moved on: its submission (or its confirm or
revert) plus that length; one that is due and has not moved yet is looked
at again half a length later, until it is late by two lengths (then it is
not one of the quick ones). Never later than ``--interval`` after the poll
before, never sooner than a quarter of it. Migrations of minutes leave the
gap at ``--interval``.

How long one takes is Nova's own account: its record's ``created_at`` to
the ``updated_at`` of the status it ends its work in (``finished``: cold,
waiting in ``VERIFY_RESIZE``; ``completed``: live), both stamped by Nova,
so neither the client's clock nor the poll's rhythm enters it. The median
of the last few, once there are two: one migration alone may be an
exception.

Pure: fed records and the client's requests with the time they went (the
Runner's clock), asked when to poll.
"""

import statistics
import typing as ty

from osc_migrate_plus import model

# The statuses a migration ends its work in, by kind.
WORK_DONE = ('finished', 'completed')
# Lengths kept (the newest), and how many before they count.
KEPT = 5
LEAST = 2
# The shortest gap, as a share of --interval (the loop's least pause).
SHORTEST = 0.25
# A server due this many lengths ago and not moved on (or not acted on: a
# verify command, a server in VERIFY_RESIZE that is not ours to confirm): a
# slow one, left to the regular polls.
LATE = 2.0


class Cadence:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lengths: ty.List[float] = []
        # By UUID: IDs grow per cell, two cells' migrations share them.
        self._sampled: ty.Set[ty.Union[str, int]] = set()
        # Per server: when the request Nova is working on went.
        self._asked: ty.Dict[str, float] = {}

    # -- what happened -------------------------------------------------------
    def asked(self, key: str, now: float) -> None:
        """A submission, confirm or revert for ``key`` went at ``now``."""
        self._asked[key] = now

    def ended(self, key: str) -> None:
        """Nothing more is expected of ``key``'s migration.

        Not when its record moves on: the server may show it a moment
        later (Nova saves the record first), and the step acts on both.
        """
        self._asked.pop(key, None)

    def saw(self, records: ty.Iterable[model.Migration]) -> None:
        """Learn from records of the run's own migrations."""
        for record in records:
            key = record.uuid or record.id
            if record.status not in WORK_DONE or key in self._sampled:
                continue
            created = model.nova_time(record.created_at)
            ended = model.nova_time(record.updated_at)
            if created is None or ended is None:
                continue
            self._sampled.add(key)
            seconds = (ended - created).total_seconds()
            if seconds < 0:
                # Two hosts' clocks disagree: says nothing.
                continue
            self._lengths = (self._lengths + [seconds])[-KEPT:]

    # -- what to do ----------------------------------------------------------
    def typical(self) -> ty.Optional[float]:
        """How long a migration takes in Nova lately, if known."""
        if len(self._lengths) < LEAST:
            return None
        return statistics.median(self._lengths)

    def next_poll(self, last: float, now: float) -> float:
        """When to poll next, the one before having gone at ``last``."""
        regular = last + self.interval
        typical = self.typical()
        if typical is None or typical >= self.interval:
            return regular
        again = max(typical / 2, self.interval * SHORTEST)
        wake = regular
        for at in self._asked.values():
            due = at + typical
            if due > now:
                wake = min(wake, due)
            elif now - due <= LATE * typical:
                wake = min(wake, now + again)
        return max(wake, last + self.interval * SHORTEST)
