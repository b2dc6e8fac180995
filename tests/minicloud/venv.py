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
client venv is what users have). One venv per Nova series (``SERIES``), each
from ``cloud-requirements-<series>.txt`` and the whole-venv pins of
``cloud-constraints-<series>.txt``. ``python -m tests.minicloud.venv [PATH]``
prints the venv's python for the series named by ``MINICLOUD_SERIES``
(default: ``DEFAULT_SERIES``); it is rebuilt only when the pins change.
"""

import hashlib
import os
import subprocess
import sys
import typing as ty
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
TOX_DIR = os.path.join(HERE, '..', '..', '.tox')

# series -> (nova, placement): what each series' cloud venv runs.
SERIES = {
    '2024.1': ('29.4.0', '11.0.1'),
    '2025.1': ('31.3.1', '13.0.1'),
    '2026.1': ('33.0.2', '15.0.0'),
    '2026.2': ('34.0.0', '16.0.0'),
}
DEFAULT_SERIES = '2026.2'


def series(name: ty.Optional[str] = None) -> str:
    """The series to run: ``name``, else $MINICLOUD_SERIES, else default."""
    name = name or os.environ.get('MINICLOUD_SERIES') or DEFAULT_SERIES
    if name not in SERIES:
        raise ValueError('unknown Nova series %r (MINICLOUD_SERIES); '
                         'known: %s' % (name, ', '.join(sorted(SERIES))))
    return name


def requirements(name: str) -> str:
    return os.path.join(HERE, 'cloud-requirements-%s.txt' % name)


def constraints(name: str) -> str:
    return os.path.join(HERE, 'cloud-constraints-%s.txt' % name)


def default_path(name: str) -> str:
    """Where a series' venv lives: minicloud-cloud-<series>.

    In $MINICLOUD_VENV_DIR (tox sets its work dir), else the repo's .tox.
    """
    return os.path.abspath(os.path.join(
        os.environ.get('MINICLOUD_VENV_DIR') or TOX_DIR,
        'minicloud-cloud-' + name))


def _pins_digest(name: str) -> str:
    digest = hashlib.sha256()
    for path in (requirements(name), constraints(name)):
        with open(path, 'rb') as f:
            digest.update(f.read())
    return digest.hexdigest()


def ensure(path: ty.Optional[str] = None,
           name: ty.Optional[str] = None) -> str:
    """Return the python of an up-to-date cloud venv for a series."""
    name = series(name)
    path = os.path.abspath(path or default_path(name))
    python = os.path.join(path, 'bin', 'python')
    marker = os.path.join(path, '.minicloud-pins')
    digest = _pins_digest(name)
    try:
        with open(marker) as f:
            if f.read().strip() == digest and os.path.exists(python):
                return python
    except FileNotFoundError:
        pass
    print('minicloud: installing nova %s and placement %s (series %s) into '
          '%s (about a minute, once)' % (SERIES[name] + (name, path)),
          file=sys.stderr, flush=True)
    venv.EnvBuilder(clear=True, with_pip=True).create(path)
    subprocess.run([python, '-m', 'pip', 'install', '--quiet',
                    '--disable-pip-version-check',
                    '-r', requirements(name), '-c', constraints(name)],
                   check=True)
    with open(marker, 'w') as f:
        f.write(digest)
    return python


def main(argv: ty.List[str]) -> None:
    """``[PATH]``: the series' venv there; ``--all SERIES...``: several."""
    if argv[:1] == ['--all']:
        for name in argv[1:]:
            print(ensure(name=name))
    else:
        print(ensure(argv[0] if argv else None))


if __name__ == '__main__':
    main(sys.argv[1:])
