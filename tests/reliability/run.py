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

"""The whole reliability suite, several times in a row, and its figures.

``tox -e reliability`` runs it: the suite (``tests/reliability``, the load
included) three times, then writes ``doc/source/reliability/results.md``
(scenarios run, faults injected, servers moved, servers lost, the load's
figures) and the bad-input table the docs include.
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
DOC = os.path.join(REPO, 'doc', 'source', 'reliability')


def summarize(records, suites):
    scenarios = [r for r in records if 'scenario' in r]
    loads = [r for r in records if 'load' in r]
    injected = {}
    for r in scenarios:
        for key, value in r.get('injected', {}).items():
            injected[key] = injected.get(key, 0) + value
    lines = [
        '# Reliability suite, %s' % datetime.datetime.now(
            datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'), '',
        'Machine: %d CPUs. Command: `tox -e reliability`.' % os.cpu_count(),
        '', '| suite run | result | tests | wall |',
        '| --- | --- | --- | --- |']
    lines += ['| %d | %s | %s | %.0f s |' % (i + 1, s['result'], s['tests'],
                                             s['wall'])
              for i, s in enumerate(suites)]
    lines += [
        '', '| figure | total over all runs |', '| --- | --- |',
        '| scenarios checked | %d |' % len(scenarios),
        '| faults injected (scenario level) | %d |' % sum(
            r['faults'] for r in scenarios),
        '| proxy faults: 503 / reset before / reset after (lost answer) / '
        'answered at once, sent on later / failed after Nova acted / held '
        '| %d / %d / %d / %d / %d / %d |' % tuple(
            injected.get(k, 0) for k in ('503', 'reset', 'lost', 'late',
                                         'fail', 'held')),
        '| servers checked | %d |' % sum(r['servers'] for r in scenarios),
        '| servers moved | %d |' % sum(r['moved'] for r in scenarios),
        '| servers lost | %d |' % sum(r['lost'] for r in scenarios), '']
    if loads:
        lines += ['## Load: %d servers over 5 hosts, `--mode auto --confirm '
                  '--max-parallel 20`' % loads[0]['servers'], '',
                  '| suite run . batch run | wall s | client CPU s | '
                  'requests/server | client peak RSS MB | cloud RSS MB |',
                  '| --- | --- | --- | --- | --- | --- |']
        suite = 0
        for r in loads:
            suite += r['load'] == 1  # each suite run's load starts at 1
            lines.append('| %d.%d | %s | %s | %s | %s | %s |' % (
                suite, r['load'], r['wall'], r['cpu'],
                r['requests_per_server'], r['peak_rss_mb'],
                r['cloud_rss_mb']))
        lines.append('')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=3)
    parser.add_argument('--concurrency', type=int, default=2)
    parser.add_argument('filters', nargs='*')
    args = parser.parse_args(argv)
    os.makedirs(DOC, exist_ok=True)
    log = tempfile.NamedTemporaryFile(prefix='reliability-', suffix='.jsonl',
                                      delete=False).name
    env = dict(os.environ, RELIABILITY_LOG=log,
               BAD_INPUT_TABLE=os.path.join(DOC, 'bad-input.rst.inc'))
    suites = []
    for i in range(args.runs):
        started = time.monotonic()
        proc = subprocess.run(
            ['stestr', '--test-path', './tests/reliability', 'run',
             '--parallel-class', '--concurrency', str(args.concurrency)]
            + args.filters, cwd=REPO, env=env)
        last = subprocess.run(['stestr', 'last', '--subunit'], cwd=REPO,
                              capture_output=True)
        count = subprocess.run(['subunit-stats'], input=last.stdout,
                               capture_output=True).stdout.decode()
        tests = next((line.split()[-1] for line in count.splitlines()
                      if line.startswith('Total tests')), '?')
        suites.append({'result': 'passed' if proc.returncode == 0
                       else 'FAILED', 'tests': tests,
                       'wall': time.monotonic() - started})
        print('reliability run %d: %s' % (i + 1, suites[-1]), flush=True)
    with open(log) as f:
        records = [json.loads(line) for line in f if line.strip()]
    text = summarize(records, suites)
    with open(os.path.join(DOC, 'results.md'), 'w') as f:
        f.write(text)
    print(text)
    return 0 if all(s['result'] == 'passed' for s in suites) else 1


if __name__ == '__main__':
    sys.exit(main())
