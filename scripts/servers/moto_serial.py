"""moto's server, with one request handled at a time.

moto checks a conditional write (If-None-Match: *, If-Match, DynamoDB's
ConditionExpression) and then writes, without a lock: two racing creators can
both win on the stock threaded `moto_server`, which real S3 and DynamoDB never
allow. Serialising requests makes each check-and-write atomic, as on a real
server, so the conformance suite's racing rules test tfsync, not moto.
Usage: python moto_serial.py HOST PORT
"""

import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

app = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()


def serial(environ, start_response):
    with one_at_a_time:
        # The whole response is produced under the lock.
        return list(app(environ, start_response))


if __name__ == "__main__":
    run_simple(
        sys.argv[1],
        int(sys.argv[2]),
        serial,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
