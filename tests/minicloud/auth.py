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

"""Paste filter standing in for keystonemiddleware in the minicloud.

In front of Placement too (``TokenAuth(app, placement=True)``), so that
both services take the same tokens and roles, and refuse expired ones.

nova 34 removed ``auth_strategy = noauth2``; this filter takes its place in a
copy of nova's api-paste.ini. The token is ``user:project[:role,role]``.
User ``admin`` gets every role; anyone else ``member,reader`` (a plain
project member: Nova's default policy refuses them migrations with 403).
"""

ADMIN_ROLES = 'admin,manager,member,reader'
MEMBER_ROLES = 'member,reader'

_IDENTITY_HEADERS = ('HTTP_X_USER_ID', 'HTTP_X_USER', 'HTTP_X_PROJECT_ID',
                     'HTTP_X_TENANT_ID', 'HTTP_X_TENANT', 'HTTP_X_ROLES',
                     'HTTP_X_ROLE', 'HTTP_X_IDENTITY_STATUS',
                     'HTTP_X_SERVICE_CATALOG', 'HTTP_X_USER_NAME',
                     'HTTP_X_PROJECT_NAME')


def parse_token(token):
    """Return (user, project, roles) for a minicloud token, or None."""
    parts = token.split(':')
    if len(parts) < 2 or not parts[0] or not parts[1]:
        return None
    user, project = parts[0], parts[1]
    if len(parts) > 2 and parts[2]:
        roles = parts[2]
    else:
        roles = ADMIN_ROLES if user == 'admin' else MEMBER_ROLES
    return user, project, roles


# Tokens the harness has expired (control ``expire-token``): refused with
# keystonemiddleware's 401, as a token past its expiry is.
EXPIRED = set()


class TokenAuth:
    def __init__(self, app, placement=False):
        self.app = app
        # Placement's noauth2 middleware takes the roles we set and the
        # token as ``user:project``.
        self.placement = placement

    def __call__(self, environ, start_response):
        # Never trust identity headers sent by the client.
        for name in _IDENTITY_HEADERS:
            environ.pop(name, None)
        token = environ.get('HTTP_X_AUTH_TOKEN', '')
        if token in EXPIRED:
            start_response('401 Unauthorized',
                           [('Content-Type', 'application/json'),
                            ('WWW-Authenticate',
                             'Keystone uri="http://127.0.0.1"')])
            return [b'{"error": {"code": 401, "title": "Unauthorized", '
                    b'"message": "The request you have made requires '
                    b'authentication."}}']
        parsed = parse_token(token)
        if parsed is None:
            start_response('401 Unauthorized',
                           [('Content-Type', 'application/json')])
            return [b'{"error": "minicloud token user:project required"}']
        user, project, roles = parsed
        environ.update({
            'HTTP_X_USER_ID': user, 'HTTP_X_USER_NAME': user,
            'HTTP_X_PROJECT_ID': project, 'HTTP_X_PROJECT_NAME': project,
            'HTTP_X_ROLES': roles, 'HTTP_X_IDENTITY_STATUS': 'Confirmed',
        })
        if self.placement:
            environ['HTTP_X_AUTH_TOKEN'] = '%s:%s' % (user, project)
        return self.app(environ, start_response)


def filter_factory(global_conf, **local_conf):
    return TokenAuth
