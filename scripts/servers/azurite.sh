# shellcheck shell=bash
# Azurite (npm): Microsoft's Azure Storage emulator, blob service only, for
# Terraform's azurerm backend (the state blob, its lease as the lock, the lock
# info in the blob's metadata). Sourced by scripts/test-servers after lib.sh.

# Azurite 3.37 from npm into $STATE/node. Its one account is the emulator's
# well-known devstoreaccount1 with the published key below (not a secret), and
# it checks SharedKey signatures against it. Blobs are addressed path-style:
# http://127.0.0.1:PORT/devstoreaccount1/<container>/<blob>.
NPM_AZURITE=azurite@3.37.0
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

azurite_port() { port 5; }
azurite_ports() { azurite_port; }

azurite_install() {
	[[ -x $STATE/node/node_modules/.bin/azurite-blob ]] || npm_install "$NPM_AZURITE"
}

azurite_start() {
	local dir
	dir=$(server_dir azurite)
	rm -rf "$dir"
	mkdir -p "$dir"
	# In memory (no --location then): nothing to clean up, and fast; it runs in
	# $dir so that nothing it may write lands elsewhere. --skipApiVersionCheck:
	# clients newer than this Azurite still get answers.
	(cd "$dir" && run_daemon azurite 01-azurite node "$STATE/node/node_modules/azurite/dist/src/blob/main.js" \
		--blobHost 127.0.0.1 --blobPort "$(azurite_port)" \
		--inMemoryPersistence --silent --skipApiVersionCheck --disableProductStyleUrl)
}

azurite_stop() { stop_server_processes azurite 3; }

# Wait for the blob service, then with SharedKey signing (python3, stdlib only): create a
# container, put a blob, acquire an infinite lease on it with a proposed ID twice
# (the second must be refused with 409 LeaseAlreadyPresent), write metadata
# without the lease (must be refused, 412), release it with its ID, delete the
# container. Exit 3: no answer; 4: failed.
azurite_check() {
	local pids
	pids=$(live_pids azurite | tr '\n' ' ')
	# shellcheck disable=SC2086 # word-splitting the pid list is intended
	python3 - "$(azurite_port)" "$1" "$AZURITE_ACCOUNT" "$AZURITE_KEY" $pids <<'PY'
import base64, hashlib, hmac, os, sys, time, urllib.error, urllib.request, uuid
from email.utils import formatdate

port, timeout, account, key = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
pids = [int(p) for p in sys.argv[5:]]
base = f"http://127.0.0.1:{port}/{account}"

def req(method, path, query=None, headers=None, body=b""):
    query = query or {}
    h = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
    h.update(headers or {})
    if method == "PUT":
        # urllib would add a form Content-Type to a PUT; name it, and sign it.
        h.setdefault("Content-Type", "application/octet-stream")
    length = str(len(body)) if body else ""
    std = [h.get(n, "") for n in ("Content-Encoding", "Content-Language")] + [length] + \
          [h.get(n, "") for n in ("Content-MD5", "Content-Type", "Date", "If-Modified-Since",
                                   "If-Match", "If-None-Match", "If-Unmodified-Since", "Range")]
    canon_headers = "".join(f"{k.lower()}:{v}\n" for k, v in sorted(h.items(), key=lambda kv: kv[0].lower())
                            if k.lower().startswith("x-ms-"))
    resource = f"/{account}/{account}{path}" + "".join(f"\n{k}:{v}" for k, v in sorted(query.items()))
    to_sign = method + "\n" + "\n".join(std) + "\n" + canon_headers + resource
    sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
    h["Authorization"] = f"SharedKey {account}:{sig}"
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    r = urllib.request.Request(base + path + ("?" + qs if qs else ""), data=body if method == "PUT" else None,
                               method=method, headers=h)
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code

deadline = time.time() + timeout
while True:
    try:
        req("GET", "", {"comp": "list"})
        break
    except (urllib.error.URLError, ConnectionError, OSError):
        if time.time() >= deadline or not all(os.path.exists(f"/proc/{p}") for p in pids):
            sys.exit(3)
        time.sleep(0.2)

def expect(what, got, want):
    if got != want:
        print(f"azurite: {what}: HTTP {got}, expected {want}", file=sys.stderr)
        sys.exit(4)

c = f"/selfcheck-{uuid.uuid4().hex[:12]}"
expect("create container", req("PUT", c, {"restype": "container"}), 201)
expect("put blob", req("PUT", c + "/s.tfstate", headers={"x-ms-blob-type": "BlockBlob"}, body=b"{}"), 201)
lease = str(uuid.uuid4())
acquire = {"x-ms-lease-action": "acquire", "x-ms-lease-duration": "-1"}
expect("acquire lease", req("PUT", c + "/s.tfstate", {"comp": "lease"},
                            dict(acquire, **{"x-ms-proposed-lease-id": lease})), 201)
expect("second acquire", req("PUT", c + "/s.tfstate", {"comp": "lease"},
                             dict(acquire, **{"x-ms-proposed-lease-id": str(uuid.uuid4())})), 409)
expect("metadata without the lease", req("PUT", c + "/s.tfstate", {"comp": "metadata"},
                                         {"x-ms-meta-terraformlockid": "x"}), 412)
expect("release", req("PUT", c + "/s.tfstate", {"comp": "lease"},
                      {"x-ms-lease-action": "release", "x-ms-lease-id": lease}), 200)
expect("delete container", req("DELETE", c, {"restype": "container"}), 202)
PY
}

azurite_env() {
	cat <<ENV
export AZURE_STORAGE_ENDPOINT=http://127.0.0.1:$(azurite_port)/$AZURITE_ACCOUNT
export ARM_ACCESS_KEY=$AZURITE_KEY
export AZURE_STORAGE_ACCOUNT=$AZURITE_ACCOUNT
ENV
}
