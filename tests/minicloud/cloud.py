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

"""A real OpenStack Compute on 127.0.0.1, in one process (nova's venv).

Run as ``python -m tests.minicloud.cloud --state-dir DIR`` from the repository
root with the cloud venv's python. It serves the real nova-api (osapi_compute
paste app) and placement over HTTP on free ports, runs nova-conductor,
nova-scheduler and N nova-compute services (fake virt driver with test
controls), writes ``DIR/ready.json`` with the endpoints when it is ready and
runs until SIGTERM/SIGINT. See ../shared/design/minicloud.md for why each
piece is the way it is.
"""

import importlib
import inspect
import os

# Must happen before the rest of nova is imported. Threads where nova has a
# native-thread mode (nova >= 33: ``monkey_patch.patch(backend=...)``);
# older nova runs on eventlet only, patched the way its own functional tests
# do it: ``import nova.monkey_patch`` patches everything on import unless
# OS_NOVA_DISABLE_EVENTLET_PATCHING is set.
os.environ['OS_NOVA_DISABLE_EVENTLET_PATCHING'] = '1'
from nova import monkey_patch  # noqa: E402

if 'backend' in inspect.signature(
        getattr(monkey_patch, 'patch', lambda: None)).parameters:
    monkey_patch.patch(backend='threading')
    CONCURRENCY = 'threading'
else:
    del os.environ['OS_NOVA_DISABLE_EVENTLET_PATCHING']
    importlib.reload(monkey_patch)
    CONCURRENCY = 'eventlet'

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import socketserver  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from wsgiref import simple_server  # noqa: E402

import fixtures  # noqa: E402
from oslo_config import cfg  # noqa: E402
from oslo_db.sqlalchemy import enginefacade  # noqa: E402
from oslo_log import log as logging  # noqa: E402
import sqlalchemy  # noqa: E402
from sqlalchemy import pool  # noqa: E402

LOG = logging.getLogger('minicloud')
HERE = os.path.dirname(os.path.abspath(__file__))
# What the FakeDriver reports of a host, set by the 'resources' control.
RESOURCES = ('vcpus', 'memory_mb', 'local_gb')
LOCK_WAIT = 120  # seconds a DB transaction may wait before we call it a hang


# ---------------------------------------------------------------------------
# sqlite: one shared connection per database file, one process-wide lock
# ---------------------------------------------------------------------------
_ENGINES = {}
_ENGINES_LOCK = threading.Lock()
_DB_LOCK = threading.RLock()
_SCOPES = [0]  # transaction scopes serialized so far
_real_create_engine = sqlalchemy.create_engine


def _shared_sqlite_engine(url, *args, **kwargs):
    """Return one shared engine (one connection) per sqlite file.

    oslo.db opens a new connection per session for file sqlite; with ~10
    service threads that ends in "database is locked".
    """
    text = str(url)
    if not text.startswith('sqlite:///'):
        return _real_create_engine(url, *args, **kwargs)
    with _ENGINES_LOCK:
        if text not in _ENGINES:
            kwargs['poolclass'] = pool.StaticPool
            kwargs.setdefault('connect_args', {})['check_same_thread'] = False
            for opt in ('pool_size', 'max_overflow', 'pool_timeout'):
                kwargs.pop(opt, None)
            _ENGINES[text] = _real_create_engine(url, *args, **kwargs)
        return _ENGINES[text]


def _serialize_transactions():
    """Serialize every enginefacade transaction scope.

    A shared connection cannot run two transactions at once (re-entrant
    lock, bounded wait).
    """
    original = enginefacade._TransactionContextManager._transaction_scope

    @contextlib.contextmanager
    def scope(self, context):
        if not _DB_LOCK.acquire(timeout=LOCK_WAIT):
            raise RuntimeError('minicloud: database lock wait exceeded')
        _SCOPES[0] += 1
        try:
            with original(self, context) as resource:
                yield resource
        finally:
            _DB_LOCK.release()

    enginefacade._TransactionContextManager._transaction_scope = scope


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------
class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver listens with a backlog of 5: more concurrent clients than
    # that get "connection reset by peer" from the harness, not from Nova.
    request_queue_size = 128


class _Handler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):
        LOG.debug('http %s: %s', self.server.server_port, fmt % args)


def serve(app, name):
    server = simple_server.make_server('127.0.0.1', 0, app,
                                       server_class=_Server,
                                       handler_class=_Handler)
    thread = threading.Thread(target=server.serve_forever, name=name,
                              daemon=True)
    thread.start()
    return server, 'http://127.0.0.1:%d' % server.server_port


class RequestCounter:
    """WSGI middleware recording what clients ask of the cloud.

    One line per request, "METHOD /path[?query]", and for a server action
    the action too ("POST /v2.1/servers/ID/action migrate"): benchmarks and
    efficiency tests read them through /minicloud/state. Paths under
    ``skip`` (the harness's own controls) are not recorded.
    """

    def __init__(self, app, lock=None, requests=None, skip=None):
        self.app = app
        self.lock = lock or threading.Lock()
        self.requests = [] if requests is None else requests
        self.skip = skip

    def __call__(self, environ, start_response):
        path = environ.get('PATH_INFO', '')
        if self.skip and path.startswith(self.skip):
            return self.app(environ, start_response)
        query = environ.get('QUERY_STRING')
        line = '%s %s%s' % (environ['REQUEST_METHOD'], path,
                            '?' + query if query else '')
        if environ['REQUEST_METHOD'] == 'POST' and path.endswith('/action'):
            line += ' ' + self._action(environ)
        with self.lock:
            self.requests.append(line)
        return self.app(environ, start_response)

    @staticmethod
    def _action(environ):
        """Name the action of the body, and put the body back."""
        try:
            length = int(environ.get('CONTENT_LENGTH') or 0)
        except ValueError:
            length = 0
        body = environ['wsgi.input'].read(length) if length else b''
        environ['wsgi.input'] = io.BytesIO(body)
        try:
            return next(iter(json.loads(body)))
        except (ValueError, TypeError, StopIteration):
            return '?'


# ---------------------------------------------------------------------------
# The cloud
# ---------------------------------------------------------------------------
class _FixtureHost:
    """What nova's Glance/Neutron fixtures expect of a test case."""

    def __init__(self, conf):
        self.conf = conf
        self.fixtures = fixtures.Fixture()
        self.fixtures.setUp()

    def useFixture(self, fixture):  # noqa: N802 (testtools' name)
        return self.fixtures.useFixture(fixture)

    def stub_out(self, old, new):
        self.fixtures.useFixture(fixtures.MonkeyPatch(old, new))

    def flags(self, **kw):
        group = kw.pop('group', None)
        for key, value in kw.items():
            self.conf.set_override(key, value, group)


PLACEMENT_CONF = """
[api]
auth_strategy = noauth2
[placement_database]
connection = sqlite:///{state}/placement.sqlite
sync_on_startup = true
"""

NOVA_CONF = """
[DEFAULT]
host = controller
my_ip = 127.0.0.1
state_path = {state}
log_file = {state}/cloud.log
debug = {debug}
use_stderr = false
transport_url = fake:/
compute_driver = minicloud.MinicloudDriver
periodic_enable = {periodic}
vif_plugging_timeout = 0
vif_plugging_is_fatal = false
allow_resize_to_same_host = false
instance_name_template = instance-%%08x
resize_confirm_window = {confirm_window}
service_down_time = 60
[quota]
instances = -1
cores = -1
ram = -1
[api]
auth_strategy = keystone
max_limit = {max_limit}
[wsgi]
api_paste_config = {state}/api-paste.ini
[database]
connection = sqlite:///{state}/nova_cell1.sqlite
[api_database]
connection = sqlite:///{state}/nova_api.sqlite
[compute]
live_migration_wait_for_vif_plug = false
[scheduler]
discover_hosts_in_cells_interval = -1
[oslo_messaging_notifications]
driver = noop
[oslo_concurrency]
lock_path = {state}/locks
[placement]
auth_type = admin_token
endpoint = {placement_url}
token = admin:admin
[os_vif_linux_bridge]
use_ipv6 = false
{policy}"""


def versions():
    """What this cloud runs: the installed distributions that matter."""
    from importlib import metadata

    found = {}
    for dist in ('nova', 'openstack-placement', 'oslo.db', 'SQLAlchemy',
                 'oslo.messaging', 'eventlet'):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return found


class Cloud:
    def __init__(self, state_dir, computes, debug=False, confirm_window=0,
                 max_limit=1000, policy_file=None):
        self.state_dir = os.path.abspath(state_dir)
        self.policy_file = policy_file and os.path.abspath(policy_file)
        self.max_limit = max_limit
        self.hosts = ['compute%d' % i for i in range(1, computes + 1)]
        self.debug = debug
        self.confirm_window = confirm_window
        self.services = {}
        self.lock = threading.Lock()
        # Hosts whose driver reports other sizes than its defaults.
        self.resized = set()

    # -- start -------------------------------------------------------------
    def start(self):
        os.makedirs(os.path.join(self.state_dir, 'locks'), exist_ok=True)
        sqlalchemy.create_engine = _shared_sqlite_engine
        _serialize_transactions()
        placement_url = self._start_placement()
        self._configure_nova(placement_url)
        self._prepare_nova()
        self.compute_url = self._start_api()
        self._start_services()
        self.aux_url = self._start_aux()
        # The sqlite trick patches oslo.db internals: check that every
        # database (api, cell0, cell1, placement) shares its connection and
        # that transactions do take the lock, whatever this oslo.db is.
        with _ENGINES_LOCK:
            shared = sorted(os.path.basename(url) for url in _ENGINES)
        if len(shared) < 4:
            raise RuntimeError('minicloud: only %s share one sqlite '
                               'connection; this oslo.db does not create '
                               'engines through sqlalchemy.create_engine'
                               % (shared,))
        if not _SCOPES[0]:
            raise RuntimeError('minicloud: no oslo.db transaction went '
                               'through the lock; this oslo.db does not use '
                               '_TransactionContextManager._transaction_scope')
        return {
            'pid': os.getpid(),
            'compute_url': self.compute_url + '/v2.1',
            'placement_url': placement_url,
            'identity_url': self.aux_url + '/identity/v3',
            'image_url': self.aux_url + '/image',
            'control_url': self.aux_url + '/minicloud',
            'hosts': self.hosts,
            'log_file': os.path.join(self.state_dir, 'cloud.log'),
            'versions': versions(),
            'concurrency': CONCURRENCY,
            'shared_sqlite': shared,
        }

    def _start_placement(self):
        from placement import conf as placement_conf
        from placement import db_api as placement_db
        from placement import deploy as placement_deploy

        conf_path = os.path.join(self.state_dir, 'placement.conf')
        with open(conf_path, 'w') as f:
            f.write(PLACEMENT_CONF.format(state=self.state_dir))
        pconf = cfg.ConfigOpts()
        placement_conf.register_opts(pconf)
        pconf([], project='placement', default_config_files=[conf_path])
        placement_db.configure(pconf)
        app = placement_deploy.loadapp(pconf)
        from tests.minicloud import auth
        self.placement_server, url = serve(auth.TokenAuth(app, placement=True),
                                           'placement-http')
        return url

    def _configure_nova(self, placement_url):
        import nova.conf
        from nova import config as nova_config

        conf_path = os.path.join(self.state_dir, 'nova.conf')
        with open(conf_path, 'w') as f:
            f.write(NOVA_CONF.format(state=self.state_dir,
                                     debug=str(self.debug).lower(),
                                     confirm_window=self.confirm_window,
                                     # Nova confirms by itself only from a
                                     # periodic task.
                                     periodic=str(
                                         self.confirm_window > 0).lower(),
                                     max_limit=self.max_limit,
                                     placement_url=placement_url,
                                     policy=self._policy_conf()))
        # nova 34 dropped noauth2: swap keystonemiddleware for our filter
        # (older nova too, so every series takes the same tokens).
        import nova
        with open(os.path.join(os.path.dirname(nova.__file__), '..', '..',
                               '..', '..', 'etc', 'nova',
                               'api-paste.ini')) as f:
            paste = f.read()
        paste = paste.replace('keystonemiddleware.auth_token:filter_factory',
                              'tests.minicloud.auth:filter_factory')
        with open(os.path.join(self.state_dir, 'api-paste.ini'), 'w') as f:
            f.write(paste)

        self.conf = nova.conf.CONF
        nova_config.parse_args(['minicloud'],
                               default_config_files=[conf_path],
                               init_rpc=False, configure_db=False)
        logging.setup(self.conf, 'nova')

    def _policy_conf(self):
        """Rules that override Nova's defaults, for every caller alike."""
        if not self.policy_file:
            return ''
        return '[oslo_policy]\npolicy_file = %s\n' % self.policy_file

    def _prepare_nova(self):
        from nova import context
        from nova.db.api import api as api_db_api
        from nova.db.main import api as main_db_api
        from nova.db import migration
        from nova import objects
        from nova import rpc
        from nova.tests import fixtures as nova_fixtures
        from nova.virt import node

        objects.register_all()
        # nova only loads drivers from its own namespace.
        from tests.minicloud import driver
        sys.modules['nova.virt.minicloud'] = driver
        main_db_api.configure(self.conf)
        api_db_api.configure(self.conf)

        # One in-memory bus for every transport (nova's RPCFixture does the
        # same): each cell mapping URL would otherwise get its own bus.
        self._host = _FixtureHost(self.conf)
        self._host.fixtures.useFixture(nova_fixtures.RPCFixture())

        migration.db_sync(database='api')
        migration.db_sync(database='main')
        ctxt = context.get_admin_context()
        cell0_url = 'sqlite:///%s/nova_cell0.sqlite' % self.state_dir
        cell0 = objects.CellMapping(
            ctxt, uuid=objects.CellMapping.CELL0_UUID, name='cell0',
            transport_url='none:///', database_connection=cell0_url)
        cell0.create()
        with context.target_cell(ctxt, cell0) as cctxt:
            migration.db_sync(database='main', context=cctxt)
        self.cell1 = objects.CellMapping(
            ctxt, uuid='1d9d0b7b-8e4b-4b6a-9d40-3f3d0c5e0001', name='cell1',
            transport_url='fake:/',
            database_connection=self.conf.database.connection)
        self.cell1.create()

        # Image and network services: nova's own in-process fakes.
        self.glance = nova_fixtures.GlanceFixture(self._host)
        self._host.fixtures.useFixture(self.glance)
        self._host.fixtures.useFixture(
            nova_fixtures.NeutronFixture(self._host))
        nova_fixtures.DefaultFlavorsFixture().setUp()

        # Several computes share one state_path: no node identity files.
        self._host.stub_out('nova.virt.node.read_local_node_uuid',
                            lambda: None)
        self._host.stub_out('nova.virt.node.write_local_node_uuid',
                            lambda uuid: None)
        from nova.compute import manager
        if hasattr(manager.ComputeManager, '_ensure_existing_node_identity'):
            self._host.stub_out(
                'nova.compute.manager.ComputeManager.'
                '_ensure_existing_node_identity', lambda self, ref: None)
        del node, rpc

    def _start_api(self):
        from nova.api.openstack import wsgi_app
        from nova.api import wsgi

        wsgi_app._setup_service(self.conf.host, 'osapi_compute')
        app = wsgi.Loader().load_app('osapi_compute')
        self.counter = RequestCounter(app)
        self.api_server, url = serve(self.counter, 'nova-api-http')
        return url

    def _start_services(self):
        for binary in ('nova-conductor', 'nova-scheduler'):
            svc = self._make_service(binary, self.conf.host)
            svc.start()
        for host in self.hosts:
            self.start_compute(host, first=True)

    def _make_service(self, binary, host):
        from nova.compute import rpcapi as compute_rpcapi
        from nova import service

        kwargs = {}
        # A second compute topic exists from nova 33 only.
        if (binary == 'nova-compute' and 'topic_alt' in
                inspect.signature(service.Service.create).parameters):
            kwargs['topic_alt'] = compute_rpcapi.RPC_TOPIC_ALT
        return service.Service.create(binary=binary, host=host,
                                      topic=binary[len('nova-'):], **kwargs)

    def start_compute(self, host, first=False):
        from nova import context
        from nova import objects

        ctxt = context.get_admin_context()
        if first:
            objects.HostMapping(ctxt, host=host,
                                cell_mapping=self.cell1).create()
        # Some compute code reads CONF.host instead of its service's host.
        self.conf.set_override('host', host)
        try:
            svc = self._make_service('nova-compute', host)
            svc.start()
        finally:
            self.conf.clear_override('host')
        with context.target_cell(ctxt, self.cell1) as cctxt:
            for cn in objects.ComputeNodeList.get_all_by_host(cctxt, host):
                if not cn.mapped:
                    cn.mapped = 1
                    cn.save()
            ref = objects.Service.get_by_compute_host(cctxt, host)
            if ref.forced_down:
                ref.forced_down = False
                ref.save()
        self.services[host] = svc
        self.resized.discard(host)  # a new driver: the default sizes

    def stop_compute(self, host):
        """Take a compute down as a crash would.

        It stops consuming RPC and heartbeating. (Service.stop() would shut
        nova's process-wide thread pools down, i.e. every service of this
        one-process cloud.)
        """
        from nova import context
        from nova import objects

        svc = self.services.pop(host)
        for server in (svc.rpcserver, getattr(svc, 'rpcserver_alt', None)):
            if server is not None:
                server.stop()
                server.wait()
        svc.tg.stop()
        # Mark it down at once, as fencing or an operator would
        # (`openstack compute service set --down`); casts sent to it meanwhile
        # wait on the bus for the next start, as with RabbitMQ.
        ctxt = context.get_admin_context()
        with context.target_cell(ctxt, self.cell1) as cctxt:
            ref = objects.Service.get_by_compute_host(cctxt, host)
            ref.forced_down = True
            ref.save()

    def _start_aux(self):
        from tests.minicloud import aux_app

        self.aux = aux_app.AuxApp('', list(self.glance.images.values()), self)
        # Identity and image requests are the client's too: count them in
        # the same log; the harness's controls are not.
        counted = RequestCounter(self.aux, lock=self.counter.lock,
                                 requests=self.counter.requests,
                                 skip='/minicloud')
        server, url = serve(counted, 'aux-http')
        self.aux.base_url = url
        return url

    # -- controls (called from the aux app's threads) ----------------------
    def state(self):
        from tests.minicloud import driver

        with self.counter.lock:
            requests = list(self.counter.requests)
        return {'controls': driver.get_controls(),
                'hosts': self.hosts,
                'up': sorted(self.services),
                'requests': requests}

    def truth(self, server_id=None):
        """Where each server really is, read from Nova's objects.

        Policy may hide hosts from every API caller, admin included (see
        ``--policy-file``); tests still need to know where servers run.
        Servers and their migration records, deleted ones left out.
        """
        from nova.api.openstack import common
        from nova import context
        from nova import objects

        ctxt = context.get_admin_context()
        filters = {'deleted': False}
        if server_id:
            filters['uuid'] = server_id
        servers = {}
        with context.target_cell(ctxt, self.cell1) as cctxt:
            for inst in objects.InstanceList.get_by_filters(cctxt, filters):
                servers[inst.uuid] = {
                    'name': inst.display_name, 'host': inst.host,
                    'node': inst.node, 'vm_state': inst.vm_state,
                    'task_state': inst.task_state,
                    'status': common.status_from_state(inst.vm_state,
                                                       inst.task_state),
                    'migrations': [],
                }
            mfilters = {'instance_uuid': server_id} if server_id else {}
            for mig in objects.MigrationList.get_by_filters(cctxt, mfilters):
                if mig.instance_uuid in servers:
                    servers[mig.instance_uuid]['migrations'].append({
                        'id': mig.id, 'status': mig.status,
                        'migration_type': mig.migration_type,
                        'source_compute': mig.source_compute,
                        'dest_compute': mig.dest_compute,
                    })
        for server in servers.values():
            server['migrations'].sort(key=lambda m: m['id'])
        return {'servers': servers}

    def control(self, request):
        from tests.minicloud import auth
        from tests.minicloud import driver

        action = request.get('action')
        with self.lock:
            if action == 'delay':
                driver.set_controls(delay=float(request['seconds']))
            elif action == 'fail':
                direction = request.get('direction', 'to')
                if direction not in ('to', 'from'):
                    raise ValueError('direction must be "to" or "from"')
                hosts = request.get('hosts', [])
                driver.set_controls(**{'fail_' + direction: hosts,
                                       'fail_reason': request.get('reason')
                                       or ''})
            elif action == 'stall-live':
                driver.set_controls(stall_live=bool(request.get('on', True)))
            elif action == 'reset':
                driver.set_controls(delay=0, fail_to=[], fail_from=[],
                                    fail_reason='', stall_live=False)
                auth.EXPIRED.clear()
                for host in sorted(self.resized):
                    if host in self.services:
                        self.set_resources(host)
                    else:
                        # Down: its next start has a new driver, defaults.
                        self.resized.discard(host)
            elif action == 'expire-token':
                auth.EXPIRED.add(request['token'])
            elif action == 'service-down':
                host = self._known(request['host'])
                if host in self.services:
                    self.stop_compute(host)
            elif action == 'service-up':
                host = self._known(request['host'])
                if host not in self.services:
                    self.start_compute(host)
            elif action == 'auto-confirm':
                # Nova's own periodic task, run now rather than in up to
                # 60 s: confirms what waited longer than the window.
                from nova import context
                for host in sorted(self.services):
                    self.services[host].manager._poll_unconfirmed_resizes(
                        context.get_admin_context())
            elif action == 'resources':
                self.set_resources(self._known(request['host']), **{
                    k: request.get(k) for k in RESOURCES})
            elif action == 'reset-requests':
                with self.counter.lock:
                    self.counter.requests.clear()
            else:
                raise ValueError('unknown action %r' % (action,))
        return self.state()

    def set_resources(self, host, **sizes):
        """What ``host``'s driver reports, and so its inventory in Placement.

        nova's FakeDriver reports its ``vcpus``, ``memory_mb`` and
        ``local_gb`` (class defaults: huge); a size left out goes back to the
        default. The resource tracker's update then sets the provider's
        inventory for real, as its periodic task would.
        """
        from nova import context

        if host not in self.services:
            raise ValueError('host %r is down' % (host,))
        manager = self.services[host].manager
        for key in RESOURCES:
            value = sizes.get(key)
            if value is None:
                manager.driver.__dict__.pop(key, None)
            else:
                setattr(manager.driver, key, int(value))
            # What the hypervisors API shows, too.
            setattr(manager.driver.resources, key,
                    getattr(manager.driver, key))
        if any(sizes.get(key) is not None for key in RESOURCES):
            self.resized.add(host)
        else:
            self.resized.discard(host)
        manager.update_available_resource(context.get_admin_context())

    def _known(self, host):
        if host not in self.hosts:
            raise ValueError('unknown host %r; hosts: %s'
                             % (host, ', '.join(self.hosts)))
        return host


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--state-dir', required=True)
    parser.add_argument('--computes', type=int, default=3)
    parser.add_argument('--confirm-window', type=int, default=0,
                        help='nova resize_confirm_window (0: never); '
                        'above 0 also turns periodic tasks on')
    parser.add_argument('--max-limit', type=int, default=1000,
                        help="nova's [api] max_limit: the page size")
    parser.add_argument('--policy-file',
                        help="nova's [oslo_policy] policy_file: rules that "
                        'override the defaults (e.g. hide hosts)')
    parser.add_argument('--debug', action='store_true')
    args = parser.parse_args(argv)

    # Service threads are not daemons: any exit must be os._exit.
    def stop(signum, frame):
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    try:
        info = Cloud(args.state_dir, args.computes, args.debug,
                     args.confirm_window, args.max_limit,
                     args.policy_file).start()
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    info['start_seconds'] = round(time.monotonic() - started, 2)
    ready = os.path.join(args.state_dir, 'ready.json')
    with open(ready + '.tmp', 'w') as f:
        json.dump(info, f)
    os.replace(ready + '.tmp', ready)
    LOG.info('minicloud ready: %s', info)
    # It runs in a session of its own: if whoever started it dies without
    # stopping it (a killed test runner), stop with it.
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    LOG.info('minicloud: parent %s is gone, stopping', parent)
    os._exit(0)


if __name__ == '__main__':
    main()
