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

"""A compute proxy (spec'd on openstacksdk's) answering from a route table."""

import json
import re
import typing as ty
from unittest import mock

from keystoneauth1 import discover
from openstack.compute.v2 import _proxy
import requests


def response(status: int, body: ty.Any = None, method: str = 'GET',
             url: str = 'http://nova/v2.1') -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r.reason = {200: 'OK', 202: 'Accepted', 204: 'No Content',
                400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found',
                409: 'Conflict', 500: 'Internal Server Error',
                503: 'Service Unavailable'}.get(status, '')
    r._content = json.dumps(body).encode() if body is not None else b''
    r.headers['Content-Type'] = 'application/json'
    r.request = requests.Request(method, url).prepare()
    r.url = url
    return r


def nova_error(status: int, message: str, method: str = 'GET'
               ) -> requests.Response:
    key = {400: 'badRequest', 403: 'forbidden', 404: 'itemNotFound',
           409: 'conflictingRequest'}.get(status, 'computeFault')
    return response(status, {key: {'code': status, 'message': message}},
                    method)


def server_doc(sid='s1', name='vm', status='ACTIVE', host='compute1',
               task_state=None, fault=None):
    doc = {'id': sid, 'name': name, 'status': status,
           'OS-EXT-STS:task_state': task_state,
           'OS-EXT-SRV-ATTR:host': host, 'tenant_id': 'p1'}
    if fault:
        doc['fault'] = {'message': fault, 'code': 500}
    return doc


def migration_doc(mid=1, status='finished', type_='migration',
                  source='compute1', dest='compute2'):
    return {'id': mid, 'uuid': 'uuid-%d' % mid, 'migration_type': type_,
            'status': status, 'source_compute': source,
            'dest_compute': dest, 'instance_uuid': 's1',
            'created_at': '2026-01-01T00:00:00.000000',
            'updated_at': '2026-01-01T00:00:04.500000'}


class FakeCompute:
    """Routes ``request(url, method, ...)`` to canned responses.

    ``routes``: list of (METHOD, url regex, response or callable or list of
    responses consumed in order). Every request is kept in ``requests``.
    """

    def __init__(self, max_microversion: str = '2.100',
                 default_microversion: ty.Optional[str] = None) -> None:
        self.proxy = mock.Mock(spec=_proxy.Proxy)
        self.proxy.get_endpoint_data.return_value = discover.EndpointData(
            min_microversion='2.1', max_microversion=max_microversion)
        self.proxy.default_microversion = default_microversion
        self.proxy.request.side_effect = self._request
        self.routes: ty.List[ty.Tuple[str, str, ty.Any]] = []
        self.requests: ty.List[ty.Tuple[str, str, ty.Any, ty.Any, str]] = []

    def route(self, method: str, pattern: str, answer: ty.Any) -> None:
        self.routes.insert(0, (method, pattern, answer))

    def _request(self, url, method, json=None, params=None,
                 microversion=None, raise_exc=True, **kwargs):
        self.requests.append((method, url, params, json, microversion))
        for verb, pattern, answer in self.routes:
            if verb == method and re.fullmatch(pattern, url):
                if isinstance(answer, list):
                    answer = answer.pop(0) if len(answer) > 1 else answer[0]
                if callable(answer):
                    answer = answer(url, params, json)
                if isinstance(answer, Exception):
                    raise answer
                return answer
        return nova_error(404, 'no route for %s %s' % (method, url), method)

    def writes(self) -> ty.List[ty.Tuple[str, str, ty.Any]]:
        return [(m, u, b) for m, u, _, b, _ in self.requests if m != 'GET']
