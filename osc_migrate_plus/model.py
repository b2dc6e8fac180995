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

"""What Nova tells us and what we conclude, shared by every layer.

Imports nothing of the project: the gateway builds these values, the engine
judges them, the commands render them.
"""

import dataclasses
import datetime
import enum
import typing as ty


class Kind(str, enum.Enum):
    COLD = 'cold'
    LIVE = 'live'


class Result(str, enum.Enum):
    """What became of one server: the ``Result`` column of both reports."""

    MIGRATED = 'migrated'      # moved; a cold one waits in VERIFY_RESIZE
    CONFIRMED = 'confirmed'
    REVERTED = 'reverted'
    FAILED = 'failed'
    TIMEOUT = 'timeout'
    ABORTED = 'aborted'
    INTERRUPTED = 'interrupted'
    DELETED = 'deleted'        # the server no longer exists
    # Batch only: servers this run did not migrate.
    SKIPPED = 'skipped'
    PLANNED = 'planned'        # dry run
    NOT_STARTED = 'not-started'


class Goal(str, enum.Enum):
    MIGRATE = 'migrate'  # stop at VERIFY_RESIZE (cold) / completed (live)
    CONFIRM = 'confirm'
    REVERT = 'revert'


class Action(str, enum.Enum):
    CONFIRM = 'confirm'
    REVERT = 'revert'


# Nova's migration record statuses.
COLD_RUNNING = ('pre-migrating', 'migrating', 'post-migrating')
LIVE_RUNNING = ('accepted', 'queued', 'preparing', 'running',
                'post-migrating')
FAILED_STATUSES = ('error', 'failed', 'cancelled')
FINAL_STATUSES = FAILED_STATUSES + ('confirmed', 'reverted', 'completed',
                                    'done')
# Record types a migrate request creates; a 'resize' (a flavor change) or
# an 'evacuation' is someone else's business.
MIGRATION_TYPES = ('migration', 'live-migration')
# Server task states of a migration under way, before its record may exist
# (right after the API's 202) and until it settles.
MIGRATING_TASK_STATES = ('resize_prep', 'resize_migrating',
                         'resize_migrated', 'resize_finish', 'migrating',
                         'resize_confirming', 'resize_reverting')


@dataclasses.dataclass(frozen=True)
class Server:
    id: str
    name: str
    status: str
    task_state: ty.Optional[str]
    host: ty.Optional[str]
    project_id: ty.Optional[str] = None
    fault: ty.Optional[str] = None
    # True when policy hides the host attribute (``host`` is then None
    # although the server is on one).
    host_hidden: bool = False
    updated: ty.Optional[str] = None  # Nova's clock


@dataclasses.dataclass(frozen=True)
class Migration:
    id: int
    uuid: ty.Optional[str]
    type: str  # 'migration', 'resize', 'live-migration', 'evacuation'
    status: str
    source: ty.Optional[str]
    dest: ty.Optional[str]
    created_at: ty.Optional[str] = None  # Nova's clock
    updated_at: ty.Optional[str] = None
    server_id: ty.Optional[str] = None

    @property
    def kind(self) -> Kind:
        return Kind.LIVE if self.type == 'live-migration' else Kind.COLD


@dataclasses.dataclass(frozen=True)
class Hypervisor:
    """A compute node: its host's service, and its resource provider.

    ``uuid`` is the compute node's, which is its resource provider's in
    Placement (compute API 2.53+).
    """

    uuid: str
    name: str              # hypervisor_hostname: the provider's name
    host: ty.Optional[str]  # its compute service's host
    enabled: bool
    up: bool
    disabled_reason: ty.Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Inventory:
    total: int
    reserved: int = 0
    allocation_ratio: float = 1.0
    min_unit: int = 1
    max_unit: ty.Optional[int] = None
    step_size: int = 1

    @property
    def capacity(self) -> int:
        """What Placement lets consumers use: (total - reserved) x ratio."""
        return int((self.total - self.reserved) * self.allocation_ratio)


@dataclasses.dataclass(frozen=True)
class Provider:
    """A resource provider: its inventory and what is used of it."""

    uuid: str
    name: str
    inventories: ty.Dict[str, Inventory]
    usages: ty.Dict[str, int]

    def free(self) -> ty.Dict[str, int]:
        return {rc: inv.capacity - self.usages.get(rc, 0)
                for rc, inv in self.inventories.items()}


def nova_time(text: ty.Optional[str]) -> ty.Optional[datetime.datetime]:
    """One of Nova's timestamps (UTC, with or without its zone)."""
    if not text:
        return None
    try:
        value = datetime.datetime.fromisoformat(text.replace('Z', '+00:00'))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value


class NovaError(Exception):
    """A refusal or failure from Nova, with what the user needs to know."""

    def __init__(self, message: str, status: ty.Optional[int] = None):
        super().__init__(message)
        self.status = status


class MicroversionError(NovaError):
    def __init__(self, message: str, explicit: bool = False):
        super().__init__(message)
        # The user chose the version (--os-compute-api-version): a usage
        # error, not the cloud's.
        self.explicit = explicit


class NotFound(NovaError):
    pass


class Transient(NovaError):
    """Connection failure, 5xx or 429: worth another try later.

    ``maybe_applied``: the request may have reached Nova and been carried
    out although no answer came back (a reset or timeout after sending, any
    5xx: a proxy answers 502, 503 or 504 when its backend went away
    mid-request). False only when it surely was not: the connection was
    never made, or a rate limiter said 429 (``retry_after`` seconds).
    """

    def __init__(self, message: str, status: ty.Optional[int] = None,
                 maybe_applied: bool = True):
        super().__init__(message, status)
        self.maybe_applied = maybe_applied
        self.retry_after = 0.0


class CredentialsExpired(Exception):
    """Nova refused the credentials (401): a token expired or was revoked.

    Not a ``NovaError``: nothing per server is to be concluded from it, so
    no per-server handler may take it; the whole run stops, resumable.
    Keystone-issued credentials (password, application credential) are
    renewed by keystoneauth before this is raised; a fixed token is not.
    """


class PlacementUnavailable(Exception):
    """Placement cannot be read.

    Not in the catalog, unreachable, or its policy refuses this user (admin
    only by default). Not a ``NovaError``: what needs Placement (a capacity
    estimate, a check for leaked allocations) says so and the run goes on
    without it.
    """
