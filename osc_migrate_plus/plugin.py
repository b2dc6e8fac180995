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

"""OpenStackClient plugin hooks.

OSC imports this module on every ``openstack`` call, so it imports nothing:
the commands load their dependencies only when they run.
"""

import argparse
import typing as ty

# Not "compute": that name is core OSC's and would replace its client.
API_NAME = 'migrate_plus'
API_VERSION_OPTION = 'os_migrate_plus_api_version'
# Without a default OSC looks for command group "openstack.migrate_plus.vNone"
# and silently loads no command.
DEFAULT_API_VERSION = '1'
API_VERSIONS = ('1',)


def make_client(instance: ty.Any) -> ty.Any:
    """Return openstacksdk's compute proxy.

    It honours --os-compute-api-version and the rest of the user's config.
    """
    return instance.sdk_connection.compute


def build_option_parser(
        parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # Deliberately adds nothing: core OSC owns --os-compute-api-version and
    # adding it again would make argparse crash the whole CLI.
    return parser
