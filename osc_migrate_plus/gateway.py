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

"""The Nova gateway: the only module that sends requests to Nova.

It speaks the compute API through openstacksdk's compute proxy (so auth,
endpoints, TLS options and ``--os-compute-api-version`` come from the user's
OSC configuration), picks microversions, turns API documents into the
engine's ``Server``/``Migration`` values, and retries what is safe to retry.
"""

import datetime
import email.utils
import random
import re
import time
import typing as ty

from keystoneauth1 import discover
from keystoneauth1 import exceptions as ksa_exc
from openstack import exceptions as sdk_exc
import requests
from urllib3 import exceptions as urllib3_exc

from osc_migrate_plus import model

# The migrations API with changes-since, uuid and newest-first order.
MIN_MICROVERSION = '2.59'
# The newest microversion whose documents this client knows how to read.
KNOWN_MAX_MICROVERSION = '2.100'
# Instance-action events carry ``details`` (the failure reason) from here.
EVENT_DETAILS_MICROVERSION = '2.84'
# The migrations API filters by project_id (and shows it) from here.
PROJECT_FILTER_MICROVERSION = '2.80'
HOST_ATTR = 'OS-EXT-SRV-ATTR:host'

UUID_RE = re.compile(r'^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$')


def _vstr(version: ty.Any) -> str:
    return discover.version_to_string(discover.normalize_version_number(
        version))


def _vtuple(version: ty.Any) -> ty.Tuple[float, ...]:
    return tuple(discover.normalize_version_number(version))


def _never_sent(exc: BaseException) -> bool:
    """Did the request surely never reach the server?

    True only when no connection was made (refused, connect timeout): then
    Nova cannot have acted on it. A reset or a read timeout may come after
    Nova got the whole request.
    """
    seen = 0
    cause: ty.Optional[BaseException] = exc
    while cause is not None and seen < 5:
        if isinstance(cause, (requests.exceptions.ConnectTimeout,
                              urllib3_exc.NewConnectionError,
                              urllib3_exc.ConnectTimeoutError)):
            return True
        if isinstance(cause, requests.exceptions.ConnectionError) and \
                cause.args and isinstance(cause.args[0],
                                          urllib3_exc.MaxRetryError):
            cause = cause.args[0].reason
        else:
            cause = cause.__cause__ or cause.__context__
        seen += 1
    return False


def _retry_after(response: ty.Any) -> float:
    """Seconds a 429 asks to wait (``Retry-After``), at most a minute."""
    try:
        return min(float(response.headers.get('Retry-After') or 0), 60.0)
    except (TypeError, ValueError):
        return 0.0


def _parse_date(value: ty.Optional[str]) -> ty.Optional[datetime.datetime]:
    """An HTTP ``Date`` header (one, or several joined by a proxy)."""
    if not value:
        return None
    for text in (value, value[:29]):
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            continue
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        return parsed
    return None


class NovaGateway:
    def __init__(self, compute: ty.Any,
                 sleep: ty.Optional[ty.Callable[[float], None]] = None,
                 read_retries: int = 3) -> None:
        self.compute = compute
        self._sleep = sleep or time.sleep
        self._read_retries = read_retries
        self._microversion: ty.Optional[str] = None
        self._explicit: ty.Optional[str] = None
        # Nova's clock: the Date of its latest answer, and when (on our
        # monotonic clock) that answer came; set as one, since requests
        # answer from several threads at once.
        self._nova_date: ty.Optional[ty.Tuple[datetime.datetime, float]] \
            = None
        # What Nova's policy lets this user read, learned from its 403s:
        # every project's servers (all_tenants), and the migrations of one
        # project only (a project manager, nova >= 32) or of all.
        self._all_tenants = True
        self._migrations_project: ty.Optional[str] = None
        self._progress_by_index = False

    # -- microversions -----------------------------------------------------
    @property
    def microversion(self) -> str:
        """The microversion every request uses.

        The user's explicit ``--os-compute-api-version`` if given (it must be
        2.59 or newer), else the newest both sides know.
        """
        if self._microversion is None:
            explicit = getattr(self.compute, 'default_microversion', None)
            data = self.compute.get_endpoint_data()
            server_max = getattr(data, 'max_microversion', None)
            if explicit:
                self._explicit = _vstr(explicit)
                self.require(MIN_MICROVERSION, 'following migrations',
                             _version=self._explicit)
                chosen = self._explicit
            else:
                if not server_max or (_vtuple(server_max)
                                      < _vtuple(MIN_MICROVERSION)):
                    raise model.MicroversionError(
                        'This cloud offers compute API microversions up to '
                        '%s; following migrations needs %s or newer.' % (
                            _vstr(server_max) if server_max else '2.1',
                            MIN_MICROVERSION))
                chosen = _vstr(min(_vtuple(server_max),
                                   _vtuple(KNOWN_MAX_MICROVERSION)))
            self._microversion = chosen
        return self._microversion

    @property
    def explicit(self) -> bool:
        """Did the user choose the microversion (--os-compute-api-version)?"""
        return bool(self._explicit)

    def endpoint(self) -> ty.Optional[str]:
        """The compute endpoint, to recognise the cloud a journal is for."""
        try:
            return self.compute.get_endpoint()
        except Exception:  # nothing depends on having it
            return None

    def supports(self, version: str) -> bool:
        return _vtuple(self.microversion) >= _vtuple(version)

    def require(self, version: str, what: str,
                _version: ty.Optional[str] = None) -> None:
        current = _version or self.microversion
        if _vtuple(current) < _vtuple(version):
            raise model.MicroversionError(
                '%s requires --os-compute-api-version %s or greater '
                '(requested %s).' % (what, version, current),
                explicit=bool(self._explicit))

    def nova_now(self) -> ty.Optional[datetime.datetime]:
        """Now, on Nova's clock: never the client's, which may be off.

        From the ``Date`` of Nova's latest answer plus the time elapsed
        since on our monotonic clock. ``Date`` has whole seconds, so this
        runs up to a second behind Nova: a window computed from it starts
        early, never late. None until an answer carried a Date.
        """
        if self._nova_date is None:
            return None
        date, at = self._nova_date
        return date + datetime.timedelta(seconds=time.monotonic() - at)

    # -- HTTP --------------------------------------------------------------
    def _call(self, method: str, url: str, body: ty.Any = None,
              params: ty.Optional[dict] = None, retries: int = 0) -> ty.Any:
        attempt = 0
        # A write goes out once: keystoneauth would resend it on a reset or
        # a 503 if the user's config asks for retries (connect_retries,
        # status_code_retries), although Nova may have it already. Whether
        # to send again is the engine's decision, after looking.
        once = {} if method == 'GET' else {'connect_retries': 0,
                                           'status_code_retries': 0}
        while True:
            try:
                response = self.compute.request(
                    url, method, json=body, params=params,
                    microversion=self.microversion, raise_exc=False, **once)
            except (ksa_exc.Unauthorized,
                    ksa_exc.AuthorizationFailure) as exc:
                # Getting a new token failed (a password changed, an
                # application credential revoked): nothing was sent.
                raise model.CredentialsExpired(
                    'the identity service refused the credentials: %s'
                    % exc)
            except ksa_exc.ConnectionError as exc:
                error: model.NovaError = model.Transient(
                    'cannot reach the compute API: %s' % exc,
                    maybe_applied=not _never_sent(exc))
            except ksa_exc.HttpError as exc:
                # The identity service answered an error while a token was
                # renewed: the request never left for Nova. A 5xx passes.
                if (exc.http_status or 0) < 500:
                    raise
                error = model.Transient(
                    'the identity service failed: %s' % exc,
                    maybe_applied=False)
            else:
                self._note_date(response)
                if response.status_code < 400:
                    return response
                if response.status_code == 401:
                    # Refused before Nova looked at the request: keystoneauth
                    # renews what it can and asks again first, so these
                    # credentials are over (a fixed token that expired).
                    raise model.CredentialsExpired(
                        'Nova refused the credentials (HTTP 401): the token '
                        'expired or was revoked')
                error = self._error(response)
            if not isinstance(error, model.Transient) or attempt >= retries:
                raise error
            attempt += 1
            # Exponential backoff with jitter, or what a rate limiter asks.
            delay = min(0.5 * 2 ** attempt, 8) * random.uniform(0.5, 1.5)
            self._sleep(max(delay, getattr(error, 'retry_after', 0.0)))

    def _note_date(self, response: ty.Any) -> None:
        headers = getattr(response, 'headers', None) or {}
        date = _parse_date(headers.get('Date'))
        if date is not None:
            self._nova_date = (date, time.monotonic())

    @staticmethod
    def _error(response: ty.Any) -> model.NovaError:
        try:
            sdk_exc.raise_from_response(response)
        except sdk_exc.HttpException as exc:
            detail = exc.details or exc.message or response.reason
            status = response.status_code
            text = 'HTTP %s: %s' % (status, detail)
            if status == 404:
                return model.NotFound(text, status)
            if status == 429:
                # A rate limiter in front of Nova: not carried out.
                error = model.Transient(text, status, maybe_applied=False)
                error.retry_after = _retry_after(response)
                return error
            if status >= 500:
                # Any 5xx may come after Nova acted: a proxy answers 502,
                # 503 or 504 when the backend went away mid-request.
                return model.Transient(text, status)
            return model.NovaError(text, status)
        return model.NovaError('HTTP %s' % response.status_code,
                               response.status_code)

    def _get(self, url: str, params: ty.Optional[dict] = None) -> ty.Any:
        return self._call('GET', url, params=params,
                          retries=self._read_retries).json()

    # -- reads -------------------------------------------------------------
    def find_server(self, name_or_id: str) -> model.Server:
        """A server by ID or exact name, in any project (admin)."""
        if UUID_RE.match(name_or_id):
            try:
                return self.get_server(name_or_id)
            except model.NotFound:
                pass
        params = {'name': '^%s$' % re.escape(name_or_id)}
        servers = self._list('/servers/detail', params)
        # Nova hands the name to the database as a regex, which MySQL
        # matches case-insensitively: keep exact names only.
        servers = [s for s in servers if s.get('name') == name_or_id]
        if not servers:
            raise model.NotFound('No server with a name or ID of %r exists.'
                                 % name_or_id, 404)
        if len(servers) > 1:
            raise model.NovaError(
                'More than one server is named %r: %s. Name one by ID.'
                % (name_or_id, ', '.join(sorted(s['id'] for s in servers))))
        return self._server(servers[0])

    def get_server(self, server_id: str) -> model.Server:
        return self._server(self._get('/servers/%s' % server_id)['server'])

    @staticmethod
    def _server(doc: dict) -> model.Server:
        fault = doc.get('fault') or None
        return model.Server(
            id=doc['id'], name=doc.get('name') or '',
            status=doc.get('status') or '',
            task_state=doc.get('OS-EXT-STS:task_state'),
            host=doc.get(HOST_ATTR),
            project_id=doc.get('tenant_id'),
            fault=fault.get('message') if fault else None,
            # Nova leaves the attribute out when policy hides it; a server
            # on no host (shelved offloaded) has it, set to None.
            host_hidden=HOST_ATTR not in doc,
            updated=doc.get('updated'))

    @staticmethod
    def _migration(doc: dict) -> model.Migration:
        return model.Migration(
            id=doc['id'], uuid=doc.get('uuid'),
            type=doc.get('migration_type') or 'migration',
            status=doc.get('status') or '',
            source=doc.get('source_compute'), dest=doc.get('dest_compute'),
            created_at=doc.get('created_at'),
            updated_at=doc.get('updated_at'),
            server_id=doc.get('instance_uuid'))

    def _list(self, url: str, params: dict, key: str = 'servers',
              pages: bool = False) -> ty.List[dict]:
        """Servers of every project, or of the user's own if refused.

        Nova refuses ``all_tenants`` (403) to all but admins; then the
        user's own project is what there is to see, from then on.
        """
        def read(extra: dict) -> ty.List[dict]:
            wanted = dict(params, **extra)
            if pages:
                return self._pages(url, key, wanted)
            return self._get(url, params=wanted)[key]

        if self._all_tenants:
            try:
                return read({'all_tenants': 1})
            except model.NovaError as exc:
                # Only Nova's refusal of all_tenants itself: any other 403
                # (a proxy, another rule) must not shrink what is listed.
                if exc.status != 403 or 'get_all_tenants' not in str(exc):
                    raise
                self._all_tenants = False
        return read({})

    @property
    def lists_all_projects(self) -> bool:
        """False once Nova refused to list every project's servers."""
        return self._all_tenants

    def _migrations_params(self, params: dict) -> dict:
        if self._migrations_project:
            params['project_id'] = self._migrations_project
        return params

    def migrations(self, server_id: str,
                   limit: ty.Optional[int] = None) -> ty.List[
                       model.Migration]:
        """The server's migration records, newest first (2.59)."""
        params: ty.Dict[str, ty.Any] = {'instance_uuid': server_id}
        if limit:
            params['limit'] = limit
        docs = self._get('/os-migrations', params=self._migrations_params(
            params))['migrations']
        return [self._migration(d) for d in docs]

    def check_can_follow(self,
                         projects: ty.Iterable[ty.Optional[str]] = ()
                         ) -> None:
        """Fail early (Nova's 403) if this user cannot read migrations.

        Following needs the migrations API: better to learn before changing
        anything whether Nova lets us read it. Nova's default policy lets
        admins read every project's migrations and, from nova 32, a project
        manager its own project's only, asked with ``project_id`` (2.80).
        When Nova refuses the first and the servers (``projects``) are all
        of one project, every migrations read asks for that project.
        """
        try:
            self._get('/os-migrations', params={'limit': 1})
            return
        except model.NovaError as exc:
            if exc.status != 403:
                raise
            refused = exc
        wanted = {p for p in projects if p}
        if len(wanted) > 1:
            raise model.NovaError(
                '%s: following the migrations of servers of several '
                'projects (%s) needs admin; name the servers of one '
                'project.' % (refused, ', '.join(sorted(wanted))),
                refused.status)
        if not wanted:
            raise refused
        if not self.supports(PROJECT_FILTER_MICROVERSION):
            raise model.NovaError(
                '%s. Reading only your project\'s migrations, as Nova lets a '
                'project manager, needs compute API %s (requested %s).' % (
                    refused, PROJECT_FILTER_MICROVERSION, self.microversion),
                refused.status)
        project = wanted.pop()
        self._get('/os-migrations', params={'limit': 1,
                                            'project_id': project})
        self._migrations_project = project

    @property
    def migrations_project(self) -> ty.Optional[str]:
        """The project migrations are read for, if not all (see above)."""
        return self._migrations_project

    def newest_migration(self,
                         server_id: str) -> ty.Optional[model.Migration]:
        found = self.migrations(server_id, limit=1)
        return found[0] if found else None

    def live_progress(self, server_id: str,
                      migration_id: int) -> ty.Optional[dict]:
        """Memory/disk progress of a running live migration, if Nova says.

        Only for the eye: any failure to read it is None, never a verdict.
        """
        try:
            if not self._progress_by_index:
                return self._call('GET', '/servers/%s/migrations/%s' % (
                    server_id, migration_id)).json()['migration']
            # Showing one is admin-only by Nova's default policy; the list
            # of the server's live migrations in progress (a project
            # manager may read it) carries the same figures.
            listed = self._call('GET', '/servers/%s/migrations'
                                % server_id).json()['migrations']
            return next((m for m in listed if m.get('id') == migration_id),
                        None)
        except model.NovaError as exc:
            if exc.status == 403 and not self._progress_by_index:
                self._progress_by_index = True
            return None  # finished between two reads, or Nova busy
        except (ValueError, KeyError):
            return None

    def compute_services(self) -> ty.List[dict]:
        return self._get('/os-services',
                         params={'binary': 'nova-compute'})['services']

    def compute_hosts(self) -> ty.List[str]:
        return sorted({s['host'] for s in self.compute_services()})

    def hypervisors(self) -> ty.List[model.Hypervisor]:
        """Every compute node with its service's state (admin, 2.53+).

        A node's ID is its resource provider's UUID in Placement: this is
        how a host's provider is found, whatever its name there.
        """
        found = []
        for doc in self._pages('/os-hypervisors/detail', 'hypervisors', {}):
            service = doc.get('service') or {}
            found.append(model.Hypervisor(
                uuid=str(doc['id']),
                name=doc.get('hypervisor_hostname') or '',
                host=service.get('host'),
                enabled=doc.get('status') == 'enabled',
                up=doc.get('state') == 'up',
                disabled_reason=service.get('disabled_reason')))
        return found

    def aggregates(self) -> ty.List[dict]:
        """Host aggregates with their hosts (admin)."""
        return self._get('/os-aggregates')['aggregates']

    def _pages(self, url: str, key: str, params: dict) -> ty.List[dict]:
        """All items of a paginated list: one request per page."""
        items: ty.List[dict] = []
        params = dict(params)
        while True:
            body = self._get(url, params=params)
            page = body[key]
            items.extend(page)
            nxt = [link for link in body.get('%s_links' % key, [])
                   if link.get('rel') == 'next']
            if not page or not nxt:
                return items
            params['marker'] = page[-1].get('uuid') or page[-1]['id']

    def list_servers(self, host: ty.Optional[str] = None,
                     project: ty.Optional[str] = None,
                     status: ty.Optional[str] = None,
                     changes_since: ty.Optional[str] = None
                     ) -> ty.List[model.Server]:
        """Servers of every project (admin), filtered by Nova.

        Else the user's own project's: Nova then drops, without a word, the
        filters its policy keeps for admins (``host``, ``project_id``);
        the caller checks what came back.
        """
        params: ty.Dict[str, ty.Any] = {}
        if host:
            params['host'] = host
        if project:
            params['project_id'] = project
        if status:
            params['status'] = status
        if changes_since:
            params['changes-since'] = changes_since
        return [self._server(d) for d in self._list(
            '/servers/detail', params, pages=True)]

    def migrations_since(self, changes_since: str
                         ) -> ty.List[model.Migration]:
        """Return every migration record updated since then (2.59).

        All servers at once: one bulk read serves every migration a batch
        follows.
        """
        docs = self._pages('/os-migrations', 'migrations',
                           self._migrations_params(
                               {'changes-since': changes_since}))
        return [self._migration(d) for d in docs]

    def newest_migration_at(self, host: str
                            ) -> ty.Optional[model.Migration]:
        """The newest migration record from or to ``host`` (2.59).

        One record, one request, however long the host's history.
        """
        docs = self._get('/os-migrations', params=self._migrations_params(
            {'host': host, 'limit': 1}))['migrations']
        return self._migration(docs[0]) if docs else None

    def migrations_at(self, host: str) -> ty.List[model.Migration]:
        """Every migration record from or to ``host`` (2.59, paged).

        Nova's ``host`` filter matches the source or the destination; its
        ``status`` filter takes one value only, so what is still under way
        is told apart by the caller. The cost is one request per page of
        the host's records (1,000 by default).
        """
        docs = self._pages('/os-migrations', 'migrations',
                           self._migrations_params({'host': host}))
        return [self._migration(d) for d in docs]

    def disable_service(self, service_id: str, reason: str) -> None:
        """Disable a compute service (2.53: by UUID, with a reason)."""
        self._call('PUT', '/os-services/%s' % service_id,
                   body={'status': 'disabled', 'disabled_reason': reason})

    def enable_service(self, service_id: str) -> None:
        """Enable a compute service (2.53: by UUID; Nova drops the reason)."""
        self._call('PUT', '/os-services/%s' % service_id,
                   body={'status': 'enabled'})

    def explain(self, server: model.Server,
                migration: ty.Optional[model.Migration]
                ) -> ty.Optional[str]:
        """Return Nova's reason for a failure.

        The server fault, or the failed instance-action event (with its
        details from 2.84). None while Nova has not finished recording the
        action: it marks the migration record ``error`` first.
        """
        if server.fault:
            return server.fault
        actions = self._get('/servers/%s/os-instance-actions'
                            % server.id)['instanceActions']
        wanted = ('live-migration',) if migration and \
            migration.kind == model.Kind.LIVE else ('migrate', 'resize')
        for action in actions:  # newest first
            if action.get('action') not in wanted:
                continue
            detail = self._get('/servers/%s/os-instance-actions/%s' % (
                server.id, action['request_id']))['instanceAction']
            events = detail.get('events') or []
            for event in events:
                if event.get('result') == 'Error':
                    where = event.get('host')
                    reason = event.get('details') or action.get('message') \
                        or 'no details (compute API %s needed)' % (
                            EVENT_DETAILS_MICROVERSION)
                    return '%s failed%s: %s' % (
                        event.get('event'),
                        ' on %s' % where if where else '', reason)
            if action.get('message'):
                return action['message']
            if any(not e.get('finish_time') for e in events):
                return None
            break
        return ''

    # -- writes ------------------------------------------------------------
    def start_migration(self, server_id: str, live: bool,
                        host: ty.Optional[str] = None,
                        block_migration: ty.Optional[bool] = None) -> None:
        if live:
            body: dict = {'host': host}
            if self.supports('2.25'):
                body['block_migration'] = ('auto' if block_migration is None
                                           else block_migration)
            else:
                body['block_migration'] = bool(block_migration)
                body['disk_over_commit'] = False
            self._action(server_id, {'os-migrateLive': body})
        else:
            self._action(server_id, {'migrate': {'host': host}
                                     if host else None})

    def confirm(self, server_id: str) -> None:
        self._action(server_id, {'confirmResize': None})

    def revert(self, server_id: str) -> None:
        self._action(server_id, {'revertResize': None})

    def abort(self, server_id: str, migration_id: int) -> None:
        self._call('DELETE', '/servers/%s/migrations/%s' % (
            server_id, migration_id))

    def force_complete(self, server_id: str, migration_id: int) -> None:
        """Force a running live migration to complete (2.22).

        Sent once, as every write: if its answer is lost, the engine does
        not send it again.
        """
        self._call('POST', '/servers/%s/migrations/%s/action' % (
            server_id, migration_id), body={'force_complete': None})

    def _action(self, server_id: str, body: dict) -> None:
        self._call('POST', '/servers/%s/action' % server_id, body=body)
