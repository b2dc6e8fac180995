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

"""The floor: the fastest a client can drive Nova for the benchmark's job.

Not shipped. A client written directly on openstacksdk's compute proxy, with
nothing but the job: keep ``--in-flight`` migrations going (a slot frees as
a confirm is sent, or as a live migration is seen done), read every server
in one bulk request per ``--interval`` (``changes-since``: only what
changed), confirm the moment a server shows VERIFY_RESIZE, concurrently.
No plan, no journal, no checks. The benchmark runs it as a process, like the
ways, for each member of the family (in flight x poll interval)::

    python benchmarks/floor.py --kind cold --in-flight 5 --interval 1 \\
        --source compute1 ID...

with OS_CLIENT_CONFIG_FILE and OS_CLOUD naming the cloud. It prints a JSON
summary and exits 1 if any server did not get there.

Self-contained (stdlib and openstacksdk): it runs as a script.
"""

import argparse
import collections
import concurrent.futures
import datetime
import json
import os
import sys
import threading
import time
import typing as ty
import urllib.parse

COLD = 'cold'
LIVE = 'live'
MICROVERSION = '2.74'
# A row saved just before a poll may commit after it: read a little back.
SINCE_MARGIN = 2.0
RETRIES = 3  # a submission refused for a transient reason (409, 5xx)


class Floor:
    """One member of the family: one job, ``in_flight`` x ``interval``.

    ``compute``: anything with openstacksdk's ``request(url, method,
    json=, microversion=)`` returning a response (no exceptions on 4xx).
    ``pool``: where requests run concurrently (a ThreadPoolExecutor by
    default; a test passes one that runs them at once).
    """

    def __init__(self, compute: ty.Any, ids: ty.Sequence[str], kind: str,
                 in_flight: int, interval: float, source: str,
                 pool: ty.Optional[ty.Any] = None,
                 timeout: float = 900) -> None:
        self.compute = compute
        self.ids = list(ids)
        self.kind = kind
        self.in_flight = in_flight
        self.interval = interval
        self.source = source
        self.timeout = timeout
        self.pool = pool or concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, min(in_flight, 20)))
        self.lock = threading.RLock()
        self.queue = collections.deque(self.ids)
        self.busy = 0           # slots taken
        self.peak = 0
        # sid -> submitted | confirming | confirmed | done | failed
        self.state: ty.Dict[str, str] = {}
        self.docs: ty.Dict[str, dict] = {}
        self.failures: ty.List[str] = []
        self.polls = 0

    # -- the job -----------------------------------------------------------
    def run(self) -> dict:
        started = time.monotonic()
        since = time.time() - SINCE_MARGIN
        self._fill()
        tick = started
        while not self._finished():
            if time.monotonic() - started > self.timeout:
                self.failures.append('timed out: %s' % sorted(
                    s for s in self.ids if not self._over(s)))
                break
            tick += self.interval
            time.sleep(max(0.0, tick - time.monotonic()))
            read_at = time.time()
            for doc in self._changed(since):
                if doc['id'] in self.state:
                    self.docs[doc['id']] = doc
            since = read_at - SINCE_MARGIN
            self.polls += 1
            self._look()
        return {'kind': self.kind, 'in_flight': self.in_flight,
                'interval': self.interval, 'polls': self.polls,
                'peak_in_flight': self.peak,
                'wall': time.monotonic() - started,
                'failures': self.failures}

    def _look(self) -> None:
        """Act on what the last poll showed, for every server in flight."""
        for sid in list(self.state):
            doc = self.docs.get(sid)
            with self.lock:
                state = self.state[sid]
            if doc is None or state in ('done', 'failed'):
                continue
            status = doc.get('status')
            if status == 'ERROR':
                self._fail(sid, 'went to ERROR: %s' % doc.get('fault'))
            elif self.kind == COLD:
                if status == 'VERIFY_RESIZE' and state == 'submitted':
                    with self.lock:
                        self.state[sid] = 'confirming'
                    self.pool.submit(self._confirm, sid)
                elif state == 'confirmed' and self._settled(doc):
                    with self.lock:
                        self.state[sid] = 'done'
            elif state == 'submitted' and self._settled(doc):
                with self.lock:
                    self.state[sid] = 'done'
                self._release()

    def _settled(self, doc: dict) -> bool:
        return (doc.get('status') == 'ACTIVE' and
                doc.get('OS-EXT-STS:task_state') is None and
                doc.get('OS-EXT-SRV-ATTR:host') not in (None, self.source))

    def _finished(self) -> bool:
        with self.lock:
            return not self.queue and all(self._over(s) for s in self.ids)

    def _over(self, sid: str) -> bool:
        return self.state.get(sid) in ('done', 'failed')

    # -- slots ---------------------------------------------------------------
    def _fill(self) -> None:
        """Start migrations while a slot is free."""
        while True:
            with self.lock:
                if not self.queue or self.busy >= self.in_flight:
                    return
                sid = self.queue.popleft()
                self.busy += 1
                self.peak = max(self.peak, self.busy)
                self.state[sid] = 'submitted'
            self.pool.submit(self._migrate, sid)

    def _release(self) -> None:
        with self.lock:
            self.busy -= 1
        self._fill()

    def _fail(self, sid: str, why: str) -> None:
        with self.lock:
            held = self.state.get(sid) in ('submitted', 'confirming')
            self.state[sid] = 'failed'
            self.failures.append('%s %s' % (sid, why))
        if held:
            self._release()

    # -- requests ------------------------------------------------------------
    def _migrate(self, sid: str) -> None:
        if self.kind == COLD:
            body: dict = {'migrate': None}
        else:
            body = {'os-migrateLive': {'host': None,
                                       'block_migration': 'auto'}}
        r = self._post(sid, body)
        if r.status_code != 202:
            self._fail(sid, 'migrate: %s %s' % (r.status_code, r.text[:200]))

    def _confirm(self, sid: str) -> None:
        r = self._post(sid, {'confirmResize': None})
        if r.status_code != 204:
            self._fail(sid, 'confirm: %s %s' % (r.status_code, r.text[:200]))
            return
        with self.lock:
            self.state[sid] = 'confirmed'
        self._release()

    def _post(self, sid: str, body: dict) -> ty.Any:
        for attempt in range(RETRIES + 1):
            r = self.compute.request('/servers/%s/action' % sid, 'POST',
                                     json=body, microversion=MICROVERSION)
            if r.status_code != 409 and r.status_code < 500:
                return r
            if attempt < RETRIES:
                time.sleep(0.5)
        return r

    def _changed(self, since: float) -> ty.Iterator[dict]:
        """Servers changed since then, all projects, page after page."""
        stamp = datetime.datetime.fromtimestamp(
            since, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
        url: ty.Optional[str] = (
            '/servers/detail?all_tenants=1&changes-since=%s'
            % urllib.parse.quote(stamp))
        while url:
            r = self.compute.request(url, 'GET', microversion=MICROVERSION)
            if r.status_code != 200:
                # A lost poll is the next poll's to make up: it reads back.
                return
            body = r.json()
            yield from body['servers']
            url = next((link['href'] for link in
                        body.get('servers_links', [])
                        if link.get('rel') == 'next'), None)


def main(argv: ty.Optional[ty.List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--kind', choices=(COLD, LIVE), required=True)
    parser.add_argument('--in-flight', type=int, required=True)
    parser.add_argument('--interval', type=float, required=True)
    parser.add_argument('--source', required=True)
    parser.add_argument('--cloud', default=os.environ.get('OS_CLOUD'))
    parser.add_argument('ids', nargs='+')
    args = parser.parse_args(argv)
    import openstack.config
    import openstack.connection

    config = openstack.config.OpenStackConfig(
        config_files=[os.environ['OS_CLIENT_CONFIG_FILE']],
        load_envvars=False)
    compute = openstack.connection.Connection(
        config=config.get_one(cloud=args.cloud)).compute
    floor = Floor(compute, args.ids, args.kind, args.in_flight,
                  args.interval, args.source)
    result = floor.run()
    floor.pool.shutdown(wait=True)
    print(json.dumps(result))
    for failure in result['failures']:
        print('floor: %s' % failure, file=sys.stderr)
    return 1 if result['failures'] else 0


if __name__ == '__main__':
    sys.exit(main())
