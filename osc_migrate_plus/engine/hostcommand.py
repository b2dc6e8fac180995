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

"""The operator's host command of a rolling run (``--host-command``).

Run as the verify command is (``verify.Verification``): ``/bin/sh -c`` in a
session of its own, killed whole at its deadline, its output's tail kept.
The host's name reaches it only through its environment, never its command
line.
"""

import typing as ty

from osc_migrate_plus.engine import verify

# No deadline (--timeout 0): a year is as good as none.
NO_LIMIT = 365 * 86400.0


class HostCommand(verify.Verification):
    """One run of the host command for one host."""

    WHAT = 'host command'

    def __init__(self, command: str, env: ty.Dict[str, str],
                 started: float, timeout: float) -> None:
        super().__init__(command, env, started, timeout or NO_LIMIT)


def environment(host: str, index: int, total: int,
                resumed: bool = False) -> ty.Dict[str, str]:
    """Facts for the command: the host, its place in the run (from 1).

    ``OSC_MIGRATE_RESUMED=1`` when an earlier run started the command for
    this host and never saw it finish (killed, or it failed): the command
    may find its work half done.
    """
    env = {'OSC_MIGRATE_HOST': host,
           'OSC_MIGRATE_HOST_INDEX': str(index),
           'OSC_MIGRATE_HOSTS_TOTAL': str(total)}
    if resumed:
        env['OSC_MIGRATE_RESUMED'] = '1'
    return env
