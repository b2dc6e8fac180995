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

"""What to do about a failure Nova explained: a hint in the operator's words.

Each hint is matched on the exact wording Nova (or the tool it ran) uses for
one known cause, as its source formats it: a message that matches none gets
no hint, never a guess. Nova's messages are matched in English (a nova-api
running under another locale translates them: no hint then).

The texts come from nova's source (nova 29 to 34 word them alike); the unit
tests hold each one as Nova formats it.
"""

import dataclasses
import re
import typing as ty


@dataclasses.dataclass(frozen=True)
class Hint:
    key: str   # short and stable: one line on stderr per key and run
    text: str  # what to check or set, in the operator's words


@dataclasses.dataclass(frozen=True)
class _Rule:
    key: str
    patterns: ty.Tuple[str, ...]
    text: str


# The policy rules a migration meets (nova/policies/migrate_server.py,
# migrations.py, servers.py, servers_migrations.py).
_POLICY = (r"Policy doesn't allow (os_compute_api:(?:os-migrate-server|"
           r"os-migrations|servers:migrations|servers:confirm_resize|"
           r"servers:revert_resize)[\w:-]*) to be performed")

# First match wins: the most specific first.
_RULES = (
    # nova/exception.py PolicyNotAuthorized, the API's 403.
    _Rule('policy', (_POLICY,),
          "Nova's policy does not let your role do this (rule {0}). By "
          "Nova's defaults from nova 32 on, admins and the project's "
          "managers may migrate and read the project's migrations; naming "
          "a target host and reading every project's migrations is for "
          "admins (before nova 32 it is all admin only). Use credentials "
          "with such a role, or have the cloud's operators change the rule "
          "in Nova's policy file ([oslo_policy] policy_file of nova-api)."),
    # The cold migration's disk copy: libvirt's migrate_disk_and_power_off
    # first runs ssh to the destination (nova/virt/libvirt/driver.py,
    # nova/utils.py ssh_execute) and raises ResizeError("not able to execute
    # ssh command: " + oslo.concurrency's ProcessExecutionError). Nova keeps
    # only the first 255 bytes of a failure's message
    # (nova/compute/utils.py exception_to_dict), which cuts off ssh's own
    # words (the Stderr part) with the usual instance paths: those are
    # matched when they are there, libvirt's words when they are all there
    # is.
    _Rule('ssh-host-key', (r'Host key verification failed',),
          "The migration runs SSH from the source to the destination "
          "compute host (a cold migration's disk copy; a live migration "
          "over qemu+ssh), and the source does not know the destination's "
          "SSH host key. As the user nova-compute runs as (often nova), "
          "add every compute host's key to known_hosts on every other one "
          "(ssh to it once, or ssh-keyscan), and check that key-based SSH "
          "login works between them in both directions."),
    _Rule('ssh-login', (r'Permission denied \(publickey',),
          "The migration runs SSH from the source to the destination "
          "compute host, and the destination refused the source's key. As "
          "the user nova-compute runs as (often nova), set up key-based SSH "
          "login between all compute hosts (the public key in "
          "authorized_keys of every other host, with a login shell)."),
    _Rule('ssh', (r'not able to execute ssh command: ',),
          "The cold migration copies the disk over SSH, and ssh from the "
          "source to the destination compute host failed: SSH between the "
          "compute hosts is not set up. As the user nova-compute runs as "
          "(often nova), check that ssh from every compute host to every "
          "other works without a prompt: the destination's host key in "
          "known_hosts, key-based login accepted, port 22 reachable. Nova "
          "keeps only the start of the error; ssh's own message is in the "
          "source host's nova-compute log."),
    # nova/exception.py NoValidHost; the scheduler's reasons
    # (nova/scheduler/manager.py, nova/conductor/manager.py).
    _Rule('no-valid-host', (r'No valid host was found\.',),
          "The scheduler found no compute host to take the server (with "
          "--host: not that one). Check the capacity estimate of the plan "
          "(the free room for the server's flavor on the other enabled "
          "hosts: VCPU, memory, disk in Placement), that the destination "
          "services are up and enabled (openstack compute service list "
          "--service nova-compute), and what the flavor and image require "
          "(host aggregates, traits, server group affinity). A live "
          "migration also skips the hosts that fail its pre-checks: name "
          "one with --host to get its reason."),
    # Live migration without --host: the conductor tries the scheduler's
    # picks one by one and skips each that fails a pre-check
    # (nova/conductor/tasks/live_migrate.py, MaxRetriesExceeded).
    _Rule('live-retries', (r'Exceeded max scheduling retries \d+ for '
                           r'instance \S+ during live migration',),
          "Every destination the scheduler offered failed the "
          "live-migration pre-checks (the nova-conductor log says why, "
          "'Skipping host'). Name one with --host to get its reason, or "
          "raise [DEFAULT] migrate_max_retries."),
    # Live-migration pre-checks: the destination's CPU
    # (nova/virt/libvirt/driver.py _compare_cpu, InvalidCPUInfo).
    _Rule('live-cpu', (r"CPU doesn't have compatibility",),
          "The destination host's CPU lacks features the server's CPU "
          "model uses. Live-migrate to a host of the same CPU generation "
          "(--host), or give the compute hosts a common CPU model "
          "([libvirt] cpu_mode = custom and cpu_models in nova.conf of "
          "every compute host; servers started before the change keep "
          "their old model until they are cold-migrated or hard-rebooted)."),
    # Shared vs block storage (nova/virt/libvirt/driver.py
    # check_can_live_migrate_source: InvalidSharedStorage,
    # InvalidLocalStorage).
    _Rule('live-storage', (
        r'Shared storage live-migration requires either shared storage or '
        r'boot-from-volume with no local disks\.',
        r'Block migration can not be used with shared storage\.'),
          "The live migration's storage choice does not match the hosts: "
          "with the server's disks on each host's local disk, use "
          "--block-migration (or leave it to Nova, the default); with "
          "instances_path on storage both hosts share (NFS, Ceph), use "
          "--shared-migration. Check that [DEFAULT] instances_path is "
          "shared, or not, alike on both hosts."),
    # The destination is older than the source
    # (nova/conductor/tasks/live_migrate.py, nova/exception.py).
    _Rule('live-too-old', (
        r'The instance requires a newer hypervisor version than has been '
        r'provided\.',
        r'vTPM live migration is not supported by old nova-compute '
        r'services\.',
        r'is not supported by old nova compute service\. Upgrade your '
        r'compute services',
        r'contains compute nodes older than train'),
          "The destination runs older software than the source (its "
          "hypervisor, libvirt/QEMU, or its nova-compute). Live-migrate to "
          "a host at the same or a newer version (--host), or upgrade the "
          "destination first: openstack hypervisor show <host> gives the "
          "hypervisor version, openstack compute service list the "
          "services."),
    # A compute service down (nova/exception.py ServiceUnavailable, raised
    # by nova/compute/api.py check_instance_host for the source;
    # ComputeServiceUnavailable for a named host).
    _Rule('compute-down', (
        r'Compute service of \S+ is unavailable at this time\.',
        r'\bService is unavailable at this time\.'),
          "A nova-compute service the migration needs (the source's, or "
          "the named host's) is down. Check openstack compute service "
          "list --service nova-compute (State up; a disabled one takes no "
          "new server either), then that host's nova-compute log and its "
          "connection to the message queue."),
    # nova/exception.py ComputeHostNotFound, HostMappingNotFound.
    _Rule('host-unknown', (r'Compute host \S+ could not be found\.',),
          "Nova knows no compute host of that name. Check the name against "
          "openstack compute service list --service nova-compute (the Host "
          "column)."),
    _Rule('host-unmapped', (r"Host '[^']*' is not mapped to any cell",),
          "The compute host is not mapped to a cell yet: run nova-manage "
          "cell_v2 discover_hosts (or set [scheduler] "
          "discover_hosts_in_cells_interval)."),
    # Another action under way: the API's 409
    # (nova/api/openstack/common.py raise_http_conflict_for_instance_
    # invalid_state) or the conductor's InstanceInvalidState.
    _Rule('task-in-progress', (
        r"Cannot '[\w-]+' instance \S+ while it is in task_state \w+",
        r'Instance \S+ in task_state \w+\. Cannot [\w ]+ while the '
        r'instance is in this state\.'),
          "Another action on the server is still under way (its task "
          "state). Wait until openstack server show gives no "
          "OS-EXT-STS:task_state, see what it is with openstack server "
          "event list <server>, then migrate it again."),
)
_COMPILED = tuple((rule, tuple(re.compile(p) for p in rule.patterns))
                  for rule in _RULES)
KEYS = tuple(rule.key for rule in _RULES)


def hint_for(text: ty.Optional[str]) -> ty.Optional[Hint]:
    """The hint for the cause Nova's ``text`` names; None if unknown."""
    if not text:
        return None
    for rule, patterns in _COMPILED:
        for pattern in patterns:
            found = pattern.search(text)
            if found is not None:
                return Hint(rule.key, rule.text.format(*found.groups()))
    return None


def with_hint(message: str, hint: ty.Optional[Hint]) -> str:
    """``message`` (Nova's reason last), then the hint."""
    if hint is None:
        return message
    end = '' if message.rstrip().endswith(('.', '!', '?')) else '.'
    return '%s%s Hint: %s' % (message.rstrip(), end, hint.text)


def annotate(message: str) -> ty.Tuple[str, ty.Optional[Hint]]:
    """``message`` with the hint for the cause it names, and the hint.

    A message that already carries one (a journal's, resumed) is left as
    it is.
    """
    if ' Hint: ' in message:
        return message, None
    hint = hint_for(message)
    return with_hint(message, hint), hint
