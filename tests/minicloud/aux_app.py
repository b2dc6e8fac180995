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

"""The minicloud's third HTTP app: what OSC needs besides Nova, and controls.

- ``/identity``: keystone v3 version discovery and read-only project/user
  look-ups (OSC resolves ``--project`` and insists on an identity endpoint).
- ``/image``: read-only Glance v2 images from nova's GlanceFixture data.
- ``/minicloud``: the test controls (``GET /minicloud/state``,
  ``POST /minicloud/control``), nova-api's request counter, and where
  servers really are whatever Nova's policy shows (``GET /minicloud/truth``).
"""

import datetime
import json
import re

PROJECTS = {'admin': 'admin', 'demo': 'demo'}
USERS = {'admin': 'admin', 'demo': 'demo'}


def _json_default(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat().replace('+00:00', 'Z')
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(repr(value))


class AuxApp:
    def __init__(self, base_url, images, controller):
        self.base_url = base_url
        self.images = images
        self.controller = controller
        self.routes = [
            ('GET', r'/identity/?', self.identity_versions),
            ('GET', r'/identity/v3/?', self.identity_v3),
            ('GET', r'/identity/v3/projects/?', self.list_projects),
            ('GET', r'/identity/v3/projects/(?P<id>[^/]+)', self.get_project),
            ('GET', r'/identity/v3/users/?', self.list_users),
            ('GET', r'/identity/v3/users/(?P<id>[^/]+)', self.get_user),
            ('GET', r'/image/?', self.image_versions),
            ('GET', r'/image/v2/images/?', self.list_images),
            ('GET', r'/image/v2/images/(?P<id>[^/]+)', self.get_image),
            ('GET', r'/minicloud/state', self.state),
            ('GET', r'/minicloud/truth', self.truth),
            ('POST', r'/minicloud/control', self.control),
        ]

    def __call__(self, environ, start_response):
        method = environ['REQUEST_METHOD']
        path = environ.get('PATH_INFO', '/')
        for verb, pattern, handler in self.routes:
            match = re.fullmatch(pattern, path)
            if match and verb == method:
                try:
                    status, body = handler(environ, **match.groupdict())
                except ValueError as exc:
                    status, body = 400, {'error': str(exc)}
                return self._respond(start_response, status, body)
        return self._respond(start_response, 404,
                             {'error': 'not found: %s %s' % (method, path)})

    @staticmethod
    def _respond(start_response, status, body):
        data = json.dumps(body, default=_json_default).encode()
        reason = {200: 'OK', 300: 'Multiple Choices', 400: 'Bad Request',
                  404: 'Not Found'}.get(status, 'Status')
        start_response('%d %s' % (status, reason),
                       [('Content-Type', 'application/json'),
                        ('Content-Length', str(len(data)))])
        return [data]

    @staticmethod
    def _query(environ):
        from urllib.parse import parse_qs
        return {k: v[-1] for k, v in
                parse_qs(environ.get('QUERY_STRING', '')).items()}

    # -- identity ----------------------------------------------------------
    def _v3(self):
        return {'id': 'v3.14', 'status': 'stable',
                'updated': '2020-04-07T00:00:00Z',
                'links': [{'rel': 'self',
                           'href': self.base_url + '/identity/v3/'}],
                'media-types': [{'base': 'application/json',
                                 'type': 'application/'
                                         'vnd.openstack.identity-v3+json'}]}

    def identity_versions(self, environ):
        return 300, {'versions': {'values': [self._v3()]}}

    def identity_v3(self, environ):
        return 200, {'version': self._v3()}

    def _entity(self, kind, ident):
        return {'id': ident, 'name': ident, 'domain_id': 'default',
                'enabled': True,
                'links': {'self': '%s/identity/v3/%s/%s' % (
                    self.base_url, kind, ident)}}

    def _list(self, environ, kind, table):
        name = self._query(environ).get('name')
        items = [self._entity(kind, i) for i in sorted(table)
                 if name is None or name == i]
        return 200, {kind: items, 'links': {}}

    def _get(self, kind, table, ident):
        if ident not in table:
            return 404, {'error': {'code': 404, 'message':
                                   'Could not find %s: %s' % (kind, ident)}}
        return 200, {kind[:-1]: self._entity(kind, ident)}

    def list_projects(self, environ):
        return self._list(environ, 'projects', PROJECTS)

    def get_project(self, environ, id):
        return self._get('projects', PROJECTS, id)

    def list_users(self, environ):
        return self._list(environ, 'users', USERS)

    def get_user(self, environ, id):
        return self._get('users', USERS, id)

    # -- image -------------------------------------------------------------
    def image_versions(self, environ):
        return 300, {'versions': [{
            'id': 'v2.16', 'status': 'CURRENT',
            'links': [{'rel': 'self', 'href': self.base_url + '/image/v2/'}],
        }]}

    def _image(self, image):
        doc = {k: v for k, v in image.items()
               if k not in ('properties', 'deleted', 'deleted_at',
                            'is_public')}
        doc.update(image.get('properties', {}))
        doc['self'] = '/v2/images/%s' % image['id']
        return doc

    def list_images(self, environ):
        return 200, {'images': [self._image(i) for i in self.images],
                     'first': '/v2/images', 'schema': '/v2/schemas/images'}

    def get_image(self, environ, id):
        for image in self.images:
            if image['id'] == id:
                return 200, self._image(image)
        return 404, {'message': 'No image found with ID %s' % id}

    # -- controls ----------------------------------------------------------
    def state(self, environ):
        return 200, self.controller.state()

    def truth(self, environ):
        return 200, self.controller.truth(self._query(environ).get('server'))

    def control(self, environ):
        length = int(environ.get('CONTENT_LENGTH') or 0)
        request = json.loads(environ['wsgi.input'].read(length) or b'{}')
        return 200, self.controller.control(request)
