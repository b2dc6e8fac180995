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

"""What the engine needs from Nova: the gateway provides it.

A protocol, so that the engine never imports the gateway (arrows run one
way: commands -> engine -> model; gateway -> model) and a test can stand
any Nova behind it.
"""

import datetime
import typing as ty

from osc_migrate_plus import model


class Nova(ty.Protocol):
    def supports(self, version: str) -> bool: ...

    def require(self, version: str, what: str) -> None: ...

    def nova_now(self) -> ty.Optional[datetime.datetime]: ...

    def endpoint(self) -> ty.Optional[str]: ...

    # What Nova's policy showed this user (learned from its 403s).
    @property
    def lists_all_projects(self) -> bool: ...

    @property
    def migrations_project(self) -> ty.Optional[str]: ...

    # -- reads --------------------------------------------------------------
    def find_server(self, name_or_id: str) -> model.Server: ...

    def get_server(self, server_id: str) -> model.Server: ...

    def list_servers(self, host: ty.Optional[str] = None,
                     project: ty.Optional[str] = None,
                     status: ty.Optional[str] = None,
                     changes_since: ty.Optional[str] = None
                     ) -> ty.List[model.Server]: ...

    def migrations(self, server_id: str, limit: ty.Optional[int] = None
                   ) -> ty.List[model.Migration]: ...

    def newest_migration(self, server_id: str
                         ) -> ty.Optional[model.Migration]: ...

    def migrations_since(self, changes_since: str
                         ) -> ty.List[model.Migration]: ...

    def migrations_at(self, host: str) -> ty.List[model.Migration]: ...

    def newest_migration_at(self, host: str
                            ) -> ty.Optional[model.Migration]: ...

    def live_progress(self, server_id: str,
                      migration_id: int) -> ty.Optional[dict]: ...

    def explain(self, server: model.Server,
                migration: ty.Optional[model.Migration]
                ) -> ty.Optional[str]: ...

    def compute_services(self) -> ty.List[dict]: ...

    def compute_hosts(self) -> ty.List[str]: ...

    def aggregates(self) -> ty.List[dict]: ...

    def hypervisors(self) -> ty.List[model.Hypervisor]: ...

    # -- writes -------------------------------------------------------------
    def start_migration(self, server_id: str, live: bool,
                        host: ty.Optional[str] = None,
                        block_migration: ty.Optional[bool] = None
                        ) -> None: ...

    def confirm(self, server_id: str) -> None: ...

    def revert(self, server_id: str) -> None: ...

    def abort(self, server_id: str, migration_id: int) -> None: ...

    def force_complete(self, server_id: str,
                       migration_id: int) -> None: ...

    def disable_service(self, service_id: str, reason: str) -> None: ...

    def enable_service(self, service_id: str) -> None: ...


class Placement(ty.Protocol):
    """What the engine reads of Placement (``placement.PlacementGateway``).

    Each raises ``model.PlacementUnavailable`` when Placement cannot be
    read (not in the catalog, unreachable, refused by its policy).
    """

    def provider(self, uuid: str) -> ty.Optional[model.Provider]: ...

    def provider_allocations(self, uuid: str
                             ) -> ty.Dict[str, ty.Dict[str, int]]: ...
