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

"""Turn a benchmark's results into medians, targets and a Markdown page.

Pure functions of the results dict that ``run.py`` writes, so a results
file can be re-reported: ``python -m benchmarks.report results.json``.
"""

import json
import statistics
import sys
import typing as ty

from benchmarks import inflight
from benchmarks import ways as ways_mod

P10 = 'plugin batch --max-parallel 10'
P1 = 'plugin batch --max-parallel 1'
WATCH = 'plugin watch --start --confirm'


def median(values: ty.Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float('nan')


def _nova(run: dict) -> float:
    """Requests that reached nova-api (NaN: older results did not say)."""
    return float(run['requests'].get('nova_api', float('nan')))


def brief(failure: str) -> str:
    """One line of a failure: a CLI's usage error ends with what matters."""
    lines = [line.strip() for line in failure.splitlines() if line.strip()]
    if len(lines) <= 1:
        return ' '.join(lines)
    head = lines[0].split(':', 1)[0]  # "/path/openstack ... exited 2"
    return '%s: %s' % (head.rsplit('/', 1)[-1], lines[-1])


def _f(value: float, fmt: str) -> str:
    """The figure, or "-" when not measured (NaN)."""
    return '-' if value != value else fmt % value


def summarize(results: dict) -> ty.Dict[str, dict]:
    """Per way: the median of each figure over the repeats.

    Over the runs that did the job; a way whose every run failed (say its
    CLI refused an option) keeps its figures but is ``all_failed``, and
    nothing is measured against it.
    """
    n = results['servers']
    by_way: ty.Dict[str, ty.List[dict]] = {}
    for run in results['runs']:
        by_way.setdefault(run['way'], []).append(run)
    summary = {}
    for name, every in by_way.items():
        runs = [r for r in every if not r['failures']] or every
        delays = [d for r in runs for d in r['confirm_delays']]
        walls = sorted(runs, key=lambda r: r['wall'])
        middle = walls[(len(walls) - 1) // 2]  # the median run, for charts
        spans = [r['inflight'] for r in runs if 'inflight' in r]
        summary[name] = {
            'kind': runs[0]['kind'], 'parallel': runs[0]['parallel'],
            'batch': runs[0]['batch'], 'runs': len(every),
            'family': runs[0].get('family', False),
            'interval': runs[0].get('interval') or (
                results.get('interval', 2.0) if runs[0]['batch'] else 0.0),
            'failed_runs': sum(1 for r in every if r['failures']),
            'all_failed': all(r['failures'] for r in every),
            'first_failure': brief(next(
                (f for r in every for f in r['failures']), '')),
            'wall': median(r['wall'] for r in runs),
            'cpu': median(r['cpu'] for r in runs),
            'cpu_per_server': median(r['cpu'] for r in runs) / n,
            'requests': median(r['requests']['total'] for r in runs),
            'requests_per_server': median(
                r['requests']['total'] for r in runs) / n,
            'nova_api': median(_nova(r) for r in runs),
            'nova_api_per_server': median(_nova(r) for r in runs) / n,
            'poll_rounds': median(r['poll_rounds'] for r in runs),
            'poll_requests_per_round': median(
                r['requests']['poll'] / r['poll_rounds']
                for r in runs if r['poll_rounds']),
            'confirm_delay_median': median(delays),
            'confirm_delay_max': max(delays) if delays else float('nan'),
            'inflight': middle.get('inflight'),
            'inflight_wall': middle['wall'],
            'peak_in_flight': median(inflight.peak(x) for x in spans),
            'mean_in_flight': median(inflight.mean(x) for x in spans),
        }
    return summary


def floors(summary: ty.Dict[str, dict]) -> ty.Dict[str, ty.Tuple[str, dict]]:
    """Per kind, the fastest family member that did the job: the floor."""
    out: ty.Dict[str, ty.Tuple[str, dict]] = {}
    for name, w in summary.items():
        if not w['family'] or w['all_failed']:
            continue
        best = out.get(w['kind'])
        if best is None or w['wall'] < best[1]['wall']:
            out[w['kind']] = (name, w)
    return out


def floor_multiple(summary: ty.Dict[str, dict], name: str
                   ) -> ty.Optional[float]:
    """The way's wall as a multiple of its kind's floor (None: no floor)."""
    w = summary[name]
    floor = floors(summary).get(w['kind'])
    if floor is None or w['all_failed']:
        return None
    return w['wall'] / floor[1]['wall']


def overhead_ratio(walls: ty.Dict[str, ty.List[float]]) -> float:
    """Median over pairs of with/without: each pair ran back to back."""
    return median(w / wo for w, wo in zip(walls['with'], walls['without']))


def targets(results: dict) -> ty.List[ty.Tuple[str, str, bool]]:
    """(target, the figure measured, met) for each of the issue's targets."""
    s = summarize(results)
    out = []
    seed = s.get(ways_mod.SEED)
    p10, p1 = s.get(P10), s.get(P1)
    if seed and p10:
        ratio = p10['cpu_per_server'] / seed['cpu_per_server']
        out.append(('batch client CPU per server <= 1/50 of the seed way',
                    '1/%.0f (%.3f s vs %.2f s)' % (
                        1 / ratio, p10['cpu_per_server'],
                        seed['cpu_per_server']), ratio <= 1 / 50))
        speedup = seed['wall'] / p10['wall']
        out.append(('--max-parallel 10 at least 5x faster than the seed way',
                    '%.1fx (%.0f s vs %.0f s)' % (speedup, p10['wall'],
                                                  seed['wall']),
                    speedup >= 5))
    if p10:
        out.append(('batch requests per migrated server <= 4',
                    '%.2f (--max-parallel 10), %s (1)' % (
                        p10['requests_per_server'],
                        '%.2f' % p1['requests_per_server'] if p1
                        else 'not measured'),
                    p10['requests_per_server'] <= 4))
    if p10 and p1:
        a, b = p1['poll_requests_per_round'], p10['poll_requests_per_round']
        # Two bulk reads at most (the servers only when one may tell more
        # than its record), whatever is in flight.
        out.append(('requests per poll <= 2 whatever the number in flight',
                    '%.2f with 1 in flight, %.2f with 10' % (a, b),
                    max(a, b) <= 2.0))
    if 'overhead' in results:
        ratio = overhead_ratio(results['overhead']['--version'])
        out.append(('the plugin adds <= 3% to `openstack --version`',
                    '%+.1f%% (median of paired ratios)' % ((ratio - 1) * 100),
                    ratio <= 1.03))
    if 'plan' in results:
        plan = results['plan']
        wall = median(r['wall'] for r in plan['runs'])
        rss = median(r['peak_rss_mb'] for r in plan['runs'])
        pages = median(r['server_pages'] for r in plan['runs'])
        total = median(r['requests']['total'] for r in plan['runs'])
        expected_pages = plan['servers'] // plan['page_size'] + 1
        out.append(('%d-server dry run: requests follow pages, not servers'
                    % plan['servers'],
                    '%d requests, %d of them server pages (page size %d)' % (
                        total, pages, plan['page_size']),
                    pages <= expected_pages and total < plan['servers'] / 10))
        out.append(('%d-server dry run under 5 s and 150 MB'
                    % plan['servers'], '%.1f s, %.0f MB' % (wall, rss),
                    wall < 5 and rss < 150))
    out += floor_targets(results, s)
    return out


def _versus_floor(s: ty.Dict[str, dict], name: str, limit: float,
                  target: str) -> ty.List[ty.Tuple[str, str, bool]]:
    w = s.get(name)
    floor = floors(s).get(w['kind']) if w else None
    if w is None or floor is None:
        return []  # not measured in this run
    if w['all_failed']:
        return [(target, 'failed: %s' % w['first_failure'][:240], False)]
    ratio = w['wall'] / floor[1]['wall']
    return [(target, '%.2fx (%.1f s vs %.1f s, %s)' % (
        ratio, w['wall'], floor[1]['wall'], floor[0]), ratio <= limit)]


def floor_targets(results: dict, s: ty.Dict[str, dict]
                  ) -> ty.List[ty.Tuple[str, str, bool]]:
    """Issue 15's targets: against the floor, confirms, requests."""
    out = []
    for name, kind in ((ways_mod.DEFAULTS, 'cold'),
                       (ways_mod.LIVE_DEFAULTS, 'live')):
        out += _versus_floor(s, name, 1.10, 'batch with its defaults <= '
                             '1.10x the floor, %s' % kind)
    for name, kind in ((ways_mod.AUTO_COLD, 'cold'),
                       (ways_mod.AUTO_LIVE, 'live')):
        out += _versus_floor(s, name, 1.05, '--max-parallel auto <= 1.05x '
                             'the floor, %s' % kind)
    for name, w in s.items():
        if not w['batch'] or w['kind'] != ways_mod.COLD or \
                w['all_failed'] or w['confirm_delay_max'] != \
                w['confirm_delay_max']:  # NaN: no confirm measured
            continue
        out.append(('%s: every confirm within one poll interval (%g s) of '
                    'VERIFY_RESIZE' % (name, w['interval']),
                    'max %.2f s, median %.2f s' % (
                        w['confirm_delay_max'], w['confirm_delay_median']),
                    w['confirm_delay_max'] <= w['interval']))
    n = results['servers']
    for name, how in ((ways_mod.DEFAULTS, 'by --source-host'),
                      (ways_mod.BY_IDS, 'given as IDs')):
        way = s.get(name)
        if way is None:
            continue
        target = ('requests per server on nova-api <= 3.0, %d servers %s'
                  % (n, how))
        if way['all_failed']:
            out.append((target, 'failed: %s' % way['first_failure'][:240],
                        False))
            continue
        out.append((target, '%s (%s requests; %d with identity and '
                    'image)' % (_f(way['nova_api_per_server'], '%.2f'),
                                _f(way['nova_api'], '%d'), way['requests']),
                    way['nova_api_per_server'] <= 3.0))
    return out


def _row(cells: ty.Sequence[ty.Any]) -> str:
    return '| ' + ' | '.join(str(c) for c in cells) + ' |'


def _table(header: ty.Sequence[str], rows: ty.Sequence[ty.Sequence[ty.Any]]
           ) -> ty.List[str]:
    return [_row(header), _row(['---'] * len(header))] + [
        _row(r) for r in rows]


def _x(value: ty.Optional[float]) -> str:
    return '' if value is None else '%.2fx' % value


def _machine_line(results: dict) -> str:
    m = results['machine']
    nova = results.get('nova') or '(version not recorded)'
    return ('Machine: %d CPUs, %d GiB, Python %s, %s. Real Nova %s (fake '
            'driver) on 127.0.0.1.' % (m['cpus'], m['memory_gb'],
                                       m['python'], m['platform'], nova))


def _way_rows(s: ty.Dict[str, dict], kind: str) -> ty.List[ty.List[str]]:
    seed = s.get(ways_mod.SEED)
    rows = []
    for name, w in s.items():
        if w['kind'] != kind or w['family']:
            continue
        failed = w['all_failed']
        rows.append([
            name, '%.1f' % w['wall'] if not failed else 'failed',
            _x(floor_multiple(s, name)),
            '%.1fx' % (seed['wall'] / w['wall'])
            if seed and not failed else '',
            '%.2f' % w['cpu'], '%.3f' % w['cpu_per_server'],
            '1/%.0f' % (seed['cpu'] / w['cpu'])
            if seed and not failed else '',
            '%s (%d)' % (_f(w['nova_api'], '%d'), w['requests']),
            _f(w['nova_api_per_server'], '%.2f'),
            '%s / %s' % (_f(w['confirm_delay_median'], '%.2f'),
                         _f(w['confirm_delay_max'], '%.2f'))
            if kind == ways_mod.COLD else '-',
            w['failed_runs'] or ''])
    return rows


def _family_rows(s: ty.Dict[str, dict], kind: str) -> ty.List[ty.List[str]]:
    best = floors(s).get(kind)
    members = sorted(((n, w) for n, w in s.items()
                      if w['family'] and w['kind'] == kind),
                     key=lambda item: (item[1]['parallel'],
                                       item[1]['interval']))
    rows = []
    for name, w in members:
        failed = w['all_failed']
        rows.append([
            '%d' % w['parallel'], '%g' % w['interval'],
            ('**%.1f** (floor)' if best and best[0] == name else '%.1f')
            % w['wall'] if not failed else 'failed',
            _x(floor_multiple(s, name)), '%.2f' % w['cpu'],
            _f(w['nova_api'], '%d'), _f(w['nova_api_per_server'], '%.2f'),
            _peak_mean(w), w['failed_runs'] or ''])
    return rows


def _limit(parallel: int) -> str:
    return {ways_mod.AUTO: 'auto', ways_mod.DEFAULT: 'default'}.get(
        parallel, str(parallel))


def _peak_mean(w: dict) -> str:
    if w['peak_in_flight'] != w['peak_in_flight']:  # NaN: no records
        return ''
    return '%d / %.1f' % (w['peak_in_flight'], w['mean_in_flight'])


def changes(results: dict, previous: dict) -> ty.List[ty.List[str]]:
    """Ways (and members) in both runs: wall and floor multiple, then, now."""
    now, then = summarize(results), summarize(previous)
    rows = []
    for name, w in now.items():
        p = then.get(name)
        if p is None or w['all_failed'] or p['all_failed']:
            continue
        was, became = floor_multiple(then, name), floor_multiple(now, name)
        rows.append([name, '%.1f' % p['wall'], '%.1f' % w['wall'],
                     '%+.0f%%' % ((w['wall'] / p['wall'] - 1) * 100),
                     '%s -> %s' % (_x(was) or '-', _x(became) or '-'),
                     '%s -> %s' % (_f(p['nova_api_per_server'], '%.2f'),
                                   _f(w['nova_api_per_server'], '%.2f'))])
    return rows


def markdown(results: dict, previous: ty.Optional[dict] = None) -> str:
    s = summarize(results)
    n = results['servers']
    fl = floors(s)
    lines = [
        '# osc-migrate-plus benchmark, %s' % results['date'], '',
        '%s %d servers, medians of %d repeats; ratios are against the '
        'seed way and the floor measured in the same run. Command: '
        '`tox -e bench%s`.' % (
            _machine_line(results), n, results['repeats'],
            ' -- ' + results['args'] if results.get('args') else ''), '']
    if results.get('parts'):
        lines += ['Run in %d parts (%s), one after another.' % (
            len(results['parts']), ', '.join(results['parts'])), '']
    for kind, title in ((ways_mod.COLD, 'Cold migrate + confirm'),
                        (ways_mod.LIVE, 'Live migrate')):
        rows = _way_rows(s, kind)
        if rows:
            lines += ['## %s, %d servers' % (title, n), ''] + _table(
                ['way', 'wall s', 'x floor', 'speed-up vs seed',
                 'client CPU s', 'CPU s/server', 'CPU vs seed',
                 'requests nova-api (all)', 'nova-api requests/server',
                 'VERIFY_RESIZE to confirm s (median / max)',
                 'failed runs'], rows) + ['']
    for kind, title in ((ways_mod.COLD, 'cold'), (ways_mod.LIVE, 'live')):
        rows = _family_rows(s, kind)
        if rows:
            floor = fl.get(kind)
            lines += ['## The floor family, %s' % title, '',
                      'A client written directly on openstacksdk '
                      '(`benchmarks/floor.py`): at most N in flight, one '
                      'bulk read per poll, confirms sent concurrently. The '
                      'floor is the fastest member: %s.' % (
                          '%s, %.1f s' % (floor[0], floor[1]['wall'])
                          if floor else 'none did the job'), ''] + _table(
                ['in flight', 'poll s', 'wall s', 'x floor', 'client CPU s',
                 'requests nova-api', 'requests/server',
                 'in flight, peak / mean', 'failed runs'], rows) + ['']
    rows = [[name, _limit(w['parallel']), '%d' % w['poll_rounds'],
             _f(w['poll_requests_per_round'], '%.2f'), _peak_mean(w)]
            for name, w in s.items() if w['batch']]
    if rows:
        lines += ['## Batch polling', '',
                  'A poll round is one bulk read of migration records and, '
                  'when one may tell more than its record, one of servers '
                  '(changes-since), whatever is in flight. '
                  "In flight: from Nova's migration records (created to "
                  'final status), peak and time-average.',
                  ''] + _table(['way', 'in flight (limit)', 'poll rounds',
                                'poll requests per round',
                                'in flight, peak / mean'], rows) + ['']
    if 'overhead' in results:
        rows = [['`openstack %s`' % cmd, '%.3f' % median(w['with']),
                 '%.3f' % median(w['without']),
                 '%+.1f%%' % ((overhead_ratio(w) - 1) * 100),
                 str(len(w['with']))]
                for cmd, w in results['overhead'].items()]
        lines += ['## The plugin on every `openstack` call', '',
                  'Paired runs, alternating order; the same venv with the '
                  'plugin uninstalled.', ''] + _table(
            ['command', 'with plugin s', 'without s',
             'median paired difference', 'pairs'], rows) + ['']
    if 'plan' in results:
        plan = results['plan']
        rows = [[r['planned'], r['server_pages'], r['requests']['total'],
                 '%.2f' % r['wall'], '%.2f' % r['cpu'],
                 '%.0f' % r['peak_rss_mb']] for r in plan['runs']]
        lines += ['## Dry run over %d servers' % plan['servers'], '',
                  "`%s`, Nova's page size %d." % (
                      plan['command'], plan['page_size']), ''] + _table(
            ['planned', 'server pages', 'requests', 'wall s', 'CPU s',
             'peak RSS MB'], rows) + ['']
    rows = [[t, f, 'met' if ok else '**missed**'] for t, f, ok in
            targets(results)]
    lines += ['## Targets', ''] + _table(['target', 'measured', 'met'],
                                         rows) + ['']
    if previous is not None:
        rows = changes(results, previous)
        lines += ['## Change since the previous run (%s)' % previous['date'],
                  '', _machine_line(previous).replace('Machine', 'Then: '
                                                      'machine', 1), '']
        lines += (_table(['way', 'wall s then', 'wall s now', 'change',
                          'x floor then -> now',
                          'nova-api requests/server then -> now'], rows)
                  if rows else ['No way in common.']) + ['']
    failures = [(r['way'], r['repeat'], f) for r in results['runs']
                for f in r['failures']]
    if failures:
        lines += ['## Failures', ''] + ['- %s (repeat %d): %s' % (
            way, repeat, brief(f)) for way, repeat, f in failures] + ['']
    return '\n'.join(lines)


def inflight_svgs(results: dict) -> ty.Dict[str, str]:
    """Per kind, the in-flight chart of every batch way and floor member."""
    s = summarize(results)
    out = {}
    for kind, title in ((ways_mod.COLD, 'Cold migrate + confirm'),
                        (ways_mod.LIVE, 'Live migrate')):
        chosen = sorted(
            ((name, w) for name, w in s.items()
             if w['kind'] == kind and (w['batch'] or w['family'])
             and w['inflight'] is not None),
            key=lambda item: (item[1]['family'], item[1]['parallel'],
                              item[1]['interval'], item[0]))
        rows = [(name + (' (failed)' if w['all_failed'] else ''),
                 w['inflight'], w['inflight_wall']) for name, w in chosen]
        out[kind] = inflight.svg(
            '%s: migrations in flight (Nova\'s records), %s' % (
                title, results['date']), rows)
    return out


def main(argv: ty.List[str]) -> None:
    """``results.json [previous.json]``: print the page's table again."""
    with open(argv[0]) as f:
        results = json.load(f)
    previous = None
    if len(argv) > 1:
        with open(argv[1]) as f:
            previous = json.load(f)
    print(markdown(results, previous))


if __name__ == '__main__':
    main(sys.argv[1:])
