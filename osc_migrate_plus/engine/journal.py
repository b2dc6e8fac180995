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

"""The batch journal: append-only JSON lines, so nothing is lost.

One line per record, flushed and fsynced as it is written, in a file created
mode 0600 and locked (flock) by the batch writing it, so a second batch cannot
resume it concurrently. The first line is the header (options, cloud), then
the plan and every event per server. ``replay`` rebuilds where each server
stands; a torn last line (a crash mid-write) is tolerated, any other damage is
an error naming the line.

Only the fields this module is given are written; keys that look like
credentials are refused outright, so a token can never reach a journal.
"""

import datetime
import errno
import fcntl
import json
import os
import typing as ty

FORMAT_VERSION = 1
_SECRET_WORDS = ('password', 'token', 'secret', 'credential', 'auth')

# Where a server stands, from the journal's point of view.
PLANNED = 'planned'        # in the plan, or nothing of ours is in Nova
SUBMITTING = 'submitting'  # the migrate request may or may not have reached
UNCERTAIN = 'uncertain'    # sent, its answer lost: Nova may carry it out
SUBMITTED = 'submitted'    # Nova accepted it (202) or we adopted one
FINISHED = 'finished'      # a verdict was recorded
SKIPPED = 'skipped'        # pre-flight said no
# Verdicts a resume takes up again: the migration may still need us
# (timeout), or nothing was started (not-started).
REOPENED = {'timeout': SUBMITTED, 'not-started': PLANNED}
# Record types of a rolling run's hosts (``host-disabled``, ``steer-...``).
ROLLING_PREFIXES = ('host-', 'steer-', 'rolling-')


def reopened(saved: 'ServerState') -> str:
    """Where a server stands for a resume."""
    if saved.state != FINISHED or saved.result not in REOPENED:
        return saved.state
    if saved.result == 'timeout' and saved.before in (SUBMITTING,
                                                      UNCERTAIN):
        # Timed out while its request's answer was lost: look again.
        return UNCERTAIN
    return REOPENED[saved.result]


class JournalError(Exception):
    pass


class JournalBusy(JournalError):
    pass


def default_dir() -> str:
    base = os.environ.get('XDG_STATE_HOME') or os.path.join(
        os.path.expanduser('~'), '.local', 'state')
    return os.path.join(base, 'osc-migrate-plus')


def default_path(now: ty.Optional[datetime.datetime] = None) -> str:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return os.path.join(default_dir(), 'batch-%s-%d.jsonl' % (
        now.strftime('%Y%m%dT%H%M%SZ'), os.getpid()))


def _check_no_secrets(value: ty.Any, where: str = '') -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            lowered = str(key).lower()
            if any(word in lowered for word in _SECRET_WORDS):
                raise ValueError('refusing to journal %r%s: it looks like a '
                                 'credential' % (key, where))
            _check_no_secrets(item, where)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_no_secrets(item, where)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class Journal:
    """An open journal, locked for writing by this process."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd = fd

    @classmethod
    def create(cls, path: str, header: dict) -> 'Journal':
        """A new journal (mode 0600); refuses to overwrite an existing one."""
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                         | os.O_APPEND, 0o600)
        except FileExistsError:
            raise JournalError('journal %s already exists; resume it with '
                               '--resume %s or choose another --state-file'
                               % (path, path))
        journal = cls(path, fd)
        journal._lock()
        journal.write(dict(header, type='header', version=FORMAT_VERSION))
        return journal

    @classmethod
    def reopen(cls, path: str) -> 'Journal':
        """Open an existing journal to resume it, locked, changing nothing.

        The lock comes first: what ``replay`` reads then is what no other
        batch is writing. Call ``cut_torn`` before appending.
        """
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            raise JournalError('no journal at %s' % path)
        journal = cls(path, fd)
        journal._lock()
        return journal

    def cut_torn(self) -> None:
        """Mend the end of the journal before appending.

        A torn last line (a crash mid-write) is cut; a whole one whose
        newline never reached the disk is kept, as ``replay`` kept it.
        """
        os.fchmod(self._fd, 0o600)
        size = os.fstat(self._fd).st_size
        if size:
            with open(self.path, 'rb') as f:
                data = f.read()
            keep = data.rfind(b'\n') + 1
            if keep != size:
                if _whole(data[keep:]):
                    self._append(b'\n')
                else:
                    os.ftruncate(self._fd, keep)

    def _lock(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise JournalBusy('journal %s is in use by a running batch; '
                                  'wait for it to finish or stop it first'
                                  % self.path)
            raise

    def write(self, record: dict) -> None:
        _check_no_secrets(record)
        record = dict(record)
        record.setdefault('ts', _now())
        line = json.dumps(record, sort_keys=True, separators=(',', ':'))
        self._append(line.encode() + b'\n')
        os.fsync(self._fd)

    def _append(self, data: bytes) -> None:
        while data:  # os.write may write less than asked
            data = data[os.write(self._fd, data):]

    def event(self, server_id: str, event: str, **fields: ty.Any) -> None:
        self.write(dict(fields, type='event', server=server_id, event=event))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the lock
            self._fd = -1


def in_use(path: str) -> bool:
    """Is a batch writing this journal now (holding its lock)?

    Asks for a shared lock on a descriptor of our own, read-only, and drops
    it at once: nothing is written. For that instant a batch starting
    ``--resume`` on it would be told it is busy, as it would while any
    other reader held it.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return True
        raise
    finally:
        os.close(fd)  # releases our lock, if we got it
    return False


class ServerState(ty.NamedTuple):
    state: str
    migration_id: ty.Optional[int] = None
    baseline_id: int = 0           # newest record before our submit
    result: ty.Optional[str] = None
    attempts: int = 0
    plan: ty.Optional[dict] = None
    message: str = ''
    before: ty.Optional[str] = None  # the state its verdict came in
    # Nova's time when a request of ours went out without a clean answer.
    lost_at: ty.Optional[str] = None
    # Final records created before then are older too (step.Follow).
    not_before: ty.Optional[str] = None
    # What was done of a stalled live migration (force-complete-sent,
    # abort-sent ...): never done again by a resume.
    stall: ty.Optional[ty.Dict[str, ty.Any]] = None


def _whole(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


class Replay(ty.NamedTuple):
    header: dict
    servers: ty.Dict[str, ServerState]
    torn: bool
    # Hosts whose compute service the batch disabled (--disable-source).
    disabled: ty.FrozenSet[str] = frozenset()
    # A rolling run's host records (engine/rolling.py reads them), in order.
    rolling: ty.Tuple[dict, ...] = ()


class Records(ty.NamedTuple):
    """A journal's records as written, checked; ``torn``: a cut last line."""

    header: dict
    records: ty.List[dict]  # the header first
    torn: bool


# Header sections that are objects in every journal this tool writes.
HEADER_OBJECTS = ('selection', 'options', 'limits', 'cloud', 'rolling')


def read(path: str) -> Records:
    """Every record of a journal, with the errors a damaged one earns.

    ``replay`` (for --resume) and the report read through here, so a damaged
    journal gets the same message from both.
    """
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except FileNotFoundError:
        raise JournalError('no journal at %s' % path)
    except IsADirectoryError:
        raise JournalError('%s is a directory, not a journal' % path)
    if not data.strip():
        raise JournalError('journal %s is empty: it has no batch header'
                           % path)
    lines = data.split(b'\n')
    torn = False
    if lines[-1] == b'':
        lines.pop()
    else:
        # No newline at the end: the last write was cut short.
        try:
            json.loads(lines[-1])
        except ValueError:
            lines.pop()
            torn = True
    records = []
    for number, raw in enumerate(lines, 1):
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or 'type' not in record:
                raise ValueError('not a journal record')
            if record['type'] == 'event' and not (
                    isinstance(record.get('server'), str)
                    and isinstance(record.get('event', ''), str)):
                raise ValueError('an event without a server, or its name '
                                 'not a string')
        except ValueError as exc:
            raise JournalError('journal %s is damaged at line %d: %s'
                               % (path, number, exc))
        records.append(record)
    if not records or records[0].get('type') != 'header':
        raise JournalError('journal %s does not start with a batch header; '
                           'is it an osc-migrate-plus journal?' % path)
    header = records[0]
    if header.get('version') != FORMAT_VERSION:
        raise JournalError('journal %s has format version %r; this client '
                           'reads version %d' % (path, header.get('version'),
                                                 FORMAT_VERSION))
    for key in HEADER_OBJECTS:
        if header.get(key) is not None and not isinstance(header[key], dict):
            raise JournalError('journal %s is damaged: its header\'s "%s" '
                               'is not an object' % (path, key))
    return Records(header, records, torn)


def replay(path: str) -> Replay:
    """Read a journal back: its header and where each server stands."""
    header, records, torn = read(path)
    servers: ty.Dict[str, ServerState] = {}
    disabled: ty.Set[str] = set()
    rolling = []
    for record in records[1:]:
        if str(record['type']).startswith(ROLLING_PREFIXES):
            rolling.append(record)
        elif record['type'] == 'service-disabled':
            disabled.add(str(record.get('host')))
        elif record['type'] == 'plan':
            for item in record.get('servers', []):
                state = SKIPPED if item.get('verdict') == 'skipped' \
                    else PLANNED
                servers[item['id']] = ServerState(state, plan=item)
        elif record['type'] == 'event':
            sid = record['server']
            current = servers.get(sid, ServerState(PLANNED))
            servers[sid] = apply(current, record)
    return Replay(header, servers, torn, frozenset(disabled),
                  tuple(rolling))


def apply(current: ServerState, record: dict) -> ServerState:
    """Where a server stands after one more of its events."""
    event = record.get('event')
    if event == 'submitting':
        return current._replace(state=SUBMITTING,
                                baseline_id=record.get('baseline_id') or 0,
                                attempts=current.attempts + 1,
                                lost_at=record.get('nova_time'),
                                not_before=record.get('not_before'))
    if event == 'submit-failed':
        # Nova refused it. Journals of versions before 'refused' was
        # written also used this event when the answer was lost: then Nova
        # may still carry the request out.
        return current._replace(state=PLANNED if record.get('refused')
                                else UNCERTAIN)
    if event == 'submit-unanswered':
        return current._replace(state=UNCERTAIN, lost_at=record.get(
            'nova_time') or current.lost_at)
    if event == 'not-taken':
        # Nova showed no sign of it: sending again is safe.
        return current._replace(state=PLANNED)
    if event == 'not-sent':
        # Journaled as submitting, then held back (a stop): never sent.
        return current._replace(state=PLANNED,
                                attempts=max(0, current.attempts - 1))
    if event in ('submitted', 'adopted', 'taken'):
        baseline = record.get('baseline_id')
        return current._replace(
            state=SUBMITTED,
            migration_id=record.get('migration_id', current.migration_id),
            baseline_id=current.baseline_id if baseline is None
            else baseline)
    if event == 'migration':
        return current._replace(state=SUBMITTED,
                                migration_id=record.get('migration_id'))
    if event in STALL_EVENTS:
        return current._replace(stall=_stall(current.stall, record))
    if event == 'verdict':
        result = record.get('result')
        return current._replace(
            state=FINISHED, result=result, message=record.get('message', ''),
            migration_id=record.get('migration_id') or current.migration_id,
            before=current.state)
    return current


# Events of a stalled live migration, and of an abort (a stall's or the
# deadline's): a resume never sends one again, and knows why it ended.
STALL_EVENTS = ('stalled', 'force-complete-sent', 'force-complete-refused',
                'abort-sent', 'abort-refused')


def _stall(current: ty.Optional[ty.Dict[str, ty.Any]],
           record: dict) -> ty.Dict[str, ty.Any]:
    done = dict(current or {})
    event = record.get('event')
    if record.get('note'):
        done['note'] = record['note']
    if event == 'force-complete-sent':
        done['action'] = 'force-complete'
    elif event == 'abort-sent':
        done['abort_sent'] = True
        if record.get('why') == 'stall':
            done['action'] = 'abort'
    elif event in ('force-complete-refused', 'abort-refused'):
        done['refused'] = '%s refused: %s' % (
            event.split('-refused')[0], record.get('message', ''))
        if event == 'abort-refused':
            done['abort_sent'] = False
    return done


def binding_differences(recorded: dict, given: dict) -> ty.List[str]:
    """Options of a resumed run that contradict the journal's."""
    return sorted('%s (journal: %r, now: %r)' % (key, recorded.get(key),
                                                 value)
                  for key, value in given.items()
                  if key in recorded and recorded[key] != value)
