# shellcheck shell=bash
# Ceph RGW (Debian's radosgw, ceph-mon, ceph-osd): one mon, one memstore OSD, one
# radosgw; no cephx, no mgr. Sourced by scripts/test-servers after lib.sh.

CEPH_DIR=$STATE/ceph
CEPH_CONF=$CEPH_DIR/ceph.conf

ceph_port() { port 2; }
ceph_mon_port() { port 20; }
# The OSD binds within 21-29 (ms_bind_port_min/max); only the mon is checked up front.
ceph_ports() { echo "$(ceph_port) $(ceph_mon_port)"; }

ceph_install() {
	local missing=0 bin
	for bin in ceph ceph-mon ceph-osd radosgw radosgw-admin monmaptool; do
		command -v "$bin" >/dev/null || missing=1
	done
	((missing == 0)) || apt_install radosgw ceph-mon ceph-osd
}

ceph_cli() { timeout 30 ceph -c "$CEPH_CONF" --connect-timeout 10 "$@"; }

# ceph_wait WHAT CMD...: run CMD until it succeeds, while ceph's processes live.
ceph_wait() {
	local what=$1 start
	shift
	start=$(now)
	while ! "$@" >/dev/null 2>&1; do
		all_alive ceph || die "ceph: a daemon exited while waiting for $what"
		if awk -v s="$start" -v n="$(now)" -v t="$START_TIMEOUT" 'BEGIN { exit !(n - s > t) }'; then
			die "ceph: $what not ready after ${START_TIMEOUT}s"
		fi
		sleep 0.1
	done
}

ceph_mon_ready() { ceph_cli mon stat; }
# (grep without -q reads all its input: no SIGPIPE for ceph under pipefail)
ceph_osd_up() { ceph_cli osd dump | grep "^osd\\.$1 up" >/dev/null; }

ceph_write_conf() {
	local fsid=$1
	cat >"$CEPH_CONF" <<CONF
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$(ceph_mon_port)]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_port_min = $(port 21)
ms_bind_port_max = $(port 29)
ms_bind_msgr1 = false
ms_bind_msgr2 = true

# No cephx; crc framing (radosgw otherwise insists on secure mode).
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
ms_cluster_mode = crc
ms_service_mode = crc
ms_client_mode = crc
ms_mon_cluster_mode = crc
ms_mon_service_mode = crc
ms_mon_client_mode = crc

# Everything inside $CEPH_DIR, nothing under /var or /etc.
run_dir = $CEPH_DIR/run
admin_socket = $CEPH_DIR/run/\$cluster-\$name.asok
pid_file = $CEPH_DIR/run/\$cluster-\$name.pid
log_file = $CEPH_DIR/log/\$cluster-\$name.log
keyring = $CEPH_DIR/keyring
mon_data = $CEPH_DIR/mon/\$cluster-\$id
osd_data = $CEPH_DIR/osd/\$cluster-\$id
rgw_data = $CEPH_DIR/rgw/\$cluster-\$id
crash_dir = $CEPH_DIR/crash

# One OSD holding everything in RAM, pools of one PG and one replica.
osd_objectstore = memstore
memstore_device_bytes = 2147483648
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 1
osd_pool_default_pgp_num = 1
osd_crush_chooseleaf_type = 0
rgw_rados_pool_pg_num_min = 1
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_data_avail_crit = 1
mon_data_avail_warn = 2

# Start in about 2 s instead of 13.
paxos_propose_interval = 0.05

[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$(ceph_port)
CONF
}

ceph_start() {
	rm -rf "$CEPH_DIR"
	mkdir -p "$CEPH_DIR"/{run,log,mon,osd,rgw,crash}
	local fsid osd_uuid osd_id
	fsid=$(</proc/sys/kernel/random/uuid)
	ceph_write_conf "$fsid"
	local logs=$CEPH_DIR/log

	monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$(ceph_mon_port)]" \
		--set-min-mon-release pacific --enable-all-features "$CEPH_DIR/monmap" \
		>"$logs/mkfs.out" 2>&1
	ceph-mon -c "$CEPH_CONF" --mkfs -i a --monmap "$CEPH_DIR/monmap" >>"$logs/mkfs.out" 2>&1
	run_daemon ceph 01-mon ceph-mon -c "$CEPH_CONF" -f -i a
	ceph_wait "ceph-mon" ceph_mon_ready

	osd_uuid=$(</proc/sys/kernel/random/uuid)
	osd_id=$(ceph_cli osd new "$osd_uuid" 2>>"$logs/mkfs.out")
	mkdir -p "$CEPH_DIR/osd/ceph-$osd_id"
	ceph-osd -c "$CEPH_CONF" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >>"$logs/mkfs.out" 2>&1
	run_daemon ceph 02-osd ceph-osd -c "$CEPH_CONF" -f -i "$osd_id"
	ceph_wait "osd.$osd_id" ceph_osd_up "$osd_id"

	# Creates the rgw pools and the user before the gateway starts.
	timeout "$START_TIMEOUT" radosgw-admin -c "$CEPH_CONF" user create \
		--uid tfsync --display-name tfsync \
		--access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" \
		>"$logs/user-create.out" 2>&1
	run_daemon ceph 03-rgw radosgw -c "$CEPH_CONF" -f -n client.rgw.a
}

ceph_stop() { stop_server_processes ceph 3; }

ceph_check() { s3_check ceph "$1" "$(ceph_port)" "$ACCESS_KEY" "$SECRET_KEY"; }

ceph_env() { s3_env "$(ceph_port)" "$ACCESS_KEY" "$SECRET_KEY"; }
