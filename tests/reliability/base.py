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

"""Reliability scenarios: attack a batch, then check the same invariants.

After every scenario, whatever was done to it:

* every selected server ends in the result the report gives it (Nova's
  migration record and the server agree with the row);
* no server has more than one migration record from the batch;
* no server is left in VERIFY_RESIZE when ``--confirm`` was asked;
* the journal replays, and its verdicts are the report's, as are those
  ``openstack server migrate report`` rebuilds from it;
* the exit code is the one the documented table gives for those results;
* stdout is only the result (``-f json`` parses).

Each check writes one line to ``$RELIABILITY_LOG`` (if set): the figures of
the docs page are sums of those lines.
"""

import dataclasses
import json
import os
import subprocess
import time
import typing as ty

from testtools import content

from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import report
from tests.functional import test_batch
from tests.minicloud import faultproxy

OK_RESULTS = ('migrated', 'confirmed', 'timeout')


@dataclasses.dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    rows: ty.Dict[str, dict]


def expected_rc(results: ty.Iterable[str]) -> int:
    """The exit code table of doc/source/user/batch.rst."""
    results = set(results)
    if 'interrupted' in results:
        return 130
    if results - set(OK_RESULTS):
        return 1
    if 'timeout' in results:
        return 3
    return 0


class ReliabilityTestCase(test_batch.BatchTestCase):

    def setUp(self):
        super().setUp()
        self.proxy: ty.Optional[faultproxy.FaultProxy] = None
        self.env = self.cloud.cli_env()

    def use_proxy(self, seed: int = 0) -> faultproxy.FaultProxy:
        """From now on the client reaches nova-api through a fault proxy."""
        self.proxy = faultproxy.FaultProxy(self.cloud.info['compute_url'],
                                           seed=seed)
        self.addCleanup(self.proxy.stop)
        self.env = self.cloud.cli_env(self.proxy.url)
        return self.proxy

    # -- the client ----------------------------------------------------
    def command(self, *args: str) -> ty.List[str]:
        return [*self.cloud.cli(), *test_batch.BATCH, *args, '-f', 'json']

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.command(*args), env=self.env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)

    def finish(self, proc: subprocess.Popen, timeout: float = 600) -> Run:
        out, err = proc.communicate(timeout=timeout)
        self.addDetail('batch-%d' % proc.pid, content.text_content(
            'rc=%s\nstdout:\n%s\nstderr:\n%s' % (proc.returncode, out, err)))
        try:
            rows = {r['Server ID']: r for r in json.loads(out)} if out \
                else {}
        except ValueError:
            self.fail('stdout is not only the JSON result:\n%s' % out)
        return Run(proc.returncode, out, err, rows)

    def run_batch(self, *args: str, timeout: float = 600) -> Run:
        return self.finish(self.start(*args), timeout)

    # -- Nova's side ---------------------------------------------------
    def nova(self) -> ty.Any:
        return self.cloud.connection().compute

    def newest_records(self, ids: ty.Iterable[str]) -> ty.Dict[str, int]:
        """Each server's newest migration record id (0: none).

        Taken before a scenario: the records it makes have greater ids.
        """
        return {sid: max([r['id'] for r in self._records(sid)], default=0)
                for sid in ids}

    def _records(self, sid: str) -> ty.List[dict]:
        r = self.nova().get('/os-migrations?instance_uuid=%s' % sid,
                            microversion='2.80')
        self.assertEqual(200, r.status_code, r.text)
        return r.json()['migrations']

    def _server(self, sid: str) -> dict:
        r = self.nova().get('/servers/%s' % sid, microversion='2.74')
        self.assertEqual(200, r.status_code, r.text)
        return r.json()['server']

    def settle(self, ids: ty.Iterable[str], timeout: float = 60) -> None:
        """Wait until no server has a task under way (after a kill)."""
        deadline = time.monotonic() + timeout
        pending = list(ids)
        while pending and time.monotonic() < deadline:
            pending = [s for s in pending
                       if self._server(s)['OS-EXT-STS:task_state']]
            time.sleep(0.5)

    # -- the invariants ------------------------------------------------
    def check(self, scenario: str, ids: ty.List[str], run: Run,
              before: ty.Dict[str, int], sources: ty.Dict[str, str],
              journal: ty.Optional[str] = None, confirm: bool = True,
              faults: int = 0) -> ty.Dict[str, str]:
        """Check every invariant; return each server's result.

        Problems are gathered first and logged (a server with one is
        "lost"), then the test fails on them.
        """
        results: ty.Dict[str, str] = {}
        problems: ty.Dict[str, ty.List[str]] = {}
        for sid in ids:
            problems[sid] = self._server_problems(sid, run, before[sid],
                                                  sources[sid], confirm)
            results[sid] = run.rows.get(sid, {}).get('Result', 'no row')
        if journal:
            replay = jrn.replay(journal)
            for sid in ids:
                state = replay.servers.get(sid)
                if state is None or state.result != results[sid]:
                    problems[sid].append('journal says %s' % (
                        state.result if state else 'nothing'))
            # ``report`` rebuilds the same results from the journal alone.
            rebuilt = {s.id: s.result.value if s.result else None
                       for s in report.build(journal).servers}
            for sid in ids:
                if rebuilt.get(sid) != results[sid]:
                    problems[sid].append('report of the journal says %s'
                                         % rebuilt.get(sid))
        lost = [sid for sid, p in problems.items() if p]
        moved = sum(1 for r in results.values()
                    if r in ('confirmed', 'migrated'))
        _log({'scenario': scenario, 'servers': len(ids), 'moved': moved,
              'lost': len(lost), 'faults': faults,
              'injected': dict(self.proxy.injected) if self.proxy else {}})
        self.assertEqual({}, {sid: problems[sid] for sid in lost},
                         '%s: invariants broken' % scenario)
        self.assertEqual(expected_rc(results.values()), run.rc,
                         '%s: exit code for %s\n%s' % (
                             scenario, sorted(results.values()), run.stderr))
        return results

    def _server_problems(self, sid: str, run: Run, before: int, source: str,
                         confirm: bool) -> ty.List[str]:
        if sid not in run.rows:
            return ['no row in the report']
        result = run.rows[sid]['Result']
        server = self._server(sid)
        host = server['OS-EXT-SRV-ATTR:host']
        new = [r for r in self._records(sid) if r['id'] > before]
        status = new[0]['status'] if new else None
        problems = []
        if len(new) > 1:  # never submitted twice
            problems.append('%d migration records' % len(new))
        if confirm and result not in ('timeout', 'interrupted') and \
                server['status'] == 'VERIFY_RESIZE':
            problems.append('left in VERIFY_RESIZE')
        moved = host != source
        agrees = {
            'confirmed': status == 'confirmed' and moved,
            'migrated': status in ('completed', 'finished') and moved,
            'reverted': status == 'reverted' and not moved,
            'failed': status in (None, 'error', 'failed') and not moved,
            'not-started': status is None and not moved,
            'skipped': status is None and not moved,
        }.get(result, True)  # timeout/interrupted: anything, but once
        if not agrees:
            problems.append('report says %s; Nova: %s on %s, record %s' % (
                result, server['status'], host, status))
        return problems


def _log(record: dict) -> None:
    path = os.environ.get('RELIABILITY_LOG')
    if path:
        with open(path, 'a') as f:
            f.write(json.dumps(record) + '\n')
