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

from benchmarks import ways as ways_mod

P10 = 'plugin batch --max-parallel 10'
P1 = 'plugin batch --max-parallel 1'
WATCH = 'plugin watch --start --confirm'


def median(values: ty.Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float('nan')


def summarize(results: dict) -> ty.Dict[str, dict]:
    """Per way: the median of each figure over the repeats."""
    n = results['servers']
    by_way: ty.Dict[str, ty.List[dict]] = {}
    for run in results['runs']:
        by_way.setdefault(run['way'], []).append(run)
    summary = {}
    for name, runs in by_way.items():
        delays = [d for r in runs for d in r['confirm_delays']]
        summary[name] = {
            'kind': runs[0]['kind'], 'parallel': runs[0]['parallel'],
            'batch': runs[0]['batch'], 'runs': len(runs),
            'failed_runs': sum(1 for r in runs if r['failures']),
            'wall': median(r['wall'] for r in runs),
            'cpu': median(r['cpu'] for r in runs),
            'cpu_per_server': median(r['cpu'] for r in runs) / n,
            'requests': median(r['requests']['total'] for r in runs),
            'requests_per_server': median(
                r['requests']['total'] for r in runs) / n,
            'poll_rounds': median(r['poll_rounds'] for r in runs),
            'poll_requests_per_round': median(
                r['requests']['poll'] / r['poll_rounds']
                for r in runs if r['poll_rounds']),
            'confirm_delay_median': median(delays),
            'confirm_delay_max': max(delays) if delays else float('nan'),
        }
    return summary


def overhead_ratio(walls: ty.Dict[str, ty.List[float]]) -> float:
    """Median over pairs of with/without: each pair ran back to back."""
    return median(w / wo for w, wo in zip(walls['with'], walls['without']))


def targets(results: dict) -> ty.List[ty.Tuple[str, str, bool]]:
    """(target, the figure measured, met) for each of the issue's targets."""
    s = summarize(results)
    out = []
    seed = s.get(ways_mod.SEED)
    p10, p1 = s.get(P10), s.get(P1)
    interval = results['interval']
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
                    '%.2f (--max-parallel 10), %.2f (1)' % (
                        p10['requests_per_server'],
                        p1['requests_per_server'] if p1 else float('nan')),
                    p10['requests_per_server'] <= 4))
        delay = max(p10['confirm_delay_max'],
                    p1['confirm_delay_max'] if p1 else 0)
        out.append(('confirm sent within one interval (%gs) of VERIFY_RESIZE'
                    % interval, 'max %.2f s, median %.2f s' % (
                        delay, p10['confirm_delay_median']),
                    delay <= interval))
    if p10 and p1:
        a, b = p1['poll_requests_per_round'], p10['poll_requests_per_round']
        out.append(('requests per poll independent of the number in flight',
                    '%.2f with 1 in flight, %.2f with 10' % (a, b),
                    abs(a - b) < 0.5))
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
    return out


def _row(cells: ty.Sequence[ty.Any]) -> str:
    return '| ' + ' | '.join(str(c) for c in cells) + ' |'


def _table(header: ty.Sequence[str], rows: ty.Sequence[ty.Sequence[ty.Any]]
           ) -> ty.List[str]:
    return [_row(header), _row(['---'] * len(header))] + [
        _row(r) for r in rows]


def markdown(results: dict) -> str:
    s = summarize(results)
    n = results['servers']
    m = results['machine']
    seed = s.get(ways_mod.SEED)
    lines = [
        '# osc-migrate-plus benchmark, %s' % results['date'], '',
        'Machine: %d CPUs, %d GiB, Python %s, %s. Real Nova 34 (fake '
        'driver) on 127.0.0.1. %d servers, medians of %d repeats; '
        'ratios are against the seed way measured in the same run. '
        'Command: `tox -e bench`.' % (
            m['cpus'], m['memory_gb'], m['python'], m['platform'], n,
            results['repeats']), '']
    for kind, title in ((ways_mod.COLD, 'Cold migrate + confirm'),
                        (ways_mod.LIVE, 'Live migrate')):
        rows = []
        for name, w in s.items():
            if w['kind'] != kind:
                continue
            rows.append([
                name, '%.1f' % w['wall'],
                '%.1fx' % (seed['wall'] / w['wall']) if seed else '',
                '%.2f' % w['cpu'], '%.3f' % w['cpu_per_server'],
                '1/%.0f' % (seed['cpu'] / w['cpu']) if seed else '',
                '%d' % w['requests'], '%.2f' % w['requests_per_server'],
                '%.2f / %.2f' % (w['confirm_delay_median'],
                                 w['confirm_delay_max'])
                if kind == ways_mod.COLD else '-',
                w['failed_runs'] or ''])
        if rows:
            lines += ['## %s, %d servers' % (title, n), ''] + _table(
                ['way', 'wall s', 'speed-up vs seed', 'client CPU s',
                 'CPU s/server', 'CPU vs seed', 'requests',
                 'requests/server', 'VERIFY_RESIZE to confirm s (median / '
                 'max)', 'failed runs'], rows) + ['']
    rows = [[name, w['parallel'], '%d' % w['poll_rounds'],
             '%.2f' % w['poll_requests_per_round']]
            for name, w in s.items() if w['batch']]
    if rows:
        lines += ['## Batch polling', '',
                  'A poll round is one bulk read of migration records and '
                  'one of servers (changes-since), whatever is in flight.',
                  ''] + _table(['way', 'in flight', 'poll rounds',
                                'poll requests per round'], rows) + ['']
    if 'overhead' in results:
        rows = [['`openstack %s`' % cmd, '%.3f' % median(w['with']),
                 '%.3f' % median(w['without']),
                 '%+.1f%%' % ((overhead_ratio(w) - 1) * 100), len(w['with'])]
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
    rows = [[t, f, 'yes' if ok else '**no**'] for t, f, ok in
            targets(results)]
    lines += ['## Targets', ''] + _table(['target', 'measured', 'met'],
                                         rows) + ['']
    failures = [(r['way'], r['repeat'], f) for r in results['runs']
                for f in r['failures']]
    if failures:
        lines += ['## Failures', ''] + ['- %s (repeat %d): %s' % f
                                        for f in failures] + ['']
    return '\n'.join(lines)


if __name__ == '__main__':
    with open(sys.argv[1]) as f:
        print(markdown(json.load(f)))
