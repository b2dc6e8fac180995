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

"""Create (or reuse) the minicloud's own venv: nova and placement, pinned.

The cloud lives in its own venv, apart from the client venv under test (the
client venv is what users have). ``python -m tests.minicloud.venv PATH``
prints the venv's python; it is rebuilt only when the pins change.
"""

import hashlib
import os
import subprocess
import sys
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(HERE, 'cloud-requirements.txt')
CONSTRAINTS = os.path.join(HERE, 'cloud-constraints.txt')
DEFAULT_PATH = os.path.join(HERE, '..', '..', '.tox', 'minicloud-cloud')


def _pins_digest() -> str:
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, CONSTRAINTS):
        with open(path, 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()


def ensure(path: str = DEFAULT_PATH) -> str:
    """Return the python of an up-to-date cloud venv at ``path``."""
    path = os.path.abspath(path)
    python = os.path.join(path, 'bin', 'python')
    marker = os.path.join(path, '.minicloud-pins')
    digest = _pins_digest()
    try:
        with open(marker) as f:
            if f.read().strip() == digest and os.path.exists(python):
                return python
    except FileNotFoundError:
        pass
    print('minicloud: installing nova and placement into %s (about a '
          'minute, once)' % path, file=sys.stderr, flush=True)
    venv.EnvBuilder(clear=True, with_pip=True).create(path)
    subprocess.run([python, '-m', 'pip', 'install', '--quiet',
                    '--disable-pip-version-check',
                    '-r', REQUIREMENTS, '-c', CONSTRAINTS], check=True)
    with open(marker, 'w') as f:
        f.write(digest)
    return python


if __name__ == '__main__':
    print(ensure(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_PATH))
