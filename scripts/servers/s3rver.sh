# shellcheck shell=bash
# s3rver (npm): a fake S3 that ignores If-None-Match / If-Match, kept to show that
# `tfsync doctor` calls such a store unsafe. Sourced by scripts/test-servers after
# lib.sh.

# s3rver 3.7 from npm into $STATE/node (about 14 MB, 6 s). Its built-in
# credentials are S3RVER / S3RVER and it checks signatures against them.
NPM_S3RVER=s3rver@3.7.1
S3RVER_KEY=S3RVER

s3rver_port() { port 3; }
s3rver_ports() { s3rver_port; }

s3rver_install() {
	[[ -x $STATE/node/node_modules/.bin/s3rver ]] || npm_install "$NPM_S3RVER"
}

s3rver_start() {
	local dir
	dir=$(server_dir s3rver)
	rm -rf "$dir"
	mkdir -p "$dir/data"
	run_daemon s3rver 01-s3rver node "$STATE/node/node_modules/s3rver/bin/s3rver.js" \
		-d "$dir/data" -a 127.0.0.1 -p "$(s3rver_port)" --silent --no-vhost-buckets
}

s3rver_stop() { stop_server_processes s3rver 3; }

# It ignores conditional writes: check only that it stores and returns objects.
s3rver_check() { s3_check s3rver "$1" "$(s3rver_port)" "$S3RVER_KEY" "$S3RVER_KEY" 0; }

s3rver_env() { s3_env "$(s3rver_port)" "$S3RVER_KEY" "$S3RVER_KEY"; }
