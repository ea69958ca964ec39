# shellcheck shell=bash
# dynalite (npm): a DynamoDB implementation on LevelDB (in memory here), independent
# of moto's, for the DynamoDB lock items and digests of Terraform's s3 backend
# (`dynamodb_table`). It serves DynamoDB only: the tests pair it with another
# server's S3. Sourced by scripts/test-servers after lib.sh.

# dynalite 4.0 from npm into $STATE/node (about 3 MB, 3 s). It does not check
# signatures: any credentials work.
NPM_DYNALITE=dynalite@4.0.0

dynalite_port() { port 4; }
dynalite_ports() { dynalite_port; }

dynalite_install() {
	[[ -x $STATE/node/node_modules/.bin/dynalite ]] || npm_install "$NPM_DYNALITE"
}

dynalite_start() {
	local dir
	dir=$(server_dir dynalite)
	rm -rf "$dir"
	mkdir -p "$dir"
	# Tables are ACTIVE at once (the default keeps them CREATING for 500 ms).
	run_daemon dynalite 01-dynalite node "$STATE/node/node_modules/dynalite/cli.js" \
		--host 127.0.0.1 --port "$(dynalite_port)" \
		--createTableMs 0 --deleteTableMs 0 --updateTableMs 0
}

dynalite_stop() { stop_server_processes dynalite 3; }

# Wait for DynamoDB to answer, then: create a table with hash key LockID (S),
# PutItem with attribute_not_exists(LockID) twice (the second must be refused with
# ConditionalCheckFailedException), delete the table. Exit 3: no answer; 4: failed.
dynalite_check() {
	local pids
	pids=$(live_pids dynalite | tr '\n' ' ')
	# shellcheck disable=SC2086 # word-splitting the pid list is intended
	AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
		"$PY" - "$(dynalite_port)" "$1" $pids <<'PY'
import os, sys, time, uuid
import boto3, botocore.exceptions
from botocore.config import Config

port, timeout, pids = int(sys.argv[1]), float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
c = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                 aws_access_key_id="x", aws_secret_access_key="x",
                 config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}))
deadline = time.time() + timeout
while True:
    try:
        c.list_tables()
        break
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError):
        if time.time() >= deadline or not all(os.path.exists(f"/proc/{p}") for p in pids):
            sys.exit(3)
        time.sleep(0.2)
try:
    t = f"selfcheck-{uuid.uuid4().hex[:12]}"
    c.create_table(TableName=t, BillingMode="PAY_PER_REQUEST",
                   KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
                   AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}])
    c.get_waiter("table_exists").wait(TableName=t, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    item = {"LockID": {"S": "b/k"}, "Info": {"S": "{}"}}
    c.put_item(TableName=t, Item=item, ConditionExpression="attribute_not_exists(LockID)")
    try:
        c.put_item(TableName=t, Item=item, ConditionExpression="attribute_not_exists(LockID)")
        print("dynalite: the second conditional PutItem was accepted", file=sys.stderr)
        sys.exit(4)
    except botocore.exceptions.ClientError as e:
        if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
    c.delete_table(TableName=t)
except Exception as e:  # noqa: BLE001 - any failure fails the self-check
    print(f"dynalite: self-check failed: {e}", file=sys.stderr)
    sys.exit(4)
PY
}

dynalite_env() {
	cat <<ENV
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$(dynalite_port)
export AWS_ACCESS_KEY_ID=$ACCESS_KEY
export AWS_SECRET_ACCESS_KEY=$SECRET_KEY
export AWS_REGION=$REGION
ENV
}
