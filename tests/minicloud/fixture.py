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

"""Client side of the minicloud: start it, talk to it, control it, stop it.

``MiniCloud`` is a fixture: ``setUp`` starts the cloud process (from its own
venv, see ``venv.py``) and waits until it serves; ``cleanUp`` always stops it.
It hands tests the endpoints, a clouds.yaml for the ``openstack`` CLI
(clouds ``minicloud-admin`` and ``minicloud-member``), openstacksdk
connections, and the controls. ``python -m tests.minicloud.fixture`` runs one
in the foreground for a person to try.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import typing as ty
import urllib.parse
import urllib.request

import fixtures

from tests.minicloud import venv

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
IMAGE_ID = '155d900f-4e14-4e4c-a73d-069cbf4541e6'  # nova's GlanceFixture
FLAVOR_ID = '1'  # m1.tiny
# What ssh writes on stderr when the destination's host key is unknown (the
# seed document's "Host key verification failed.\r\n"): for
# ``fail_migrations(reason=...)``.
SSH_HOST_KEY = 'Host key verification failed.\r\n'
START_TIMEOUT = 180
# user: (cloud name in clouds.yaml, token). A manager of project demo:
# Nova's default policy (nova >= 32) lets it migrate demo's servers.
CLOUDS = {'admin': ('minicloud-admin', 'admin:admin'),
          'member': ('minicloud-member', 'demo:demo'),
          'manager': ('minicloud-manager', 'boss:demo:manager,member,reader'),
          # An admin whose token the harness expires (expire_token).
          'expiring': ('minicloud-expiring',
                       'ops:admin:admin,manager,member,reader')}


class MiniCloudError(Exception):
    pass


def cloud_python(series: ty.Optional[str] = None) -> str:
    """The cloud venv's python: $MINICLOUD_PYTHON, else the series' venv."""
    return os.environ.get('MINICLOUD_PYTHON') or venv.ensure(name=series)


def openstack_cli() -> str:
    """The ``openstack`` of the venv running the tests (the one under test)."""
    return os.path.join(os.path.dirname(sys.executable), 'openstack')


_FAKETIME_CHECKED: ty.Set[float] = set()


def faketime_env(offset: float) -> ty.Dict[str, str]:
    """Environment that runs a process with its wall clock ``offset`` s off.

    libfaketime (LD_PRELOAD) shifts what the process and its children read
    of the real-time clock (``time.time()``, ``datetime.now()``, ``date``);
    the monotonic clock is left alone, so timeouts and sleeps still work.
    The ``libfaketime`` package (tox's functional deps) ships the library
    and says where it is.
    """
    try:
        import libfaketime
    except ImportError as exc:
        raise MiniCloudError('a shifted client clock needs the libfaketime '
                             'package (tox -e functional installs it): %s'
                             % exc)
    _, env = libfaketime.get_reload_information()
    env = dict(env)
    # Relative: the clock still runs, ``offset`` seconds ahead (or behind).
    env['FAKETIME'] = '%+d' % offset
    env['DONT_FAKE_MONOTONIC'] = '1'
    if offset not in _FAKETIME_CHECKED:
        # The dynamic loader only warns about a library it cannot load (a
        # wheel built for another machine): the clock would silently stay.
        probe = subprocess.run(
            [sys.executable, '-c', 'import time; print(time.time())'],
            env=dict(os.environ, **env), capture_output=True, text=True,
            timeout=60)
        try:
            shift = float(probe.stdout) - time.time()
        except ValueError:
            shift = 0.0
        if abs(shift - offset) > 60:
            raise MiniCloudError('libfaketime does not shift the clock by '
                                 '%ss here (got %.0fs): %s' % (
                                     offset, shift, probe.stderr.strip()))
        _FAKETIME_CHECKED.add(offset)
    return env


class MiniCloud(fixtures.Fixture):
    def __init__(self, computes: int = 3, confirm_window: int = 0,
                 debug: bool = False, max_limit: int = 1000,
                 policy: ty.Optional[ty.Dict[str, str]] = None,
                 series: ty.Optional[str] = None) -> None:
        """A cloud; ``policy``: Nova policy rules over the defaults.

        E.g. ``{'os_compute_api:os-extended-server-attributes': '!'}``; they
        bind every caller, admin included (see ``truth()``).
        ``series``: the Nova series to run (``venv.SERIES``); default
        $MINICLOUD_SERIES, else the newest.
        """
        super().__init__()
        self.series = venv.series(series)
        self.computes = computes
        self.confirm_window = confirm_window
        self.max_limit = max_limit
        self.policy = policy
        self.debug = debug
        self.keep = False  # set when a test failed: keep the logs
        self.info: dict = {}
        self.image_id = IMAGE_ID
        self.flavor_id = FLAVOR_ID
        self.seeded: ty.List[str] = []  # servers seed_servers booted

    # -- lifecycle ---------------------------------------------------------
    def _setUp(self) -> None:
        self.dir = tempfile.mkdtemp(prefix='minicloud-')
        self.addCleanup(self._remove_dir)
        args = [cloud_python(self.series), '-m', 'tests.minicloud.cloud',
                '--state-dir', self.dir, '--computes', str(self.computes),
                '--confirm-window', str(self.confirm_window),
                '--max-limit', str(self.max_limit)]
        if self.debug:
            args.append('--debug')
        if self.policy is not None:
            path = os.path.join(self.dir, 'policy.yaml')
            with open(path, 'w') as f:
                json.dump(self.policy, f, indent=1)  # JSON is YAML
            args += ['--policy-file', path]
        env = dict(os.environ, PYTHONPATH=REPO)
        started = time.monotonic()
        with open(os.path.join(self.dir, 'process.log'), 'wb') as out:
            self.process = subprocess.Popen(
                args, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        self.addCleanup(self.stop)
        ready = os.path.join(self.dir, 'ready.json')
        while not os.path.exists(ready):
            if self.process.poll() is not None:
                self.keep = True
                raise MiniCloudError(
                    'minicloud exited with %s during start:\n%s'
                    % (self.process.returncode, self.log_tail('process.log')))
            if time.monotonic() - started > START_TIMEOUT:
                self.keep = True
                raise MiniCloudError(
                    'minicloud not ready after %ss; logs in %s'
                    % (START_TIMEOUT, self.dir))
            time.sleep(0.1)
        with open(ready) as f:
            self.info = json.load(f)
        nova, placement = venv.SERIES[self.series]
        running = (self.nova_version,
                   self.info['versions'].get('openstack-placement'))
        if running != (nova, placement):
            self.keep = True
            raise MiniCloudError(
                'series %s is nova %s + placement %s, but the cloud runs '
                'nova %s + placement %s (MINICLOUD_PYTHON=%s?)' % (
                    self.series, nova, placement, running[0], running[1],
                    os.environ.get('MINICLOUD_PYTHON')))
        self.start_seconds = time.monotonic() - started
        self.clouds_yaml = os.path.join(self.dir, 'clouds.yaml')
        with open(self.clouds_yaml, 'w') as f:
            f.write(self.clouds_yaml_text())

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def _remove_dir(self) -> None:
        if self.keep:
            print('minicloud: a test failed; logs kept in %s' % self.dir,
                  file=sys.stderr)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, name: str = 'cloud.log', lines: int = 200) -> str:
        try:
            with open(os.path.join(self.dir, name), errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except FileNotFoundError:
            return '(no %s)' % name

    @property
    def rss_mb(self) -> float:
        with open('/proc/%d/status' % self.process.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024
        return 0.0

    @property
    def nova_version(self) -> str:
        """The nova the cloud runs, as installed (e.g. ``29.4.0``)."""
        return self.info['versions']['nova']

    # -- configuration for clients ----------------------------------------
    @property
    def hosts(self) -> ty.List[str]:
        return list(self.info['hosts'])

    def nova_major(self) -> int:
        """The cloud's nova major version (34 is 2026.2)."""
        return int(self.nova_version.split('.')[0])

    def clouds_yaml_text(self, compute_url: ty.Optional[str] = None) -> str:
        """clouds.yaml for this cloud; ``compute_url`` puts a proxy first."""
        compute_url = compute_url or self.info['compute_url']
        lines = ['clouds:']
        for name, token in CLOUDS.values():
            lines += [
                '  %s:' % name,
                '    auth_type: admin_token',
                '    auth:',
                '      endpoint: %s' % compute_url,
                '      token: "%s"' % token,
                '    compute_endpoint_override: %s' % compute_url,
                '    image_endpoint_override: %s' % self.info['image_url'],
                '    placement_endpoint_override: %s'
                % self.info['placement_url'],
                '    identity_endpoint_override: %s'
                % self.info['identity_url'],
                '    identity_api_version: 3',
                '    region_name: RegionOne',
            ]
        return '\n'.join(lines) + '\n'

    def cli_env(self, compute_url: ty.Optional[str] = None,
                clock_offset: float = 0) -> ty.Dict[str, str]:
        """Environment for an ``openstack`` subprocess: only this cloud.

        ``compute_url``: reach nova-api there instead (a fault proxy).
        ``clock_offset``: the subprocess's wall clock runs that many
        seconds ahead of the cloud's (behind if negative); see
        ``faketime_env``.
        """
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        if clock_offset:
            for key, value in faketime_env(clock_offset).items():
                # (libfaketime's LD_PRELOAD already keeps the one we had.)
                if key == 'LD_LIBRARY_PATH' and env.get(key):
                    value = '%s:%s' % (value, env[key])
                env[key] = value
        env['OS_CLIENT_CONFIG_FILE'] = self.clouds_yaml
        if compute_url:
            path = os.path.join(self.dir, 'clouds-%s.yaml' % abs(
                hash(compute_url)))
            with open(path, 'w') as f:
                f.write(self.clouds_yaml_text(compute_url))
            env['OS_CLIENT_CONFIG_FILE'] = path
        return env

    def cli(self, user: str = 'admin') -> ty.List[str]:
        """The ``openstack`` command line up to its arguments, as ``user``."""
        return [openstack_cli(), '--os-cloud', CLOUDS[user][0]]

    def openstack(self, *args: str, user: str = 'admin',
                  timeout: float = 600,
                  env: ty.Optional[ty.Dict[str, str]] = None,
                  clock_offset: float = 0) -> subprocess.CompletedProcess:
        """Run the real ``openstack`` CLI against this cloud.

        ``env``: from ``cli_env``; else this cloud's, with the client's
        clock ``clock_offset`` seconds off.
        """
        cmd = self.cli(user) + list(args)
        env = env or self.cli_env(clock_offset=clock_offset)
        return subprocess.run(cmd, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)

    def connection(self, user: str = 'admin'):
        import openstack.config
        import openstack.connection

        config = openstack.config.OpenStackConfig(
            config_files=[self.clouds_yaml], load_envvars=False)
        return openstack.connection.Connection(
            config=config.get_one(cloud=CLOUDS[user][0]))

    # -- controls ----------------------------------------------------------
    def _post(self, body: dict) -> dict:
        request = urllib.request.Request(
            self.info['control_url'] + '/control',
            data=json.dumps(body).encode(), method='POST',
            headers={'Content-Type': 'application/json'})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.load(response)

    def state(self) -> dict:
        with urllib.request.urlopen(self.info['control_url'] + '/state',
                                    timeout=30) as response:
            return json.load(response)

    def truth(self, server_id: ty.Optional[str] = None
              ) -> ty.Dict[str, dict]:
        """Servers as Nova's database has them, whatever the policy shows.

        ``{id: {'name', 'host', 'node', 'vm_state', 'task_state', 'status',
        'migrations': [{'id', 'status', 'migration_type', 'source_compute',
        'dest_compute'}, ...]}}`` for every server not deleted (only
        ``server_id`` if given). Read in the cloud process, not through
        nova-api: a policy that hides hosts binds the CLI, not the harness.
        """
        url = self.info['control_url'] + '/truth'
        if server_id:
            url += '?server=' + urllib.parse.quote(server_id)
        with urllib.request.urlopen(url, timeout=30) as response:
            return json.load(response)['servers']

    def set_delay(self, seconds: float) -> dict:
        """Every migration from now on takes ``seconds`` longer."""
        return self._post({'action': 'delay', 'seconds': seconds})

    def fail_migrations(self, hosts: ty.List[str],
                        direction: str = 'to',
                        reason: ty.Optional[str] = None) -> dict:
        """Migrations to (or from) these hosts fail in the driver.

        ``reason``: what the failure says instead of the minicloud's words;
        a cold migration then fails as libvirt's does when its ssh to the
        destination fails, ``reason`` being ssh's stderr (``SSH_HOST_KEY``).
        Every call sets it anew (None: the minicloud's words again).
        """
        body = {'action': 'fail', 'hosts': hosts, 'direction': direction}
        if reason is not None:
            body['reason'] = reason
        return self._post(body)

    def stall_live(self, on: bool = True) -> dict:
        """Live migrations from now on stall until forced or aborted.

        Their progress figures decrease, then stay flat at 91% copied; the
        driver's force-complete completes them, an abort cancels them.
        """
        return self._post({'action': 'stall-live', 'on': on})

    def reset(self) -> dict:
        return self._post({'action': 'reset'})

    def expire_token(self, user: str) -> dict:
        """``user``'s token is refused (401) until the next reset."""
        return self._post({'action': 'expire-token',
                           'token': CLOUDS[user][1]})

    def service_down(self, host: str) -> dict:
        return self._post({'action': 'service-down', 'host': host})

    def service_up(self, host: str) -> dict:
        return self._post({'action': 'service-up', 'host': host})

    def set_resources(self, host: str, vcpus: ty.Optional[int] = None,
                      memory_mb: ty.Optional[int] = None,
                      local_gb: ty.Optional[int] = None) -> dict:
        """Make ``host`` report these sizes (Placement's inventory follows).

        Sizes left out go back to the driver's defaults (huge); ``reset``
        restores every host.
        """
        return self._post({'action': 'resources', 'host': host,
                           'vcpus': vcpus, 'memory_mb': memory_mb,
                           'local_gb': local_gb})

    def auto_confirm(self) -> dict:
        """Run Nova's auto-confirm (needs a ``confirm_window``) now."""
        return self._post({'action': 'auto-confirm'})

    def requests(self, reset: bool = False) -> ty.List[str]:
        """The requests nova-api received ("METHOD /path[?query]")."""
        requests = self.state()['requests']
        if reset:
            self._post({'action': 'reset-requests'})
        return requests

    # -- servers -----------------------------------------------------------
    def seed_servers(self, host: ty.Optional[str], count: int,
                     stopped: int = 0,
                     prefix: str = 'seed', user: str = 'admin',
                     timeout: float = 120) -> ty.List[dict]:
        """Boot ``count`` servers on ``host``; stop the first ``stopped``.

        ``host`` None lets the scheduler choose (the only way for a member).

        Returns the servers (API dicts, microversion 2.74) once they are
        ACTIVE or SHUTOFF.
        """
        compute = self.connection(user).compute
        ids = []
        self._seeding(user)
        for i in range(count):
            body = {'server': {'name': '%s-%d' % (prefix, i),
                               'imageRef': self.image_id,
                               'flavorRef': self.flavor_id,
                               'networks': 'none'}}
            if host is not None:
                body['server']['host'] = host
            r = compute.post('/servers', json=body, microversion='2.74')
            _check(r, 202)
            ids.append(r.json()['server']['id'])
            self.seeded.append(ids[-1])
        self.wait_servers(ids, 'ACTIVE', timeout, user=user)
        for server_id in ids[:stopped]:
            _check(compute.post('/servers/%s/action' % server_id,
                                json={'os-stop': None}), 202)
        if stopped:
            self.wait_servers(ids[:stopped], 'SHUTOFF', timeout, user=user)
        return [self.server(i, user=user) for i in ids]

    def _seeding(self, user: str) -> None:
        """Before booting as ``user`` (the external cloud checks it)."""

    def server(self, server_id: str, user: str = 'admin') -> dict:
        r = self.connection(user).compute.get('/servers/%s' % server_id,
                                              microversion='2.74')
        _check(r, 200)
        return r.json()['server']

    def wait_servers(self, ids: ty.List[str], status: str, timeout: float,
                     user: str = 'admin') -> None:
        compute = self.connection(user).compute
        deadline = time.monotonic() + timeout
        pending = set(ids)
        while pending:
            r = compute.get('/servers/detail?all_tenants=1'
                            if user == 'admin' else '/servers/detail')
            _check(r, 200)
            for s in r.json()['servers']:
                if s['id'] in pending:
                    if s['status'] == status:
                        pending.discard(s['id'])
                    elif s['status'] == 'ERROR':
                        raise MiniCloudError('server %s went to ERROR: %s'
                                             % (s['id'], s.get('fault')))
            if pending and time.monotonic() > deadline:
                raise MiniCloudError('servers not %s after %ss: %s'
                                     % (status, timeout, sorted(pending)))
            if pending:
                # A listing of many servers is costly for the one-process
                # cloud: poll less often while many are still building.
                time.sleep(0.2 if len(pending) < 10 else 2)


def _check(response, status: int) -> None:
    if response.status_code != status:
        raise MiniCloudError('%s %s -> %s %s' % (
            response.request.method, response.request.url,
            response.status_code, response.text))


def main() -> None:
    """Run a minicloud in the foreground until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument('--computes', type=int, default=3)
    parser.add_argument('--servers', type=int, default=0,
                        help='seed this many servers on compute1')
    args = parser.parse_args()
    cloud = MiniCloud(computes=args.computes)
    with cloud:
        if args.servers:
            cloud.seed_servers('compute1', args.servers,
                               stopped=args.servers // 3)
        print(cloud.clouds_yaml_text())
        print('# Nova %s (nova %s, %s), ready in %.1fs, nova-api %s, '
              'RSS %.0f MB' % (cloud.series, cloud.nova_version,
                               cloud.info['concurrency'],
                               cloud.start_seconds,
                               cloud.info['compute_url'], cloud.rss_mb))
        print('# try:  OS_CLIENT_CONFIG_FILE=%s openstack --os-cloud '
              'minicloud-admin server list --all-projects' % cloud.clouds_yaml)
        print('# cloud log: %s ; Ctrl-C stops the cloud' %
              cloud.info['log_file'], flush=True)
        try:
            while cloud.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == '__main__':
    main()
