# shellcheck shell=bash
# gcp-storage-emulator (PyPI): a Google Cloud Storage JSON API emulator in Python,
# everything in memory, for Terraform's gcs backend (states <prefix>/<W>.tfstate,
# the lock <prefix>/<W>.tflock). Sourced by scripts/test-servers after lib.sh.
#
# It ignores generation preconditions (ifGenerationMatch, ifGenerationNotMatch,
# ifMetagenerationMatch on uploads and deletes): a second create of an existing
# lock succeeds there, so every lock test that needs the precondition is skipped
# on it with a printed reason, and `tfsync doctor` must call it unsafe. The README
# ("The gcs backend") cites the lines of its source that show it.
PIP_GCS=('gcp-storage-emulator==2026.7.19')

gcs_port() { port 6; }
gcs_ports() { gcs_port; }

gcs_install() {
	if ! venv_has gcp-storage-emulator || [[ $(venv_version gcp-storage-emulator) != 2026.7.19 ]]; then
		pip_install "${PIP_GCS[@]}"
	fi
}

gcs_start() {
	local dir
	dir=$(server_dir gcs)
	rm -rf "$dir"
	mkdir -p "$dir"
	# --in-memory: nothing written to disk; run in $dir so that nothing it may
	# write lands elsewhere.
	(cd "$dir" && run_daemon gcs 01-gcp-storage-emulator "$VENV/bin/gcp-storage-emulator" start \
		--host 127.0.0.1 --port "$(gcs_port)" --in-memory --no-store-on-disk)
}

gcs_stop() { stop_server_processes gcs 3; }

# Wait for the JSON API, then (python3, stdlib only): create a bucket, upload an
# object (media upload), read it back with its generation, list it, delete it,
# delete the bucket. Uploads are text/plain (as Terraform's Go client sniffs a state): the
# emulator parses an application/json body as JSON and fails. Exit 3: no answer; 4: failed.
gcs_check() {
	local pids
	pids=$(live_pids gcs | tr '\n' ' ')
	# shellcheck disable=SC2086 # word-splitting the pid list is intended
	python3 - "$(gcs_port)" "$1" $pids <<'PY'
import json, os, sys, time, urllib.error, urllib.parse, urllib.request, uuid

port, timeout = int(sys.argv[1]), float(sys.argv[2])
pids = [int(p) for p in sys.argv[3:]]
base = f"http://127.0.0.1:{port}"

def req(method, path, body=None, ctype="application/json"):
    r = urllib.request.Request(base + path, data=body, method=method,
                               headers={"Content-Type": ctype} if body is not None else {})
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

deadline = time.time() + timeout
while True:
    try:
        req("GET", "/storage/v1/b?project=tfsync")
        break
    except (urllib.error.URLError, ConnectionError, OSError):
        if time.time() >= deadline or not all(os.path.exists(f"/proc/{p}") for p in pids):
            sys.exit(3)
        time.sleep(0.2)

def expect(what, got, want):
    if got[0] != want:
        print(f"gcs: {what}: HTTP {got[0]} {got[1][:200]!r}, expected {want}", file=sys.stderr)
        sys.exit(4)
    return got[1]

b = f"selfcheck-{uuid.uuid4().hex[:12]}"
expect("create bucket", req("POST", "/storage/v1/b?project=tfsync", json.dumps({"name": b}).encode()), 200)
name = urllib.parse.quote("p/default.tfstate", safe="")
up = json.loads(expect("upload", req("POST", f"/upload/storage/v1/b/{b}/o?uploadType=media&name={name}",
                                      b"{}", "text/plain; charset=utf-8"), 200))
got = json.loads(expect("metadata", req("GET", f"/storage/v1/b/{b}/o/{name}"), 200))
if str(got.get("generation")) != str(up.get("generation")) or not got.get("generation"):
    print(f"gcs: generation {got.get('generation')!r} != {up.get('generation')!r}", file=sys.stderr)
    sys.exit(4)
expect("media", req("GET", f"/storage/v1/b/{b}/o/{name}?alt=media"), 200)
listed = json.loads(expect("list", req("GET", f"/storage/v1/b/{b}/o?prefix=p/"), 200))
if [i["name"] for i in listed.get("items", [])] != ["p/default.tfstate"]:
    print(f"gcs: listing {listed!r}", file=sys.stderr)
    sys.exit(4)
# GCS answers a delete 204; this emulator 200.
if req("DELETE", f"/storage/v1/b/{b}/o/{name}")[0] not in (200, 204):
    print("gcs: delete failed", file=sys.stderr)
    sys.exit(4)
if req("DELETE", f"/storage/v1/b/{b}")[0] not in (200, 204):
    print("gcs: delete bucket failed", file=sys.stderr)
    sys.exit(4)
PY
}

# No credentials: tfsync sends none to a plain-http endpoint (the emulator checks none).
gcs_env() {
	cat <<ENV
export TFSYNC_GCS_ENDPOINT=http://127.0.0.1:$(gcs_port)
export STORAGE_EMULATOR_HOST=http://127.0.0.1:$(gcs_port)
ENV
}
