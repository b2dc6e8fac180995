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

"""The exit codes of both commands (documented in doc/source/user)."""

from osc_migrate_plus import model

SUCCESS = 0
FAILURE = 1      # failed, or an error: not found, 403, 409, ...; batch:
#                  the plan does not fit (capacity estimate)
USAGE = 2        # bad options; nothing was sent to Nova
# The deadline passed, or a live migration was aborted (at the deadline
# with --abort-on-timeout, or stalled with --on-stall abort): nothing broke,
# the server stays where it was; try again later.
TIMEOUT = 3
INTERRUPTED = 130  # Ctrl-C / SIGTERM

_BY_RESULT = {
    model.Result.MIGRATED: SUCCESS,
    model.Result.CONFIRMED: SUCCESS,
    model.Result.REVERTED: SUCCESS,
    model.Result.FAILED: FAILURE,
    model.Result.TIMEOUT: TIMEOUT,
    model.Result.ABORTED: TIMEOUT,
    model.Result.INTERRUPTED: INTERRUPTED,
    # The server is gone, or what was under way was not a migration.
    model.Result.DELETED: FAILURE,
    model.Result.SKIPPED: FAILURE,
}


def for_result(result: model.Result) -> int:
    return _BY_RESULT[result]
