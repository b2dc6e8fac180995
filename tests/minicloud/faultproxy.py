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
  of them (``hold``): the way to stop a client at an exact point.
"""

import http.client
import http.server
import random
import socket
import struct
import threading
import typing as ty
import urllib.parse

HOP_BY_HOP = {'connection', 'keep-alive', 'transfer-encoding',
              'proxy-connection', 'te', 'trailer', 'upgrade'}


class Hold:
    """Requests matching (method, path part, action) wait for a decision."""

    def __init__(self, method: str, contains: str,
                 action: ty.Optional[str] = None) -> None:
        self.method = method
        self.contains = contains
        self.action = action
        self.arrived = threading.Event()
        self.decided = threading.Event()
        self.forward = True   # send it on to Nova
        self.respond = True   # give the client Nova's answer
        self.count = 0

    def matches(self, method: str, path: str, body: bytes) -> bool:
        if method != self.method or self.contains not in path:
            return False
        return self.action is None or ('"%s"' % self.action).encode() in body

    def release(self, forward: bool = True, respond: bool = True) -> None:
        self.forward, self.respond = forward, respond
        self.decided.set()


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
        self.lock = threading.Lock()
        self.injected = {'503': 0, 'reset': 0, 'lost': 0, 'refused': 0,
                         'held': 0}
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

    # -- per request ----------------------------------------------------------
    def decide(self, method: str, path: str, body: bytes
               ) -> ty.Tuple[str, ty.Optional[Hold]]:
        """'forward', '503', 'reset' or 'lost' (and the hold, if any)."""
        for hold in self.holds:
            if not hold.decided.is_set() and hold.matches(method, path, body):
                with self.lock:
                    self.injected['held'] += 1
                hold.count += 1
                return 'forward', hold
        with self.lock:
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
        choice, hold = self.owner.decide(self.command, self.path, body)
        if hold is not None:
            hold.arrived.set()
            hold.decided.wait(600)
            if not hold.forward:
                self._reset()
                return
        if choice == '503':
            data = b'{"error": "fault proxy: 503"}'
            self.send_response(503)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if choice == 'reset':
            self._reset()
            return
        conn = http.client.HTTPConnection(*self.owner.upstream, timeout=300)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP}
        conn.request(self.command, self.path, body=body or None,
                     headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        with self.owner.lock:
            self.owner.forwarded += 1
        if choice == 'lost' or (hold is not None and not hold.respond):
            self._reset()
            return
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in HOP_BY_HOP | {'content-length'}:
                self.send_header(key, value)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _handle


class _Discard:
    closed = False

    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:  # socketserver closes it after the handler
        self.closed = True
