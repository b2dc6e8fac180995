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

"""The minicloud's virt driver: nova's FakeDriver plus test controls.

Runs inside the cloud process (nova's venv). The controls are process-wide
and changed over HTTP by the auxiliary app while the cloud runs:

- ``delay``: seconds each migration spends "copying" (cold: on the source in
  migrate_disk_and_power_off; live: before the post-migration step, abortable
  through Nova's DELETE of the server migration).
- ``fail_to`` / ``fail_from``: hosts whose migrations fail the way real
  drivers fail them, so Nova records the migration as error and keeps a reason:
  cold migrations raise InstanceFaultRollback (server back on its source in its
  previous state, migration ``error``, failed instance-action event); live
  migrations fail their pre-check (migration ``error``, failed event).
- ``stall_live``: live migrations stall. They write progress figures to their
  migration record as libvirt's monitor does (memory still to transfer
  decreasing, then flat at 91% copied) and go on only when Nova calls the
  driver's force-complete (then they complete) or abort (then they are
  cancelled). A broken test cannot hang the cloud: after ``STALL_SAFETY``
  seconds the migration fails.
- ``fail_reason``: what the failure says instead of the minicloud's own
  words. A cold migration then fails the way libvirt's
  migrate_disk_and_power_off does when its first ssh to the destination
  (``mkdir -p`` of the instance directory) fails: the text is what ssh wrote
  on stderr (e.g. "Host key verification failed.\\r\\n"), raised as
  InstanceFaultRollback(ResizeError("not able to execute ssh command: "
  <ProcessExecutionError>)). A live migration's pre-check gives it as its
  reason.
"""

import os
import threading
import time

import nova.conf
from nova import exception
from nova import objects
from nova.virt import fake
from oslo_concurrency import processutils

CONF = nova.conf.CONF
_lock = threading.Lock()
_controls = {'delay': 0.0, 'fail_to': set(), 'fail_from': set(),
             'stall_live': False, 'fail_reason': None}
# A stalled live migration's bounds: its guest's memory, how much of it is
# copied before the copy stops progressing, one monitor period, and how long
# it waits for force-complete or abort at most.
STALL_MEMORY = 512 * 1024 ** 2
STALL_COPIED = 0.91
STALL_PERIOD = 0.5
STALL_SAFETY = 600.0


def set_controls(delay=None, fail_to=None, fail_from=None, stall_live=None,
                 fail_reason=None):
    """Change the controls given; ``fail_reason`` '' is the default's."""
    with _lock:
        if delay is not None:
            _controls['delay'] = float(delay)
        if stall_live is not None:
            _controls['stall_live'] = bool(stall_live)
        if fail_to is not None:
            _controls['fail_to'] = set(fail_to)
        if fail_from is not None:
            _controls['fail_from'] = set(fail_from)
        if fail_reason is not None:
            _controls['fail_reason'] = fail_reason or None


def get_controls():
    with _lock:
        return {'delay': _controls['delay'],
                'fail_to': sorted(_controls['fail_to']),
                'fail_from': sorted(_controls['fail_from']),
                'stall_live': _controls['stall_live'],
                'fail_reason': _controls['fail_reason']}


def _failure_reason(source, dest):
    with _lock:
        given = _controls['fail_reason']
        if dest in _controls['fail_to']:
            return given or 'minicloud: migrations to %s are set to fail' % (
                dest)
        if source in _controls['fail_from']:
            return given or 'minicloud: migrations from %s are set to ' \
                'fail' % source
    return None


class MinicloudDriver(fake.FakeDriver):

    def __init__(self, virtapi, read_only=False):
        super().__init__(virtapi, read_only)
        self._aborts = set()
        self._forced = set()

    # -- cold migration (runs on the source host) --------------------------
    def migrate_disk_and_power_off(self, context, instance, dest, flavor,
                                   network_info, block_device_info=None,
                                   timeout=0, retry_interval=0):
        # ``dest`` is the destination's IP, the same for every minicloud
        # host; the migration record names the destination host.
        migration = objects.Migration.get_by_instance_and_status(
            context, instance.uuid, 'migrating')
        reason = _failure_reason(self._host, migration.dest_compute)
        if reason and get_controls()['fail_reason']:
            # libvirt's own words (nova/virt/libvirt/driver.py, nova/utils.py
            # ssh_execute): the real ProcessExecutionError formats them.
            error = processutils.ProcessExecutionError(
                exit_code=255, stdout='', stderr=reason,
                cmd='ssh -o BatchMode=yes %s mkdir -p %s' % (
                    dest, os.path.join(CONF.instances_path, instance.uuid)))
            raise exception.InstanceFaultRollback(
                exception.ResizeError(
                    reason='not able to execute ssh command: %s' % error))
        if reason:
            raise exception.InstanceFaultRollback(
                inner_exception=exception.MigrationError(reason=reason))
        time.sleep(get_controls()['delay'])
        return super().migrate_disk_and_power_off(
            context, instance, dest, flavor, network_info,
            block_device_info, timeout, retry_interval)

    # -- live migration ----------------------------------------------------
    def check_can_live_migrate_destination(self, context, instance,
                                           src_compute_info, dst_compute_info,
                                           block_migration=False,
                                           disk_over_commit=False):
        reason = _failure_reason(instance.host, self._host)
        if reason:
            raise exception.MigrationPreCheckError(reason=reason)
        return super().check_can_live_migrate_destination(
            context, instance, src_compute_info, dst_compute_info,
            block_migration, disk_over_commit)

    def live_migration(self, context, instance, dest, post_method,
                       recover_method, block_migration=False,
                       migrate_data=None):
        if get_controls()['stall_live']:
            self._stalled(context, instance, dest, post_method,
                          recover_method, block_migration, migrate_data)
            return
        deadline = time.monotonic() + get_controls()['delay']
        while time.monotonic() < deadline:
            if instance.uuid in self._aborts:
                self._aborts.discard(instance.uuid)
                recover_method(context, instance, dest, migrate_data,
                               migration_status='cancelled')
                return
            time.sleep(0.05)
        post_method(context, instance, dest, block_migration, migrate_data)

    def _stalled(self, context, instance, dest, post_method, recover_method,
                 block_migration, migrate_data):
        """A copy that stops progressing until forced or aborted."""
        self._forced.discard(instance.uuid)
        if migrate_data is not None and \
                migrate_data.obj_attr_is_set('migration'):
            migration = migrate_data.migration
        else:
            migration = objects.Migration.get_by_instance_and_status(
                context, instance.uuid, 'running')
        floor = int(STALL_MEMORY * (1 - STALL_COPIED))
        remaining = STALL_MEMORY
        deadline = time.monotonic() + STALL_SAFETY
        while time.monotonic() < deadline:
            if instance.uuid in self._aborts:
                self._aborts.discard(instance.uuid)
                recover_method(context, instance, dest, migrate_data,
                               migration_status='cancelled')
                return
            if instance.uuid in self._forced:
                # libvirt pauses the guest: the rest is copied at once.
                self._forced.discard(instance.uuid)
                post_method(context, instance, dest, block_migration,
                            migrate_data)
                return
            remaining = max(floor, remaining - STALL_MEMORY // 4)
            # As libvirt's monitor (migration.save_stats) records them.
            migration.memory_total = STALL_MEMORY
            migration.memory_processed = STALL_MEMORY - remaining
            migration.memory_remaining = remaining
            migration.disk_total = 0
            migration.disk_processed = 0
            migration.disk_remaining = 0
            migration.save()
            time.sleep(STALL_PERIOD)
        recover_method(context, instance, dest, migrate_data,
                       migration_status='error')

    def live_migration_force_complete(self, instance):
        self._forced.add(instance.uuid)

    def live_migration_abort(self, instance):
        self._aborts.add(instance.uuid)

    def post_live_migration(self, context, instance, block_device_info,
                            migrate_data=None):
        # The guest now lives on the destination: stop tracking it here.
        self.destroy(context, instance, network_info=None,
                     block_device_info=block_device_info)
