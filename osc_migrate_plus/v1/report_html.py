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

"""The report as one self-contained HTML page: a picture of the batch.

Inline CSS and SVG only: no script, no font, nothing fetched, so the page
can be mailed or attached to a ticket and opened anywhere. Server names and
messages are the tenants' and Nova's words: every one goes through
``_e`` (html.escape, quotes too). The page is well-formed XML as well as
HTML (void elements closed, only XML's entities), which the tests check by
parsing it.
"""

import datetime
import html
import typing as ty

from osc_migrate_plus.engine import report
from osc_migrate_plus.v1 import batch_progress

WIDTH = 960          # the timeline's width, px
LABEL = 230          # the lane labels' column, px
LANE = 16            # one server's lane, px
AXIS = 22            # the time axis above the lanes, px
NAME_CHARS = 30      # a label longer than this is cut (full on hover)
COLOURS = {
    report.QUEUED: '#cfd4da',
    report.MIGRATING: '#3b7dd8',
    report.VERIFY_RESIZE: '#f0ad1e',
    report.VERIFYING: '#8e5cc4',
    report.CONFIRMING: '#2fa360',
    report.REVERTING: '#e0701b',
}
MARKS = {'failed': '#d62728', 'timeout': '#e6a100', 'aborted': '#e6a100',
         'interrupted': '#555555', 'deleted': '#777777',
         'not-started': '#999999', 'abort-sent': '#e6a100',
         'stalled': '#8e5cc4', 'force-complete-sent': '#8e5cc4',
         'force-complete-refused': '#d62728', 'abort-refused': '#d62728'}
TICKS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
         10800, 21600, 43200, 86400)
STYLE = '''
body { font: 13px/1.4 sans-serif; margin: 16px 24px; color: #222; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 20px 0 6px; }
.journal { color: #666; margin: 0 0 10px; word-break: break-all; }
table { border-collapse: collapse; }
th, td { border: 1px solid #d0d0d0; padding: 2px 8px; text-align: left;
         vertical-align: top; }
th { background: #f2f2f2; }
table.summary td { font-size: 18px; font-weight: bold; text-align: right; }
table.facts th { width: 13em; }
.bad { color: #b00; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 14px; height: 10px;
            margin-right: 4px; vertical-align: middle; }
details.host { margin: 6px 0; }
details.host summary { cursor: pointer; font-weight: bold; padding: 2px 0; }
.scroll { overflow-x: auto; }
svg text { font: 11px sans-serif; fill: #222; }
svg .tick { stroke: #e4e4e4; }
svg .run { stroke: #888; stroke-dasharray: 4 3; }
svg .limit { stroke: #d62728; stroke-dasharray: 5 4; }
svg .level { fill: rgba(59, 125, 216, 0.25); stroke: #3b7dd8; }
svg .lane:hover rect.bg { fill: #fff6d8; }
table.servers td.result-failed, table.servers td.result-timeout
  { color: #b00; font-weight: bold; }
'''


def _e(value: ty.Any) -> str:
    """Text for the page: escaped, quotes too (it may go in attributes)."""
    return html.escape('' if value is None else str(value), quote=True)


def _css(name: str) -> str:
    return name.lower().replace('_', '-')


def _clock(seconds: float) -> str:
    return batch_progress.clock(round(seconds))


def _utc(value: ty.Optional[datetime.datetime]) -> str:
    if value is None:
        return ''
    return value.astimezone(datetime.timezone.utc).strftime(
        '%Y-%m-%d %H:%M:%S UTC')


class _Scale:
    """Time to x, over the whole journal: every host shares one axis."""

    def __init__(self, start: datetime.datetime,
                 end: datetime.datetime) -> None:
        self.start = start
        self.seconds = max((end - start).total_seconds(), 1.0)

    def x(self, at: datetime.datetime) -> float:
        offset = (at - self.start).total_seconds()
        return round(LABEL + WIDTH * min(max(offset, 0.0), self.seconds)
                     / self.seconds, 1)

    def ticks(self) -> ty.List[ty.Tuple[float, str]]:
        step = next((t for t in TICKS if self.seconds / t <= 10), TICKS[-1])
        out = []
        offset = 0
        while offset <= self.seconds:
            at = self.start + datetime.timedelta(seconds=offset)
            label = at.astimezone(datetime.timezone.utc).strftime(
                '%H:%M:%S' if step < 60 else '%H:%M')
            out.append((self.x(at), label))
            offset += step
        return out


def _axis(scale: _Scale, height: float, runs: ty.List[report.Run]) -> str:
    parts = []
    for x, label in scale.ticks():
        parts.append('<line class="tick" x1="%s" y1="%d" x2="%s" y2="%s"/>'
                     % (x, AXIS - 4, x, height))
        if x <= LABEL + WIDTH - 60:  # no label cut at the right edge
            parts.append('<text x="%s" y="14">%s</text>'
                         % (x + 2, _e(label)))
    for number, run in enumerate(runs[1:], 2):
        x = scale.x(run.started)
        parts.append('<line class="run" x1="%s" y1="0" x2="%s" y2="%s">'
                     '<title>run %d (--resume) started %s</title></line>'
                     % (x, x, height, number, _e(_utc(run.started))))
    return ''.join(parts)


def _lane(scale: _Scale, server: report.ServerReport, y: int) -> str:
    name = server.name or server.id
    short = name if len(name) <= NAME_CHARS else \
        name[:NAME_CHARS - 1] + '\u2026'
    result = server.result.value if server.result else ''
    out = ['<g class="lane" data-server="%s" data-result="%s">'
           % (_e(server.id), _e(result))]
    out.append('<rect class="bg" x="0" y="%d" width="%d" height="%d" '
               'fill="transparent"/>' % (y, LABEL + WIDTH, LANE))
    out.append('<text x="4" y="%d">%s<title>%s (%s)%s</title></text>'
               % (y + LANE - 4, _e(short), _e(name), _e(server.id),
                  _e(': ' + result if result else '')))
    for span in server.spans:
        x1, x2 = scale.x(span.start), scale.x(span.end)
        out.append('<rect class="span %s" x="%s" y="%d" width="%s" '
                   'height="%d" fill="%s"><title>%s: %s, %s to %s'
                   '</title></rect>'
                   % (_css(span.phase), x1, y + 3, max(round(x2 - x1, 1),
                                                       1.0),
                      LANE - 6, COLOURS.get(span.phase, '#999'),
                      _e(name), _e(span.phase), _e(_clock(span.seconds)),
                      _e(_utc(span.end))))
    for mark in server.marks:
        x = scale.x(mark.at)
        colour = MARKS.get(mark.what, '#d62728')
        out.append('<g class="mark %s"><path d="M%s %d l5 6 l-5 6 l-5 -6 z" '
                   'fill="%s" stroke="#fff"/><title>%s: %s%s</title></g>'
                   % (_e(mark.what), x, y + 2, colour, _e(name),
                      _e(mark.what), _e(': ' + mark.message
                                        if mark.message else '')))
    out.append('</g>')
    return ''.join(out)


def _host(scale: _Scale, host: str, servers: ty.List[report.ServerReport],
          runs: ty.List[report.Run]) -> str:
    height = AXIS + LANE * len(servers)
    done = sum(1 for s in servers if s.result in report.SUCCESS)
    bad = [s for s in servers if s.marks]
    summary = '%s: %d server%s, %d migrated' % (
        host, len(servers), '' if len(servers) == 1 else 's', done)
    if bad:
        summary += ', %d with a failure or timeout' % len(bad)
    lanes = ''.join(_lane(scale, s, AXIS + i * LANE)
                    for i, s in enumerate(servers))
    return ('<details class="host" open="open" data-host="%s"><summary>%s'
            '</summary><div class="scroll"><svg class="lanes" width="%d" '
            'height="%d" viewBox="0 0 %d %d">%s%s</svg></div></details>'
            % (_e(host), _e(summary), LABEL + WIDTH, height,
               LABEL + WIDTH, height, _axis(scale, height, runs), lanes))


def _in_flight(scale: _Scale, rebuilt: report.Report) -> str:
    series = rebuilt.in_flight()
    limit = (rebuilt.header.get('limits') or {}).get('max_parallel')
    if not isinstance(limit, int):
        limit = None
    top = max([n for _, n in series] + [limit or 0, 1])
    height, chart = 120, 90
    base = AXIS + chart

    def y(level: int) -> float:
        return round(base - chart * level / top, 1)

    points = ['%s,%s' % (LABEL, base)]
    level = 0
    for at, new in series:
        x = scale.x(at)
        points += ['%s,%s' % (x, y(level)), '%s,%s' % (x, y(new))]
        level = new
    end = rebuilt.last_record or scale.start
    points += ['%s,%s' % (scale.x(end), y(level)),
               '%s,%s' % (scale.x(end), base)]
    parts = [_axis(scale, base, rebuilt.runs),
             '<polygon class="level" points="%s"><title>migrations in '
             'flight (peak %d)</title></polygon>'
             % (' '.join(points), max([n for _, n in series] + [0]))]
    if limit:
        parts.append('<line class="limit" x1="%d" y1="%s" x2="%d" y2="%s">'
                     '<title>--max-parallel %d</title></line>'
                     % (LABEL, y(limit), LABEL + WIDTH, y(limit), limit))
    parts.append('<text x="4" y="%s">%d</text><text x="4" y="%s">0</text>'
                 '<text x="4" y="%s">in flight</text>'
                 % (y(top) + 10, top, base, AXIS + chart // 2))
    return ('<div class="scroll"><svg class="inflight" width="%d" '
            'height="%d" viewBox="0 0 %d %d">%s</svg></div>'
            % (LABEL + WIDTH, height, LABEL + WIDTH, height,
               ''.join(parts)))


def _facts(rebuilt: report.Report, code: int) -> str:
    header = rebuilt.header
    options = header.get('options') or {}
    limits = header.get('limits') or {}
    rows = [
        ('State', rebuilt.state),
        ('Started', _utc(rebuilt.started)),
        ('Finished', _utc(rebuilt.finished) if rebuilt.finished
         else '(still running)'),
        ('Runs', '%d (%d resumed)' % (len(rebuilt.runs),
                                      max(len(rebuilt.runs) - 1, 0))),
        ('Selection', rebuilt.selection()),
        ('Mode', options.get('mode')),
        ('Target host', options.get('host') or '(the scheduler chose)'),
        ('Confirm', 'yes' if options.get('confirm') else 'no'),
        ('Verify command', options.get('verify_command') or ''),
        # 0 is "no limit" for each of them.
        ('Limits', ', '.join('%s %s' % ('--' + k.replace('_', '-'), v)
                             for k, v in sorted(limits.items())
                             if v) or 'none'),
        ('Source disabled', header.get('disable_source') or 'no'),
        ('Exit code', '%d' % code if rebuilt.state != report.RUNNING
         else '(not yet)'),
    ]
    last = rebuilt.runs[-1] if rebuilt.runs else None
    if last is not None and last.error:
        rows.append(('Stopped by', last.error))
    if last is not None and last.host_checks:
        rows.append(('Host check', '; '.join(
            str(c.get('line') or c.get('host')) for c in last.host_checks)))
    if rebuilt.torn:
        rows.append(('Journal', 'its last line was torn (a write cut short '
                     'by a crash) and is left out'))
    return '<table class="facts">%s</table>' % ''.join(
        '<tr><th>%s</th><td>%s</td></tr>' % (_e(k), _e(v)) for k, v in rows)


def _summary(rebuilt: report.Report) -> str:
    c = rebuilt.counts()
    cells = (('servers', 'Servers'), ('done', 'Migrated'),
             ('failed', 'Failed'), ('skipped', 'Skipped or deleted'),
             ('inflight', 'In flight'), ('queued', 'Queued'))
    head = ''.join('<th>%s</th>' % _e(label) for _, label in cells)
    body = ''.join('<td data-count="%s">%d</td>' % (key, c[key])
                   for key, _ in cells)
    results = ', '.join('%s %d' % (k or '(none yet)', n)
                        for k, n in sorted(rebuilt.results().items()))
    return ('<table class="summary" id="summary"><tr>%s</tr><tr>%s</tr>'
            '</table><p class="results">Results: %s</p>'
            % (head, body, _e(results)))


def _servers_table(rebuilt: report.Report, columns: ty.Sequence[str]) -> str:
    head = ''.join('<th>%s</th>' % _e(c) for c in columns)
    rows = []
    for server in rebuilt.servers:
        row = server.row()
        cells = []
        for name, value in zip(columns, row):
            css = ' class="result-%s"' % _e(value) if name == 'Result' \
                and value else ''
            cells.append('<td%s>%s</td>' % (css, _e(value)))
        rows.append('<tr>%s</tr>' % ''.join(cells))
    return '<table class="servers"><tr>%s</tr>%s</table>' % (
        head, ''.join(rows))


def _legend() -> str:
    spans = ''.join('<span><i style="background: %s"></i>%s</span>'
                    % (colour, _e(phase))
                    for phase, colour in COLOURS.items())
    marks = ''.join('<span><i style="background: %s"></i>%s</span>'
                    % (MARKS[m], _e(m)) for m in ('failed', 'timeout',
                                                  'interrupted'))
    return '<p class="legend">%s %s (hover for details)</p>' % (spans, marks)


def render(rebuilt: report.Report, code: int,
           columns: ty.Sequence[str] = ()) -> str:
    """The page for ``rebuilt`` (``code``: the batch's exit code)."""
    start = rebuilt.started or rebuilt.last_record or datetime.datetime.now(
        datetime.timezone.utc)
    scale = _Scale(start, rebuilt.last_record or start)
    hosts: ty.Dict[str, ty.List[report.ServerReport]] = {}
    for server in rebuilt.servers:
        hosts.setdefault(server.source or '(host unknown)', []).append(server)
    ordered = sorted(hosts.items())
    title = 'Batch migration report: %s' % rebuilt.path.rsplit('/', 1)[-1]
    body = [
        '<h1>%s</h1>' % _e(title),
        '<p class="journal">%s</p>' % _e(rebuilt.path),
        _summary(rebuilt),
        _facts(rebuilt, code),
        '<h2>Migrations in flight</h2>',
        _in_flight(scale, rebuilt),
        '<h2>Timeline, by source host</h2>',
        _legend(),
        ''.join(_host(scale, host, servers, rebuilt.runs)
                for host, servers in ordered),
    ]
    if columns:
        body += ['<h2>Servers</h2>', _servers_table(rebuilt, columns)]
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"/>'
            '<title>%s</title><style>%s</style></head><body>%s</body>'
            '</html>\n' % (_e(title), STYLE, ''.join(body)))
