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

"""The demo of the main job: drain a compute host of a real Nova.

Starts the minicloud (three hosts), boots a dozen servers on compute1 (four
of them stopped), drains compute1 with ``openstack server migrate batch
--source-host compute1 --mode auto --confirm``, shows compute1 empty and
stops the cloud. ``tox -e demo`` runs it.
"""

import subprocess
import sys
import time

from tests.minicloud import fixture


def main() -> int:
    started = time.monotonic()
    with fixture.MiniCloud(computes=3) as cloud:
        print('== a real Nova on 127.0.0.1 (nova-api %s), ready in %.1fs'
              % (cloud.info['compute_url'], cloud.start_seconds), flush=True)
        cloud.seed_servers('compute1', 12, stopped=4, prefix='demo')
        env = cloud.cli_env()

        def openstack(*args: str) -> int:
            cmd = [fixture.openstack_cli(), '--os-cloud', 'minicloud-admin']
            print('\n$ openstack %s' % ' '.join(args), flush=True)
            return subprocess.run(cmd + list(args), env=env).returncode

        openstack('server', 'list', '--all-projects', '--long', '-c', 'Name',
                  '-c', 'Status', '-c', 'Host')
        rc = openstack('server', 'migrate', 'batch', '--source-host',
                       'compute1', '--mode', 'auto', '--confirm',
                       '--interval', '1')
        openstack('server', 'list', '--all-projects', '--host', 'compute1')
        openstack('server', 'list', '--all-projects', '--long', '-c', 'Name',
                  '-c', 'Status', '-c', 'Host')
        print('\n== batch exit code %d; demo took %.0fs; stopping the cloud'
              % (rc, time.monotonic() - started), flush=True)
    return rc


if __name__ == '__main__':
    sys.exit(main())
