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

"""One test per hint, on the texts Nova really produces.

Each text is what Nova formats (nova 34.0.0's source, the file named above
it; nova 29 to 33 word them alike), as the gateway passes it on: an API
refusal as ``HTTP <status>: <explanation>``, a failure recorded by Nova as
its server fault or ``<event> failed on <host>: <details>``.
"""

import testtools

from osc_migrate_plus.engine import hints

UUID = '6f1d9a4e-2b7c-4c1e-9a53-0e2f8d7b4c11'
# nova/virt/libvirt/driver.py migrate_disk_and_power_off: a failed
# self._remotefs.create_dir (nova/utils.py ssh_execute) is raised as
# InstanceFaultRollback(ResizeError(reason=_("not able to execute ssh
# command: %s") % e)); e is oslo.concurrency's ProcessExecutionError,
# whose text is description, Command, Exit code, Stdout %r, Stderr %r.
SSH_FAILED = (
    "Resize error: not able to execute ssh command: Unexpected error while "
    "running command.\nCommand: ssh -o BatchMode=yes 192.168.122.12 mkdir "
    "-p /var/lib/nova/instances/" + UUID + "\nExit code: 255\nStdout: ''\n"
    "Stderr: '%s\\r\\n'")


class TestHints(testtools.TestCase):

    def assertHint(self, key, text):
        hint = hints.hint_for(text)
        self.assertIsNotNone(hint, text)
        self.assertEqual(key, hint.key, text)
        self.assertTrue(hint.text)
        return hint

    # -- the policy 403 (the seed document's first note) --------------------
    def test_policy_migrate(self):
        # nova/exception.py PolicyNotAuthorized; the rule names come from
        # nova/policies/migrate_server.py.
        hint = self.assertHint(
            'policy', "HTTP 403: Policy doesn't allow os_compute_api:"
            "os-migrate-server:migrate to be performed.")
        self.assertIn('os_compute_api:os-migrate-server:migrate', hint.text)
        self.assertIn('policy file', hint.text)

    def test_policy_other_migrate_rules(self):
        # nova/policies/migrate_server.py, migrations.py.
        for rule in ('os-migrate-server:migrate_live',
                     'os-migrate-server:migrate:host',
                     'os-migrate-server:migrate_live:host',
                     'os-migrations:index'):
            hint = self.assertHint(
                'policy', "Policy doesn't allow os_compute_api:%s to be "
                "performed." % rule)
            self.assertIn('(rule os_compute_api:%s)' % rule, hint.text)

    # -- SSH between compute hosts (the seed document's second note) -------
    def test_ssh_host_key(self):
        hint = self.assertHint(
            'ssh-host-key', SSH_FAILED % 'Host key verification failed.')
        self.assertIn('known_hosts', hint.text)
        # As the event details carry it (nova/compute/manager.py
        # wrap_instance_event), and as the seed document shows it.
        self.assertHint('ssh-host-key', (
            'compute_resize_instance failed on compute1: '
            + SSH_FAILED % 'Host key verification failed.'))
        self.assertHint('ssh-host-key', (
            'ProcessExecutionError: Unexpected error while running command.'
            '\nStderr: u Host key verification failed.\r\n'))

    def test_ssh_cut_short_by_nova(self):
        # What the API shows: Nova keeps the first 255 bytes of the message
        # (nova/compute/utils.py exception_to_dict, utils.safe_truncate),
        # before ssh's own words with the usual instance path.
        shown = (SSH_FAILED % 'Host key verification failed.')[:255]
        self.assertNotIn('Host key verification failed', shown)
        hint = self.assertHint('ssh', 'compute_resize_instance failed on '
                               'compute1: ' + shown)
        self.assertIn('known_hosts', hint.text)
        self.assertIn('nova-compute log', hint.text)

    def test_ssh_login(self):
        self.assertHint('ssh-login', SSH_FAILED % (
            'nova@192.168.122.12: Permission denied '
            '(publickey,gssapi-keyex,gssapi-with-mic).'))

    # -- the scheduler -------------------------------------------------------
    def test_no_valid_host(self):
        # nova/exception.py NoValidHost "No valid host was found.
        # %(reason)s"; reasons from nova/scheduler/manager.py and
        # nova/conductor/manager.py.
        for reason in ('There are not enough hosts available.',
                       'No valid host found for cold migrate', ''):
            hint = self.assertHint('no-valid-host',
                                   'No valid host was found. %s' % reason)
            self.assertIn('capacity estimate', hint.text)
        # The API's 400 for a live migration to the server's own host.
        self.assertHint('no-valid-host', 'HTTP 400: No valid host was '
                        'found. ')

    def test_live_retries(self):
        # nova/conductor/tasks/live_migrate.py _check_not_over_max_retries,
        # MaxRetriesExceeded "Exceeded maximum number of retries.
        # %(reason)s".
        self.assertHint('live-retries', (
            'Exceeded maximum number of retries. Exceeded max scheduling '
            'retries 3 for instance %s during live migration' % UUID))

    # -- live-migration pre-checks ------------------------------------------
    def test_live_cpu(self):
        # nova/virt/libvirt/driver.py _compare_cpu: InvalidCPUInfo
        # "Unacceptable CPU info: %(reason)s".
        self.assertHint('live-cpu', (
            "Unacceptable CPU info: CPU doesn't have compatibility.\n\n0\n\n"
            "Refer to http://libvirt.org/html/libvirt-libvirt-host.html#"
            "virCPUCompareResult"))

    def test_live_storage(self):
        # nova/virt/libvirt/driver.py check_can_live_migrate_source:
        # InvalidSharedStorage "%(path)s is not on shared storage:
        # %(reason)s", InvalidLocalStorage "... local storage ..." (path is
        # the source host's name).
        self.assertHint('live-storage', (
            'compute1 is not on shared storage: Shared storage '
            'live-migration requires either shared storage or '
            'boot-from-volume with no local disks.'))
        self.assertHint('live-storage', (
            'HTTP 400: compute1 is not on local storage: Block migration '
            'can not be used with shared storage.'))

    def test_live_destination_too_old(self):
        # nova/exception.py, raised by nova/conductor/tasks/live_migrate.py
        # _check_compatible_with_source_hypervisor and
        # nova/compute/api.py.
        for text in (
                'The instance requires a newer hypervisor version than has '
                'been provided.',
                'vTPM live migration is not supported by old nova-compute '
                'services. Upgrade your nova-compute services to Gazpacho '
                '(33.0.0) or later.',
                'HTTP 400: The port-resource-request-groups neutron API '
                'extension is not supported by old nova compute service. '
                'Upgrade your compute services to Xena (24.0.0) or later.',
                'Migration pre-check error: Instance has an associated NUMA '
                'topology, cell contains compute nodes older than train, '
                'and the enable_numa_live_migration workaround is '
                'disabled.'):
            self.assertHint('live-too-old', text)

    # -- compute services and hosts -----------------------------------------
    def test_compute_service_down(self):
        # nova/exception.py ComputeServiceUnavailable (the conductor's
        # _check_host_is_up); ServiceUnavailable, the 409 of migrate and
        # os-migrateLive when the source's service is down
        # (nova/compute/api.py check_instance_host).
        self.assertHint('compute-down', 'Compute service of compute2 is '
                        'unavailable at this time.')
        self.assertHint('compute-down', 'HTTP 409: Service is unavailable '
                        'at this time.')

    def test_host_unknown_or_unmapped(self):
        # nova/exception.py ComputeHostNotFound, HostMappingNotFound.
        self.assertHint('host-unknown', 'HTTP 400: Compute host compute9 '
                        'could not be found.')
        self.assertHint('host-unmapped', "Host 'compute4' is not mapped to "
                        "any cell")

    # -- another action under way -------------------------------------------
    def test_task_in_progress(self):
        # nova/api/openstack/common.py
        # raise_http_conflict_for_instance_invalid_state (the 409), and
        # nova/exception.py InstanceInvalidState.
        self.assertHint('task-in-progress', (
            "HTTP 409: Cannot 'migrate' instance %s while it is in "
            "task_state resize_prep" % UUID))
        self.assertHint('task-in-progress', (
            "Cannot 'os-migrateLive' instance %s while it is in task_state "
            "migrating" % UUID))
        self.assertHint('task-in-progress', (
            'Instance %s in task_state migrating. Cannot live migrate while '
            'the instance is in this state.' % UUID))

    # -- no guess -------------------------------------------------------------
    def test_unknown_messages_get_no_hint(self):
        # Real Nova texts of other causes (nova/exception.py,
        # nova/api/openstack/common.py, the harness's own reason).
        for text in (
                None, '',
                'Instance %s is locked' % UUID,
                "HTTP 409: Cannot 'migrate' instance %s while it is in "
                "vm_state paused" % UUID,
                'Cannot migrate to the host where the server exists.',
                'Unable to migrate instance (%s) to current host '
                '(compute1).' % UUID,
                'Connection to the hypervisor is broken on host',
                "Policy doesn't allow os_compute_api:os-hypervisors:list to "
                "be performed.",
                'Migration error: minicloud: migrations to compute2 are set '
                'to fail',
                'Migration pre-check error: Unable to migrate %s to '
                'compute2: Lack of memory(host:512.0 <= instance:1024)'
                % UUID,
                'timed out after 3600s; the migration goes on in Nova'):
            self.assertIsNone(hints.hint_for(text), text)

    def test_every_hint_is_tested(self):
        tested = {'policy', 'ssh-host-key', 'ssh-login', 'ssh',
                  'no-valid-host',
                  'live-retries', 'live-cpu', 'live-storage', 'live-too-old',
                  'compute-down', 'host-unknown', 'host-unmapped',
                  'task-in-progress'}
        self.assertEqual(tested, set(hints.KEYS))

    # -- in the message -------------------------------------------------------
    def test_annotate_puts_the_hint_after_novas_reason(self):
        reason = ("submit refused: HTTP 403: Policy doesn't allow "
                  "os_compute_api:os-migrate-server:migrate to be performed.")
        message, hint = hints.annotate(reason)
        self.assertEqual('policy', hint.key)
        self.assertEqual(reason + ' Hint: ' + hint.text, message)
        # Said once: a message that has one (resumed) gets no second.
        self.assertEqual((message, None), hints.annotate(message))
        # A reason without a full stop gets one before the hint.
        message, hint = hints.annotate('No valid host was found. x')
        self.assertTrue(message.startswith('No valid host was found. x. '
                                           'Hint: '))
        self.assertEqual(('the same', None), hints.annotate('the same'))
