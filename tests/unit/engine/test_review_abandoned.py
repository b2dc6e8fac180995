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

"""Review of the rule that fails a record Nova left under way.

``Stepper._abandoned``: a record in UNDER_WAY whose server has been idle
(no task, not ERROR) "on its source" for ABANDONED_AFTER seconds is failed.
A host hidden by policy counts as maybe the source. Each test here is a
normal migration Nova is still carrying out that the rule must not fail.
"""

import testtools

from osc_migrate_plus.engine import follower
from osc_migrate_plus.engine import step
from osc_migrate_plus import gateway as gw
from osc_migrate_plus import model
from tests.unit.engine import test_batch
from tests.unit.engine import test_stall
from tests.unit import fakenova

R = model.Result
# The source's work after the destination cleared the server's task
# (ComputeManager._post_live_migration, after the RPC call to
# post_live_migration_at_destination): update_available_resource (the
# whole host's resource tracker, under COMPUTE_RESOURCE_SEMAPHORE, shared
# with the periodic task of the same name), the scheduler and notifier
# updates, the console tokens; only then migration.status = 'completed'.
POST_LIVE_TAIL = 90.0


def setting(test, holds, what):
    """A precondition of the scenario (not what the test proves)."""
    test.assertTrue(holds, 'the scenario did not happen: %s' % what)


class TestPostLiveTailHiddenHosts(test_batch.RunnerTestCase):
    """A live migration done on its destination, its record not yet.

    post_live_migration_at_destination (on the destination) sets the
    server's host and clears its task; the record says ``running`` until
    the source's _post_live_migration has run its tail. With host names
    hidden by policy (the default for anyone but an admin: a project
    manager of Nova >= 32 may live-migrate but not see hosts) the server
    idle on the destination looks idle on its source.
    """

    def setUp(self):
        super().setUp()
        self.nova.hide_hosts = True
        self.nova.timing['live_record_lag'] = POST_LIVE_TAIL

    def test_batch_live_not_failed_before_completed(self):
        [sid] = self.servers(1)
        ok, entries = self.run_batch([sid], mode='live', timeout=3600)
        entry = entries[sid]
        self.nova.settle()  # Nova goes on after a verdict
        [record] = self.nova.records(sid)
        server = self.nova.server(sid)
        setting(self, record['status'] == 'completed' and
                server['OS-EXT-SRV-ATTR:host'] != 'compute1',
                'record %s, server on %s' % (
                    record['status'], server['OS-EXT-SRV-ATTR:host']))
        self.assertNotEqual(R.FAILED, entry.result, entry.message)
        self.assertEqual(R.MIGRATED, entry.result, entry.message)


class TestWatchPostLiveTailHiddenHosts(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.nova = fakenova.FakeNova(hide_hosts=True)
        self.nova.timing['live_record_lag'] = POST_LIVE_TAIL
        self.useFixture(self.nova.client_time())
        self.gateway = gw.NovaGateway(self.nova.proxy)
        self.sid = self.nova.add_server('vm')

    def test_watch_live_not_failed_before_completed(self):
        loop = follower.Follower(self.gateway, test_stall.Reporter(),
                                 interval=2.0, timeout=3600)
        server = self.gateway.get_server(self.sid)
        setting(self, server.host is None and server.host_hidden,
                'host shown: %s' % server.host)
        f = step.Follow(server_id=self.sid, source=server.host,
                        original_status=server.status,
                        kind=model.Kind.LIVE, server=server)
        loop.start(f, live=True, host=None, block_migration=None)
        out = loop.follow(f)
        self.nova.settle()  # Nova goes on after a verdict
        [record] = self.nova.records(self.sid)
        setting(self, record['status'] == 'completed',
                'record %s' % record['status'])
        self.assertNotEqual(R.FAILED, out.result, out.message)
        self.assertEqual(R.MIGRATED, out.result, out.message)
