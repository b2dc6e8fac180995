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

"""The core scenarios against older Nova series, one series after another.

``python -m tests.functional.compat [--concurrency N] [--oldest | SERIES ...]``
(what ``tox -e functional-compat`` and ``functional-oldest`` run): for each
series (default $MINICLOUD_COMPAT_SERIES, else every series older than the
default one; ``--oldest``: the oldest alone) it
builds the series' cloud venv if its pins changed, then runs the functional
tests listed in ``compat-tests.txt`` (existing scenarios, selected by id)
with ``MINICLOUD_SERIES`` set. It prints how long each took and exits 1 if
any series failed.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from tests.minicloud import venv

HERE = os.path.dirname(os.path.abspath(__file__))
TEST_LIST = os.path.join(HERE, 'compat-tests.txt')
OLDER = [s for s in sorted(venv.SERIES) if s != venv.DEFAULT_SERIES]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('series', nargs='*',
                        help='default: $MINICLOUD_COMPAT_SERIES, else %s'
                        % ' '.join(OLDER))
    parser.add_argument('--oldest', action='store_true',
                        help='the oldest series only (%s): what CI runs'
                        % OLDER[0])
    parser.add_argument('--concurrency', type=int, default=2,
                        help='stestr workers (one cloud per test class)')
    args = parser.parse_args(argv)
    if args.oldest:
        chosen = OLDER[:1]
    else:
        chosen = args.series or os.environ.get(
            'MINICLOUD_COMPAT_SERIES', '').replace(',', ' ').split() or OLDER
    for name in chosen:
        venv.series(name)  # unknown names fail before anything runs
    # The list with its comments left out: stestr takes test ids only.
    with open(TEST_LIST) as f:
        ids = [line.split('#')[0].strip() for line in f]
    known = subprocess.run(
        ['stestr', '--test-path', './tests/functional', 'list'],
        capture_output=True, text=True, check=True).stdout.split()
    missing = [i for i in ids if i and i not in known]
    if missing:  # stestr would run the rest and say nothing
        sys.exit('compat-tests.txt names tests that do not exist: %s'
                 % ', '.join(missing))
    listed = tempfile.NamedTemporaryFile('w', prefix='compat-',
                                         suffix='.txt', delete=False)
    with listed:
        listed.write(''.join(i + '\n' for i in ids if i))
    results = []
    for name in chosen:
        started = time.monotonic()
        venv.ensure(name=name)
        built = time.monotonic() - started
        env = dict(os.environ, MINICLOUD_SERIES=name)
        env.pop('MINICLOUD_PYTHON', None)  # the series' own venv
        nova, placement = venv.SERIES[name]
        print('== Nova %s (nova %s, placement %s): %d scenarios'
              % (name, nova, placement, len(list(filter(None, ids)))),
              flush=True)
        started = time.monotonic()
        rc = subprocess.run(
            ['stestr', '--test-path', './tests/functional', '--parallel-class',
             'run', '--concurrency', str(args.concurrency),
             '--load-list', listed.name], env=env).returncode
        results.append((name, nova, placement, rc, built,
                        time.monotonic() - started))
    os.unlink(listed.name)
    print('\nseries  nova    placement  result  venv(s)  tests(s)')
    for name, nova, placement, rc, built, ran in results:
        print('%-7s %-7s %-10s %-7s %7.0f  %8.0f' % (
            name, nova, placement, 'ok' if rc == 0 else 'FAILED', built, ran))
    sys.exit(1 if any(r[3] for r in results) else 0)


if __name__ == '__main__':
    main()
