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

"""The ways of moving N servers off a host that the benchmark compares.

Each way is the commands an operator would type or script, run one after
another through the real ``openstack`` CLI; ``run`` returns their summed
cost. Only the client's processes are measured.
"""

import dataclasses
import json
import os
import typing as ty

from benchmarks import measure

SEED_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'seed_way.sh')
SOURCE = 'compute1'
COLD = 'cold'
LIVE = 'live'


@dataclasses.dataclass
class Way:
    name: str
    kind: str  # COLD or LIVE
    # server IDs -> the commands to run, one after another
    commands: ty.Callable[[ty.List[str]], ty.List[ty.List[str]]]
    parallel: int = 1  # migrations in flight at once
    batch: bool = False

    def run(self, openstack: str, env: ty.Dict[str, str],
            ids: ty.List[str]) -> measure.Cost:
        total = measure.Cost()
        for cmd in self.commands(ids):
            if cmd[0] == 'openstack':
                cmd = [openstack] + cmd[1:]
            cost, out = measure.run(cmd, env)
            if self.batch and not cost.failures:
                cost.failures.extend(_batch_failures(out, self.kind))
            total.add(cost)
        return total


def _batch_failures(stdout: str, kind: str) -> ty.List[str]:
    wanted = 'confirmed' if kind == COLD else 'migrated'
    try:
        rows = json.loads(stdout)
    except ValueError:
        return ['batch stdout is not JSON: %r' % stdout[:200]]
    return ['%s: %s %s' % (r.get('Server ID'), r.get('Result'),
                           r.get('Message'))
            for r in rows if r.get('Result') != wanted]


def _each(*templates: ty.Sequence[str]
          ) -> ty.Callable[[ty.List[str]], ty.List[ty.List[str]]]:
    """These commands for each server in turn ({} is the server)."""
    def commands(ids: ty.List[str]) -> ty.List[ty.List[str]]:
        return [[a.replace('{}', sid) for a in template]
                for sid in ids for template in templates]
    return commands


def _batch(*options: str
           ) -> ty.Callable[[ty.List[str]], ty.List[ty.List[str]]]:
    # As an operator drains a host: the benchmark's servers are all that
    # is on it.
    def commands(ids: ty.List[str]) -> ty.List[ty.List[str]]:
        return [['openstack', 'server', 'migrate', 'batch', '--source-host',
                 SOURCE] + list(options) + ['-f', 'json']]
    return commands


def _limits(n: int) -> ty.List[str]:
    return ['--max-parallel', str(n), '--max-per-source', str(n),
            '--max-per-destination', str(n)]


WAYS = [
    Way('seed document (show loop)', COLD,
        lambda ids: [['bash', SEED_SCRIPT] + ids]),
    Way('core OSC (--wait + confirm)', COLD,
        _each(['openstack', 'server', 'migrate', '--wait', '{}'],
              ['openstack', 'server', 'migration', 'confirm', '{}'])),
    Way('plugin watch --start --confirm', COLD,
        _each(['openstack', 'server', 'migrate', 'watch', '--start',
               '--confirm', '{}', '-f', 'json'])),
    Way('plugin batch --max-parallel 1', COLD,
        _batch('--confirm', *_limits(1)), parallel=1, batch=True),
    Way('plugin batch --max-parallel 10', COLD,
        _batch('--confirm', *_limits(10)), parallel=10, batch=True),
    Way('core OSC live (--wait)', LIVE,
        _each(['openstack', 'server', 'migrate', '--live-migration',
               '--wait', '{}'])),
    Way('plugin watch --start --live-migration', LIVE,
        _each(['openstack', 'server', 'migrate', 'watch', '--start',
               '--live-migration', '{}', '-f', 'json'])),
    Way('plugin batch live --max-parallel 1', LIVE,
        _batch('--mode', 'live', *_limits(1)), parallel=1, batch=True),
    Way('plugin batch live --max-parallel 10', LIVE,
        _batch('--mode', 'live', *_limits(10)), parallel=10, batch=True),
]
SEED = WAYS[0].name
