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

"""Migrations in flight over time, from Nova's own migration records.

The same derivation for every way and every floor member, whatever the
client: after a run, the records of the benchmark's servers created since
the run started (``GET /os-migrations``, microversion 2.59 for
``created_at``/``updated_at``), each in flight from its ``created_at`` to
the ``updated_at`` of its final status. A cold migration is in flight until
confirmed: the wait for the confirm is part of what a client costs.
"""

import datetime
import typing as ty
from xml.sax import saxutils

# Statuses after which Nova no longer touches a record.
FINAL = ('confirmed', 'completed', 'reverted', 'error', 'failed',
         'cancelled', 'done')

Interval = ty.Tuple[float, float]  # seconds from the run's start


def parse_time(text: str) -> datetime.datetime:
    """Nova's timestamps, with or without zone: UTC."""
    value = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value


def intervals(records: ty.Iterable[dict], ids: ty.Iterable[str],
              started: datetime.datetime, wall: float
              ) -> ty.List[Interval]:
    """(start, end) of each migration of ``ids`` the run made.

    Records created before ``started`` belong to an earlier run (or the
    put-back). A record not final yet is in flight to the run's end.
    """
    wanted = set(ids)
    out = []
    for r in records:
        if r.get('instance_uuid') not in wanted or not r.get('created_at'):
            continue
        begin = (parse_time(r['created_at']) - started).total_seconds()
        if begin < 0:
            continue
        if r.get('status') in FINAL and r.get('updated_at'):
            end = (parse_time(r['updated_at']) - started).total_seconds()
        else:
            end = max(wall, begin)
        out.append((round(begin, 3), round(max(end, begin), 3)))
    return sorted(out)


def steps(spans: ty.Sequence[Interval]) -> ty.List[ty.Tuple[float, int]]:
    """(time, count from then on): the count changes at each point."""
    events: ty.Dict[float, int] = {}
    for begin, end in spans:
        events[begin] = events.get(begin, 0) + 1
        events[end] = events.get(end, 0) - 1
    out: ty.List[ty.Tuple[float, int]] = []
    count = 0
    for t in sorted(events):
        count += events[t]
        if out and out[-1][1] == count:
            continue
        out.append((t, count))
    return out


def peak(spans: ty.Sequence[Interval]) -> int:
    return max((c for _, c in steps(spans)), default=0)


def mean(spans: ty.Sequence[Interval]) -> float:
    """Average in flight between the first start and the last end."""
    if not spans:
        return 0.0
    first = min(b for b, _ in spans)
    last = max(e for _, e in spans)
    if last <= first:
        return float(len(spans))
    return sum(e - b for b, e in spans) / (last - first)


Row = ty.Tuple[str, ty.Sequence[Interval], float]


def svg(title: str, rows: ty.Sequence[Row]) -> str:
    """Small multiples: one strip per (label, spans, wall), shared scales.

    A step area per strip (in flight over seconds since the run started),
    the run's wall marked by the strip's end. Plain SVG: no script.
    """
    label_w, plot_w, strip_h, gap, top = 330, 560, 34, 8, 44
    axis_h = 28
    x_max = max([w for _, _, w in rows] + [1.0])
    y_max = max([peak(s) for _, s, _ in rows] + [1])
    height = top + len(rows) * (strip_h + gap) + axis_h
    width = label_w + plot_w + 100
    esc = saxutils.escape

    def x(t: float) -> float:
        return label_w + plot_w * min(t, x_max) / x_max

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">'
           % (width, height, width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="4" y="18" font-size="14" font-weight="bold">%s</text>'
           % esc(title),
           '<text x="4" y="34" fill="#555">Migrations in flight (0-%d, '
           'the same scale in every strip) over seconds since the run '
           'started; the grey band is the run.</text>' % y_max]
    for i, (label, spans, wall) in enumerate(rows):
        y0 = top + i * (strip_h + gap)
        base = y0 + strip_h
        out.append('<text x="4" y="%d">%s</text>' % (
            y0 + strip_h / 2 + 4, esc(label)))
        out.append('<rect x="%d" y="%d" width="%.1f" height="%d" '
                   'fill="#f3f3f3"/>' % (label_w, y0, x(wall) - label_w,
                                         strip_h))
        points = ['%.1f,%d' % (label_w, base)]
        count = 0
        for t, c in steps(spans):
            h = strip_h * count / y_max
            points.append('%.1f,%.1f' % (x(t), base - h))
            count = c
            points.append('%.1f,%.1f' % (x(t), base - strip_h * c / y_max))
        points.append('%.1f,%d' % (x(wall), base - strip_h * count / y_max))
        points.append('%.1f,%d' % (x(wall), base))
        color = '#888888' if label.startswith('floor') else '#2a6fb0'
        out.append('<polygon points="%s" fill="%s" fill-opacity="0.75"/>'
                   % (' '.join(points), color))
        out.append('<text x="%.1f" y="%d" fill="#555">%d max, %.0f s'
                   '</text>' % (x(wall) + 4, y0 + strip_h / 2 + 4,
                                peak(spans), wall))
    if not rows:
        out.append('<text x="4" y="%d" fill="#555">No migration records in '
                   'this run: run tox -e bench.</text>' % (top + 14))
    axis_y = top + len(rows) * (strip_h + gap)
    out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>' % (
        label_w, axis_y, label_w + plot_w, axis_y))
    step = _tick(x_max)
    t = 0.0
    while t <= x_max + 1e-9:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" '
                   'stroke="#333"/>' % (x(t), axis_y, x(t), axis_y + 4))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%g</text>'
                   % (x(t), axis_y + 16, t))
        t += step
    out.append('<text x="%d" y="%d" fill="#555">s since the run started'
               '</text>' % (4, axis_y + 16))
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def _tick(span: float) -> float:
    for step in (1, 2, 5, 10, 20, 30, 60, 120, 300, 600):
        if span / step <= 10:
            return float(step)
    return 1200.0
