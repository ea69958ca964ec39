"""S3 self-check of scripts/test-servers (run with the venv's python).

    s3_check.py PORT TIMEOUT PID...

Wait (up to TIMEOUT seconds, while the PIDs live) for a signed ListBuckets on
http://127.0.0.1:PORT to succeed, then create a bucket, PUT an object twice with
If-None-Match: * (the second must be a 412), delete both. Credentials come from
TS_ACCESS_KEY / TS_SECRET_KEY; TS_CONDITIONAL=0 (s3rver) checks only that an
object is stored and read back.

Exit 3: no S3 answer; exit 4: the self-check failed.
"""
import os, sys, time, uuid

import boto3
import botocore.exceptions
from botocore.config import Config

port, timeout, pids = int(sys.argv[1]), float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
# s3rver ignores If-None-Match: check only that it stores and returns objects.
conditional = os.environ.get("TS_CONDITIONAL", "1") == "1"
client = boto3.client(
    "s3",
    endpoint_url=f"http://127.0.0.1:{port}",
    aws_access_key_id=os.environ["TS_ACCESS_KEY"],
    aws_secret_access_key=os.environ["TS_SECRET_KEY"],
    region_name="us-east-1",
    config=Config(
        connect_timeout=2,
        read_timeout=30,  # seaweedfs's first PUT waits for its volume server
        retries={"max_attempts": 1},
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    ),
)


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def fail(code, msg):
    print(f"S3 check on port {port}: {msg}", file=sys.stderr)
    sys.exit(code)


deadline = time.monotonic() + timeout
while True:
    try:
        client.list_buckets()
        break
    except Exception as e:  # connection refused, 5xx or 403 while starting, ...
        last = e
    dead = [p for p in pids if not alive(p)]
    if dead:
        fail(3, f"process {dead} exited; last error: {last}")
    if time.monotonic() >= deadline:
        fail(3, f"no answer to ListBuckets in {timeout:g}s: {last}")
    time.sleep(0.1)

bucket = "probe-" + uuid.uuid4().hex[:16]
try:
    client.create_bucket(Bucket=bucket)
    try:
        client.put_object(Bucket=bucket, Key="k", Body=b"one", IfNoneMatch="*")
        if not conditional:
            if client.get_object(Bucket=bucket, Key="k")["Body"].read() != b"one":
                fail(4, "object not stored")
            raise StopIteration
        try:
            client.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
        except botocore.exceptions.ClientError as e:
            status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            if status != 412:
                fail(4, f"second PUT If-None-Match: * got HTTP {status}, want 412: {e}")
        else:
            fail(4, "second PUT If-None-Match: * succeeded, want 412")
        body = client.get_object(Bucket=bucket, Key="k")["Body"].read()
        if body != b"one":
            fail(4, f"object holds {body!r} after the refused PUT, want b'one'")
    finally:
        client.delete_object(Bucket=bucket, Key="k")
        client.delete_bucket(Bucket=bucket)
except StopIteration:
    pass
except Exception as e:
    fail(4, f"self-check: {e!r}")
