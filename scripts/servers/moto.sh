# shellcheck shell=bash
# moto (PyPI): AWS's S3 in Python, everything in memory. Sourced by
# scripts/test-servers after lib.sh.

# moto 5.x is what shared/s3-servers.md measured.
PIP_MOTO=('moto[s3]>=5,<6' flask flask-cors)

moto_port() { port 0; }
moto_ports() { moto_port; }

moto_install() {
	if ! venv_has moto flask flask-cors || [[ $(venv_version moto) != 5.* ]]; then
		pip_install "${PIP_MOTO[@]}"
	fi
}

moto_start() {
	local dir
	dir=$(server_dir moto)
	rm -rf "$dir"
	mkdir -p "$dir"
	# moto_serial.py: moto's own app, one request at a time (its conditional writes are
	# not atomic on the threaded stock server).
	run_daemon moto 01-moto_server "$PY" "$SERVERS_DIR/moto_serial.py" 127.0.0.1 "$(moto_port)"
}

moto_stop() { stop_server_processes moto 3; }

moto_check() { s3_check moto "$1" "$(moto_port)" "$ACCESS_KEY" "$SECRET_KEY"; }

# moto serves DynamoDB on the same port.
moto_env() {
	s3_env "$(moto_port)" "$ACCESS_KEY" "$SECRET_KEY"
	echo "export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(moto_port)"
}
