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

"""Count the requests a client sent, as the cloud received them.

The minicloud logs one line per request it served, "METHOD /path[?query]"
plus the action name of a server action (see ``RequestCounter`` in
``tests/minicloud/cloud.py``). These functions sort those lines into what a
reader of the figures cares about.
"""

import collections
import typing as ty

# What a line is, by what it does for the client.
MIGRATE = 'migrate'        # POST action migrate / os-migrateLive
CONFIRM = 'confirm'        # POST action confirmResize / revertResize
POLL = 'poll'              # a bulk changes-since read
READ = 'read'              # any other GET
WRITE = 'write'            # any other PUT/POST/DELETE
START_ACTIONS = ('migrate', 'os-migrateLive')
CONFIRM_ACTIONS = ('confirmResize', 'revertResize')
# The harness's auxiliary app answers identity and image under these paths;
# everything else in the log reached nova-api.
NOT_NOVA = ('/identity', '/image')


def kind(line: str) -> str:
    method, _, rest = line.partition(' ')
    path, _, action = rest.partition(' ')
    if method == 'POST' and path.endswith('/action'):
        if action in START_ACTIONS:
            return MIGRATE
        if action in CONFIRM_ACTIONS:
            return CONFIRM
        return WRITE
    if method == 'GET':
        return POLL if 'changes-since=' in path else READ
    return WRITE


def nova_api(line: str) -> bool:
    """Whether the request reached nova-api (not identity or image)."""
    path = line.partition(' ')[2]
    return not path.startswith(NOT_NOVA)


def tally(lines: ty.Iterable[str]) -> ty.Dict[str, int]:
    """Requests by kind, their total, and the total on nova-api alone."""
    lines = list(lines)
    counts = collections.Counter(kind(line) for line in lines)
    result = {k: counts.get(k, 0)
              for k in (MIGRATE, CONFIRM, POLL, READ, WRITE)}
    result['total'] = sum(counts.values())
    result['nova_api'] = sum(1 for line in lines if nova_api(line))
    return result


def poll_rounds(lines: ty.Iterable[str]) -> int:
    """How many bulk polls a batch made: one migration-records read each."""
    return sum(1 for line in lines
               if kind(line) == POLL and '/os-migrations' in line)


def first_index(lines: ty.Sequence[str], wanted: str) -> int:
    """Index of the first line of that kind (len(lines) if none)."""
    return next((i for i, line in enumerate(lines) if kind(line) == wanted),
                len(lines))
