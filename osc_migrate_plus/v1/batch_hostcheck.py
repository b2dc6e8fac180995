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

"""The host check that ends ``batch --source-host`` (and its dry run).

What is checked and judged is the engine's (``engine/hostcheck.py``); here
it is said on stderr (each leaked allocation and its cure, then one summary
line per host, last), written to the journal, and turned into the exit
code.
"""

import dataclasses
import typing as ty


from osc_migrate_plus.engine import hostcheck
from osc_migrate_plus.engine import journal as jrn
from osc_migrate_plus.engine import nova as nova_api
from osc_migrate_plus import model
from osc_migrate_plus import placement
from osc_migrate_plus.v1 import batch_progress
from osc_migrate_plus.v1 import exit_codes


@dataclasses.dataclass
class HostCheck:
    hosts: ty.List[str]
    # The plan took every server of the host (no names, --project,
    # --status): one it never had arrived during the run.
    whole_host: bool
    require_empty: bool
    placement: ty.Optional[nova_api.Placement]

    def run(self, nova: nova_api.Nova,
            reporter: batch_progress.BatchProgress,
            notes: ty.Dict[str, str], names: ty.Dict[str, str],
            journal: ty.Optional[jrn.Journal] = None,
            listed: ty.Optional[ty.Dict[str, ty.List[model.Server]]] = None
            ) -> ty.List[hostcheck.HostReport]:
        """Check, journal, say.

        ``listed``: per host, its servers as the plan just read them, all
        of them (a dry run of whole hosts).
        """
        reports = hostcheck.check(
            nova, self.placement, self.hosts, notes, self.whole_host, names,
            listed=listed)
        for report in reports:
            if journal is not None:
                journal.write(report.to_journal(self.require_empty))
            for line in report.details():
                reporter.error(line)
        for report in reports:
            # What is left is said even with --quiet, as failures are.
            say = reporter.info if report.empty else reporter.error
            say(report.line())
        return reports

    def exit_code(self, code: int,
                  reports: ty.List[hostcheck.HostReport]) -> int:
        """The run's code, made 1 by a host that fails the check.

        An interrupted run stays 130: the check is reported, it does not
        change why the run ended.
        """
        if code == exit_codes.INTERRUPTED:
            return code
        if any(r.fails(self.require_empty) for r in reports):
            return exit_codes.FAILURE
        return code


def placement_gateway(app: ty.Any) -> ty.Optional[placement.PlacementGateway]:
    """Placement through the user's own connection, or None if it has none.

    A Placement missing from the catalog is found out at the first read
    (``PlacementUnavailable``), which the check reports.
    """
    try:
        proxy = app.client_manager.sdk_connection.placement
    except Exception:  # noqa: B902
        # Older SDKs raise at attribute access when the service is not in
        # the catalog, with whatever error their catalog code meets.
        return None
    return placement.PlacementGateway(proxy) if proxy is not None else None
