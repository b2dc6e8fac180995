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

"""Build the release and prove it installs where operators install.

``python tools/release_check.py [DIST_DIR]`` (what ``tox -e release`` runs):

1. ``python -m build``: an sdist and a wheel, into DIST_DIR (default
   ``dist/``);
2. ``twine check``: the metadata and the long description render;
3. a fresh venv with python-openstackclient alone (the version the tests
   pin), then the wheel with what it declares: ``openstack --help`` lists
   both commands and says nothing of a failed import, and ``openstack
   complete`` (bash completion) knows their options.

Any miss exits 1 naming it: a dependency the package imports but does not
declare shows here as OSC's "Failed to import" of the plugin.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CONSTRAINTS = os.path.join(REPO, 'tests', 'client-constraints.txt')
COMMANDS = ('server migrate watch', 'server migrate batch',
            'server migrate report')
# Options bash completion must offer, per command.
OPTIONS = {'watch': ('--start', '--confirm', '--timeout'),
           'batch': ('--source-host', '--max-parallel', '--resume'),
           'report': ('--list', '--html')}


def run(*cmd, **kw):
    print('+ ' + ' '.join(cmd), flush=True)
    return subprocess.run(cmd, check=True, **kw)


def pinned(name):
    """The version of ``name`` the client constraints pin."""
    with open(CONSTRAINTS) as f:
        for line in f:
            if re.match(r'^%s==' % re.escape(name), line.strip(), re.I):
                return line.strip()
    return name


def fail(what):
    sys.exit('release check: %s' % what)


def main(argv):
    dist = os.path.abspath(argv[0] if argv else os.path.join(REPO, 'dist'))
    shutil.rmtree(dist, ignore_errors=True)
    run(sys.executable, '-m', 'build', '--sdist', '--wheel',
        '--outdir', dist, REPO)
    wheels = glob.glob(os.path.join(dist, '*.whl'))
    sdists = glob.glob(os.path.join(dist, '*.tar.gz'))
    if len(wheels) != 1 or len(sdists) != 1:
        fail('expected one wheel and one sdist in %s, got %s'
             % (dist, os.listdir(dist)))
    run(sys.executable, '-m', 'twine', 'check', '--strict',
        wheels[0], sdists[0])

    with tempfile.TemporaryDirectory(prefix='release-venv-') as where:
        venv.EnvBuilder(with_pip=True).create(where)
        python = os.path.join(where, 'bin', 'python')
        pip = [python, '-m', 'pip', 'install', '--quiet',
               '--disable-pip-version-check']
        run(*pip, pinned('python-openstackclient'))
        run(*pip, wheels[0])
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        openstack = os.path.join(where, 'bin', 'openstack')
        helped = subprocess.run([openstack, '--help'], env=env, text=True,
                                capture_output=True, timeout=300)
        said = helped.stdout + helped.stderr
        if helped.returncode != 0:
            fail('openstack --help exited %d:\n%s'
                 % (helped.returncode, said[-2000:]))
        if 'Failed to import' in said or 'migrate_plus' in helped.stderr:
            fail('the plugin did not load:\n%s' % helped.stderr[-2000:])
        missing = [c for c in COMMANDS if c not in helped.stdout]
        if missing:
            fail('openstack --help does not list: %s' % ', '.join(missing))
        completion = subprocess.run([openstack, 'complete'], env=env,
                                    text=True, capture_output=True,
                                    timeout=300).stdout
        for command, options in OPTIONS.items():
            line = next((ln for ln in completion.splitlines()
                         if ln.strip().startswith(
                             "cmds_server_migrate_%s=" % command)), '')
            absent = [o for o in options if o not in line]
            if absent:
                fail('openstack complete: server migrate %s lacks %s'
                     % (command, ', '.join(absent)))
    print('release check: %s and %s build, pass twine check, and install '
          'beside python-openstackclient alone: every command loads, with '
          'bash completion' % (os.path.basename(wheels[0]),
                               os.path.basename(sdists[0])))


if __name__ == '__main__':
    main(sys.argv[1:])
