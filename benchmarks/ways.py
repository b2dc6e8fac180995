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
import sys
import typing as ty

from benchmarks import measure

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_SCRIPT = os.path.join(HERE, 'seed_way.sh')
FLOOR_SCRIPT = os.path.join(HERE, 'floor.py')
SOURCE = 'compute1'
COLD = 'cold'
LIVE = 'live'
AUTO = 0  # ``parallel`` of a way that lets the batch choose
DEFAULT = -1  # ``parallel`` of a way that gives no limit: batch's default
BATCH_INTERVAL = 2.0  # batch's --interval default
# The family of floor clients: in flight x poll interval.
IN_FLIGHT = (3, 5, 10, 20)
POLLS = (0.2, 0.5, 1.0)


@dataclasses.dataclass
class Way:
    name: str
    kind: str  # COLD or LIVE
    # server IDs -> the commands to run, one after another
    commands: ty.Callable[[ty.List[str]], ty.List[ty.List[str]]]
    parallel: int = 1  # migrations in flight at once (AUTO: chosen)
    batch: bool = False
    family: bool = False  # a member of the floor's family
    interval: float = 0.0  # its poll interval (batch, family)

    def __post_init__(self) -> None:
        if self.batch and not self.interval:
            self.interval = BATCH_INTERVAL

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


def _batch_ids(*options: str
               ) -> ty.Callable[[ty.List[str]], ty.List[ty.List[str]]]:
    # The same servers named on the command line, as a list of IDs.
    def commands(ids: ty.List[str]) -> ty.List[ty.List[str]]:
        return [['openstack', 'server', 'migrate', 'batch'] +
                list(options) + ['-f', 'json'] + list(ids)]
    return commands


def _auto(*options: str
          ) -> ty.Callable[[ty.List[str]], ty.List[ty.List[str]]]:
    # --max-parallel auto as an operator types it: the per-host limits are
    # off with auto unless given, so auto's own judgement bounds the batch.
    def commands(ids: ty.List[str]) -> ty.List[ty.List[str]]:
        return _batch(*options, '--max-parallel', 'auto')(ids)
    return commands


def member(kind: str, in_flight: int, interval: float) -> Way:
    """One floor client (``floor.py``), run by this venv's python."""
    def commands(ids: ty.List[str]) -> ty.List[ty.List[str]]:
        return [[sys.executable, FLOOR_SCRIPT, '--kind', kind,
                 '--in-flight', str(in_flight), '--interval', str(interval),
                 '--source', SOURCE] + list(ids)]
    name = 'floor %s: %d in flight, poll %g s' % (kind, in_flight, interval)
    return Way(name, kind, commands, parallel=in_flight, family=True,
               interval=interval)


def parse_members(text: str) -> ty.List[ty.Tuple[int, float]]:
    """``5x1.0,10x0.5`` -> [(5, 1.0), (10, 0.5)] (in flight x interval)."""
    out = []
    for item in text.split(','):
        left, sep, right = item.strip().partition('x')
        try:
            n, interval = int(left), float(right)
        except ValueError:
            raise ValueError('member %r: write IN_FLIGHTxINTERVAL, e.g. '
                             '5x1.0' % item) from None
        if not sep or n < 1 or interval <= 0:
            raise ValueError('member %r: write IN_FLIGHTxINTERVAL, e.g. '
                             '5x1.0' % item)
        out.append((n, interval))
    return out


def family(members: ty.Optional[ty.Sequence[ty.Tuple[int, float]]] = None,
           kinds: ty.Sequence[str] = (COLD, LIVE)) -> ty.List[Way]:
    """Every member for each kind: all of IN_FLIGHT x POLLS by default."""
    chosen = list(members) if members is not None else [
        (n, p) for n in IN_FLIGHT for p in POLLS]
    return [member(k, n, p) for k in kinds for n, p in chosen]


def _limits(n: int) -> ty.List[str]:
    return ['--max-parallel', str(n), '--max-per-source', str(n),
            '--max-per-destination', str(n)]


DEFAULTS = 'plugin batch (defaults)'
LIVE_DEFAULTS = 'plugin batch live (defaults)'
BY_IDS = 'plugin batch by IDs (defaults)'
AUTO_COLD = 'plugin batch --max-parallel auto'
AUTO_LIVE = 'plugin batch live --max-parallel auto'

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
    Way(DEFAULTS, COLD, _batch('--confirm'), parallel=DEFAULT,
        batch=True),
    Way(BY_IDS, COLD, _batch_ids('--confirm'), parallel=DEFAULT,
        batch=True),
    Way(AUTO_COLD, COLD, _auto('--confirm'), parallel=AUTO, batch=True),
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
    Way(LIVE_DEFAULTS, LIVE, _batch('--mode', 'live'),
        parallel=DEFAULT, batch=True),
    Way(AUTO_LIVE, LIVE, _auto('--mode', 'live'), parallel=AUTO, batch=True),
]
SEED = WAYS[0].name
