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

"""Functional test base: one real minicloud per test class."""

import json
import subprocess
import typing as ty
import unittest

import fixtures
import testtools
from testtools import content

from tests.minicloud import external
from tests.minicloud import fixture as minicloud


class MiniCloudTestCase(testtools.TestCase):
    """Starts a minicloud once for the class and always stops it.

    A failing test gets the tail of the cloud's log attached, and the cloud's
    directory (logs, databases) is kept and its path printed.
    """

    COMPUTES = 3
    CONFIRM_WINDOW = 0
    # Nova policy rules over the defaults (see MiniCloud), None: defaults.
    POLICY: ty.Optional[ty.Dict[str, str]] = None
    # What of the harness the whole class tests, if it tests the harness
    # itself: skipped against an external cloud.
    HARNESS_ONLY: ty.Optional[str] = None
    cloud: minicloud.MiniCloud

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        if cls.HARNESS_ONLY and external.enabled():
            raise external.HarnessOnly(cls.HARNESS_ONLY)
        # OS_CLOUD given: that cloud, not one of ours (see external.py).
        kind = external.ExternalCloud if external.enabled() else \
            minicloud.MiniCloud
        cls.cloud = kind(computes=cls.COMPUTES,
                         confirm_window=cls.CONFIRM_WINDOW, policy=cls.POLICY)
        try:
            cls.cloud.setUp()
        except fixtures.MultipleExceptions as exc:
            # (fixtures cleaned it up already.)
            first = exc.args[0][1]
            # A skip (an external cloud lacks what the class needs) stays
            # a skip; fixtures wraps whatever its setUp raised.
            raise first if isinstance(first, unittest.SkipTest) else exc
        except BaseException:
            cls.cloud.cleanUp()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.cloud.cleanUp()
        super().tearDownClass()

    def setUp(self) -> None:
        super().setUp()
        self.addOnException(self._keep_cloud_log)
        # Controls are per cloud: a test starts with none in force.
        self.cloud.reset()

    def _keep_cloud_log(self, exc_info: ty.Any) -> None:
        self.cloud.keep = True
        self.addDetail('minicloud-log',
                       content.text_content(self.cloud.log_tail()))

    # -- the real CLI ------------------------------------------------------
    def openstack(self, *args: str, user: str = 'admin',
                  expect_rc: ty.Optional[int] = 0,
                  timeout: float = 600,
                  env: ty.Optional[ty.Dict[str, str]] = None
                  ) -> subprocess.CompletedProcess:
        """Run the real CLI, in ``env`` if given.

        ``self.cloud.cli_env`` makes one that goes through a fault proxy,
        or has the client's clock off the cloud's.
        """
        result = self.cloud.openstack(*args, user=user, timeout=timeout,
                                      env=env)
        self.addDetail('cli-%s' % ' '.join(args)[:60],
                       content.text_content(
                           'rc=%s\nstdout:\n%s\nstderr:\n%s' % (
                               result.returncode, result.stdout,
                               result.stderr)))
        if expect_rc is not None:
            self.assertEqual(expect_rc, result.returncode,
                             'openstack %s\nstderr: %s' % (
                                 ' '.join(args), result.stderr))
        return result

    def openstack_json(self, *args: str, **kwargs: ty.Any) -> ty.Any:
        result = self.openstack(*(args + ('-f', 'json')), **kwargs)
        return json.loads(result.stdout)

    def server_view(self, server_id: str) -> ty.Dict[str, ty.Any]:
        """status and host of a server, as the CLI shows them."""
        data = self.openstack_json('server', 'show', server_id)
        return {'status': data['status'],
                'host': data['OS-EXT-SRV-ATTR:host']}
