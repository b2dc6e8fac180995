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

"""An HTTP proxy between the client and nova-api that fails on purpose.

Runs in the test process (standard library only). It forwards each request
to nova-api unchanged (the Host header too, so Nova's links name the proxy)
and, when asked:

* answers 503 instead of forwarding (``error_rate``);
* resets the connection before forwarding (``reset_rate``: the request
  never reached Nova) or after Nova answered (``lost_rate``: it did, the
  client never knows);
* refuses every connection (``down()`` closes its socket; ``up()`` opens
  it again on the same port);
* holds the requests that match a rule until the test decides what becomes
  of them (``hold``): the way to stop a client at an exact point;
* answers a matching request at once with a gateway error and sends it on
  to Nova a few seconds later (``lose_reply``: a load balancer that gave up
  waiting while Nova still acts on the request);
* answers a matching request with an error, after Nova acted on it or
  without sending it on (``fail``).

Answers it forwards carry Nova's own headers (its ``Date`` too: a client
may read Nova's clock from it), not the proxy's.
"""

import http.client
import http.server
import json
import random
import socket
import struct
import threading
import time
import typing as ty
import urllib.parse

HOP_BY_HOP = {'connection', 'keep-alive', 'transfer-encoding',
              'proxy-connection', 'te', 'trailer', 'upgrade'}


class Rule:
    """Matches requests by method, a part of the path and the action."""

    def __init__(self, method: str, contains: str,
                 action: ty.Optional[str] = None) -> None:
        self.method = method
        self.contains = contains
        self.action = action
        self.count = 0  # requests it took

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if method != self.method or self.contains not in path:
            return False
        return self.action is None or ('"%s"' % self.action).encode() in body


class Hold(Rule):
    """Requests matching (method, path part, action) wait for a decision."""

    def __init__(self, method: str, contains: str,
                 action: ty.Optional[str] = None) -> None:
        super().__init__(method, contains, action)
        self.arrived = threading.Event()
        self.decided = threading.Event()
        self.forward = True   # send it on to Nova
        self.respond = True   # give the client Nova's answer

    def release(self, forward: bool = True, respond: bool = True) -> None:
        self.forward, self.respond = forward, respond
        self.decided.set()


class Fault(Rule):
    """The next ``times`` matching requests get ``status`` from the proxy.

    ``kind`` 'late' (``lose_reply``): answered at once, sent on to Nova
    ``forward_after`` seconds later, Nova's answer dropped. 'fail': sent on
    first if ``forward`` (Nova acts, its answer is dropped), else never.
    What Nova answered is in ``nova_status`` (None: not sent, or no answer
    yet); ``forwarded`` is set once it has answered.
    """

    def __init__(self, kind: str, method: str, contains: str,
                 action: ty.Optional[str], status: int, times: int,
                 forward: bool, forward_after: float = 0.0) -> None:
        super().__init__(method, contains, action)
        self.kind = kind
        self.status = status
        self.times = times
        self.forward = forward
        self.forward_after = forward_after
        self.arrived = threading.Event()
        self.forwarded = threading.Event()
        self.nova_status: ty.Optional[int] = None
        self.nova_statuses: ty.List[int] = []

    @property
    def spent(self) -> bool:
        return self.count >= self.times

    def record(self, status: int) -> None:
        self.nova_statuses.append(status)
        self.nova_status = status
        self.forwarded.set()


class FaultProxy:
    def __init__(self, upstream_url: str, seed: int = 0) -> None:
        parts = urllib.parse.urlsplit(upstream_url)
        self.upstream = (parts.hostname, parts.port)
        self.prefix = parts.path  # e.g. /v2.1
        self.random = random.Random(seed)
        self.error_rate = 0.0
        self.reset_rate = 0.0
        self.lost_rate = 0.0
        self.holds: ty.List[Hold] = []
        self.faults: ty.List[Fault] = []
        self.lock = threading.Lock()
        self.injected = {'503': 0, 'reset': 0, 'lost': 0, 'refused': 0,
                         'held': 0, 'late': 0, 'fail': 0}
        self.forwarded = 0
        self.port = 0
        self._server: ty.Optional[http.server.ThreadingHTTPServer] = None
        self.up()

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d%s' % (self.port, self.prefix)

    # -- switching ----------------------------------------------------------
    def up(self) -> None:
        if self._server is not None:
            return
        proxy = self

        class Handler(_Handler):
            owner = proxy

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        server = http.server.ThreadingHTTPServer(('127.0.0.1', self.port),
                                                 Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True,
                         name='faultproxy').start()

    def down(self) -> None:
        """Refuse connections (as if nova-api were not there)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            with self.lock:
                self.injected['refused'] += 1

    def stop(self) -> None:
        for hold in self.holds:
            hold.release()
        self.down()

    def hold(self, method: str, contains: str,
             action: ty.Optional[str] = None) -> Hold:
        hold = Hold(method, contains, action)
        self.holds.append(hold)
        return hold

    def lose_reply(self, method: str, contains: str,
                   action: ty.Optional[str] = None, status: int = 504,
                   forward_after: float = 3.0, times: int = 1) -> Fault:
        """Answer ``status`` at once; Nova gets the request later.

        What a load balancer does when it stops waiting for a slow API: the
        client sees a gateway timeout, and the request still reaches Nova
        (here ``forward_after`` seconds later), which acts on it.
        """
        fault = Fault('late', method, contains, action, status, times,
                      forward=True, forward_after=forward_after)
        self.faults.append(fault)
        return fault

    def fail(self, method: str, contains: str,
             action: ty.Optional[str] = None, status: int = 503,
             forward: bool = False, times: int = 1) -> Fault:
        """Answer ``status``; with ``forward`` Nova acted on it first."""
        fault = Fault('fail', method, contains, action, status, times,
                      forward=forward)
        self.faults.append(fault)
        return fault

    # -- per request ----------------------------------------------------------
    def decide(self, method: str, path: str, body: bytes
               ) -> ty.Tuple[str, ty.Optional[Rule]]:
        """What becomes of a request, and the rule that decided it.

        'forward', '503', 'reset', 'lost', 'late' or 'fail'; the hold or
        fault that matched, if any.
        """
        with self.lock:
            for hold in self.holds:
                if not hold.decided.is_set() and hold.matches(method, path,
                                                              body):
                    self.injected['held'] += 1
                    hold.count += 1
                    return 'forward', hold
            for fault in self.faults:
                if not fault.spent and fault.matches(method, path, body):
                    self.injected[fault.kind] += 1
                    fault.count += 1
                    fault.arrived.set()
                    return fault.kind, fault
            roll = self.random.random()
            if roll < self.error_rate:
                choice = '503'
            elif roll < self.error_rate + self.reset_rate:
                choice = 'reset'
            elif roll < self.error_rate + self.reset_rate + self.lost_rate:
                choice = 'lost'
            else:
                choice = 'forward'
            if choice != 'forward':
                self.injected[choice] += 1
        return choice, None


class _Handler(http.server.BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = 'HTTP/1.0'

    def log_message(self, format: str, *args: ty.Any) -> None:
        pass

    def _reset(self) -> None:
        """Close with RST: the client sees 'connection reset by peer'."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack('ii', 1, 0))
        self.connection.close()
        self.close_connection = True
        self.wfile = _Discard()  # type: ignore[assignment]

    def _handle(self) -> None:
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length) if length else b''
        choice, rule = self.owner.decide(self.command, self.path, body)
        hold = rule if isinstance(rule, Hold) else None
        if hold is not None:
            hold.arrived.set()
            hold.decided.wait(600)
            if not hold.forward:
                self._reset()
                return
        if choice == '503':
            self._error(503, 'Service Unavailable', 'fault proxy: 503')
            return
        if choice == 'reset':
            self._reset()
            return
        if isinstance(rule, Fault):
            self._fault(rule, body)
            return
        status, reason, headers, data = self._forward(body)
        if choice == 'lost' or (hold is not None and not hold.respond):
            self._reset()
            return
        # Nova's status line and headers (Date, Server) as they are: not
        # send_response(), which would add the proxy's own Date and Server.
        self.send_response_only(status, reason)
        for key, value in headers:
            if key.lower() not in HOP_BY_HOP | {'content-length'}:
                self.send_header(key, value)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _forward(self, body: bytes
                 ) -> ty.Tuple[int, str, ty.List[ty.Tuple[str, str]], bytes]:
        """Send the request to Nova; its status, reason, headers, body."""
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP}
        return _send(self.owner, self.command, self.path, headers, body)

    def _fault(self, fault: Fault, body: bytes) -> None:
        if fault.kind == 'late':
            # Answer first; the request reaches Nova later, from a thread
            # of its own (this handler's connection is closed by then).
            self._forward_late(fault, body)
            self._error(fault.status, None, 'fault proxy: the gateway '
                        'gave up waiting (the request still reaches Nova)')
            return
        if fault.forward:
            fault.record(self._forward(body)[0])
        self._error(fault.status, None, 'fault proxy: %d' % fault.status)

    def _forward_late(self, fault: Fault, body: bytes) -> None:
        request = (self.command, self.path,
                   {k: v for k, v in self.headers.items()
                    if k.lower() not in HOP_BY_HOP})

        def later() -> None:
            time.sleep(fault.forward_after)
            try:
                status = _send(self.owner, *request, body)[0]
            except OSError:
                status = 0  # no answer (the cloud is stopping)
            fault.record(status)

        threading.Thread(target=later, daemon=True,
                         name='faultproxy-late').start()

    def _error(self, status: int, reason: ty.Optional[str],
               message: str) -> None:
        """An answer of the proxy's own, like a load balancer's."""
        data = json.dumps({'message': message, 'code': status}).encode()
        self.send_response(status, reason)  # the proxy's Date and Server
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


def _send(owner: FaultProxy, method: str, path: str,
          headers: ty.Dict[str, str], body: bytes
          ) -> ty.Tuple[int, str, ty.List[ty.Tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection(*owner.upstream, timeout=300)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    with owner.lock:
        owner.forwarded += 1
    return response.status, response.reason, response.getheaders(), data


class _Discard:
    closed = False

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:  # socketserver closes it after the handler
        self.closed = True
