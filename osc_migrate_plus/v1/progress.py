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

"""Progress on stderr: never on stdout, which carries only the result.

On a terminal, one line rewritten in place; otherwise one timestamped line
per phase change (what a log or CI job wants). Server names are tenant data:
control characters are escaped so a name cannot drive the terminal.
"""

import datetime
import re
import typing as ty

from osc_migrate_plus.engine import hints
from osc_migrate_plus import model

_UNPRINTABLE = re.compile(r'[\x00-\x1f\x7f-\x9f]')


def safe(text: ty.Optional[str]) -> str:
    """Tenant-controlled text, fit for one terminal line."""
    return _UNPRINTABLE.sub(lambda m: '\\x%02x' % ord(m.group()), text or '')


def hint_line(hint: hints.Hint) -> str:
    return 'hint (%s): %s' % (hint.key, hint.text)


def is_tty(stream: ty.Any) -> bool:
    isatty = getattr(stream, 'isatty', None)
    return bool(isatty and isatty())


def _label(server: model.Server) -> str:
    return '%s (%s)' % (safe(server.name), server.id) if server.name \
        else server.id


def _hosts(server: model.Server,
           migration: ty.Optional[model.Migration]) -> str:
    if migration is None:
        return 'on %s' % safe(server.host)
    return '%s -> %s' % (safe(migration.source), safe(migration.dest or '?'))


def live_progress_text(progress: ty.Optional[dict], elapsed: float) -> str:
    """"memory 42% disk 10% ETA 12s" from the server-migrations API."""
    if not progress:
        return ''
    parts = []
    eta = None
    for kind in ('memory', 'disk'):
        total = progress.get('%s_total_bytes' % kind)
        done = progress.get('%s_processed_bytes' % kind)
        if total and done is not None:
            share = min(done / total, 1.0)
            parts.append('%s %d%%' % (kind, share * 100))
            if kind == 'memory' and 0 < share < 1 and elapsed > 0:
                eta = elapsed * (1 - share) / share
    if eta is not None:
        parts.append('ETA %ds' % eta)
    return ' '.join(parts)


class StderrProgress:
    def __init__(self, stream: ty.TextIO, quiet: bool = False,
                 tty: ty.Optional[bool] = None) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = is_tty(stream) if tty is None else tty
        self._line_open = False
        self._hinted: ty.Set[str] = set()

    @property
    def wants_live_progress(self) -> bool:
        return self.tty and not self.quiet

    def _write_line(self, text: str) -> None:
        if self.quiet:
            return
        self._clear()
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime(
            '%Y-%m-%dT%H:%M:%SZ')
        self.stream.write('%s %s\n' % (stamp, text))
        self.stream.flush()

    def _clear(self) -> None:
        if self._line_open:
            self.stream.write('\r\x1b[K')
            self._line_open = False

    def phase(self, server: model.Server,
              migration: ty.Optional[model.Migration], phase: str,
              elapsed: float) -> None:
        if not self.tty:
            self._write_line('%s: %s (%s, %ds)' % (
                _label(server), phase, _hosts(server, migration), elapsed))

    def tick(self, server: model.Server,
             migration: ty.Optional[model.Migration], phase: str,
             elapsed: float, progress: ty.Optional[dict]) -> None:
        if not self.tty or self.quiet:
            return
        line = '%s: %s %s %ds %s' % (_label(server), phase,
                                     _hosts(server, migration), elapsed,
                                     live_progress_text(progress, elapsed))
        self.stream.write('\r\x1b[K' + line.rstrip())
        self.stream.flush()
        self._line_open = True

    def note(self, server: model.Server, text: str) -> None:
        self._write_line('%s: %s' % (_label(server), safe(text)))

    def message(self, text: str) -> None:
        """A line for the person, even in quiet mode (errors, hints)."""
        self._clear()
        self.stream.write(text + '\n')
        self.stream.flush()

    def hint(self, hint: hints.Hint) -> None:
        """What to do about a failure: once per cause, even in quiet mode."""
        if hint.key not in self._hinted:
            self._hinted.add(hint.key)
            self.message(hint_line(hint))

    def close(self) -> None:
        if self._line_open:
            self.stream.write('\n')
            self.stream.flush()
            self._line_open = False
