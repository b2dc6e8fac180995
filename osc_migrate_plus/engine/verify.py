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

"""The operator's verify command: run it, bound it, read its verdict.

Its output goes to an unnamed temporary file, not a pipe: a command that
prints more than a pipe holds would otherwise block until killed. It runs in
a session of its own so that it is killed whole (the shell and whatever it
started), at its deadline or when its server's follow ends first.
"""

import os
import signal
import subprocess
import tempfile
import typing as ty

TIMEOUT = 300.0
TAIL_BYTES = 4096


class Outcome(ty.NamedTuple):
    passed: bool
    exit_code: ty.Optional[int]  # None: killed at the deadline
    tail: str                    # the last lines of its output
    message: str                 # why it failed ('' if it passed)


class Verification:
    """One run of the verify command for one server."""

    # How its messages name it (the host command reuses this class).
    WHAT = 'verify command'

    def __init__(self, command: str, env: ty.Dict[str, str],
                 started: float, timeout: float = TIMEOUT) -> None:
        self.deadline = started + timeout
        self.timeout = timeout
        self._output = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            ['/bin/sh', '-c', command], env=dict(os.environ, **env),
            stdin=subprocess.DEVNULL, stdout=self._output,
            stderr=subprocess.STDOUT, start_new_session=True)
        self.outcome: ty.Optional[Outcome] = None

    def poll(self, now: float) -> ty.Optional[Outcome]:
        """Its outcome once it has ended (or was killed at the deadline)."""
        if self.outcome is not None:
            return self.outcome
        code = self.process.poll()
        if code is None:
            if now < self.deadline:
                return None
            self.kill()
        tail = self._tail()
        if code is None:
            message = '%s timed out after %ds' % (self.WHAT, self.timeout)
        elif code != 0:
            message = '%s exited %d: %s' % (self.WHAT, code, tail)
        else:
            message = ''
        self.outcome = Outcome(code == 0, code, tail, message)
        return self.outcome

    def kill(self) -> None:
        """Kill it whole.

        Its process group holds what it started, which may outlive the
        shell itself.
        """
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # nothing of it is left
        self.process.wait()

    def _tail(self) -> str:
        size = self._output.seek(0, os.SEEK_END)
        self._output.seek(max(0, size - TAIL_BYTES))
        text = self._output.read().decode(errors='replace')
        self._output.close()
        return ' '.join(text.strip().splitlines()[-3:])[-300:]


def environment(server_id: str, name: ty.Optional[str],
                project_id: ty.Optional[str], source: ty.Optional[str],
                destination: ty.Optional[str],
                mode: ty.Optional[str]) -> ty.Dict[str, str]:
    """Facts for the command.

    Only through its environment, never its command line: names are
    tenant data.
    """
    return {
        'OSC_MIGRATE_SERVER_ID': server_id,
        'OSC_MIGRATE_SERVER_NAME': name or '',
        'OSC_MIGRATE_PROJECT_ID': project_id or '',
        'OSC_MIGRATE_SOURCE_HOST': source or '',
        'OSC_MIGRATE_DEST_HOST': destination or '',
        'OSC_MIGRATE_MODE': mode or '',
    }
