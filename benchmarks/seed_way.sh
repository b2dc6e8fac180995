#!/bin/bash
# The seed document's way ("Migrate instances", Nova admin guide), as an
# operator scripts it for several servers: one after another, migrate, poll
# `server show` every 2 s until VERIFY_RESIZE, confirm. Server IDs are the
# arguments; the cloud comes from OS_CLOUD.
set -u
for VM_ID in "$@"; do
    openstack server migrate "${VM_ID}" || exit 1
    while [[ "$(openstack server show "${VM_ID}" -f value -c status)" != "VERIFY_RESIZE" ]]; do
        sleep 2
    done
    openstack server migrate confirm "${VM_ID}" || exit 1
done
