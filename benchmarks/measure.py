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

"""Run client processes and measure what they cost: wall, CPU, memory.

CPU is read with ``os.wait4``: the rusage of the process waited for covers
it and every descendant it waited for, so a shell loop's figure includes
each ``openstack`` it ran.
"""

import dataclasses
import os
import subprocess
import tempfile
import threading
import time
import typing as ty


@dataclasses.dataclass
class Cost:
    wall: float = 0.0
    cpu: float = 0.0          # user + sys seconds, children included
    peak_rss_mb: float = 0.0  # the largest single process
    processes: int = 0
    failures: ty.List[str] = dataclasses.field(default_factory=list)

    def add(self, other: 'Cost') -> None:
        self.wall += other.wall
        self.cpu += other.cpu
        self.peak_rss_mb = max(self.peak_rss_mb, other.peak_rss_mb)
        self.processes += other.processes
        self.failures.extend(other.failures)


def run(cmd: ty.Sequence[str], env: ty.Dict[str, str],
        timeout: float = 1800, expect_rc: int = 0) -> ty.Tuple[Cost, str]:
    """Run one command to its end; return its cost and its stdout.

    stderr (progress) is kept only for a failure message; a wrong exit code
    is recorded as a failure of the measured way, not raised, so the run
    goes on and the report shows it.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(list(cmd), env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            # Reap it ourselves: Popen.wait() would drop the rusage.
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors='replace')
        stderr = err.read().decode(errors='replace')
    cost = Cost(wall=wall, cpu=usage.ru_utime + usage.ru_stime,
                peak_rss_mb=usage.ru_maxrss / 1024, processes=1)
    if proc.returncode != expect_rc:
        cost.failures.append('%s exited %s: %s' % (
            ' '.join(cmd[:6]), proc.returncode, stderr.strip()[-300:]))
    return cost, stdout
