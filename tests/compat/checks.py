"""What the compatibility scripts share: `client(url)`, a boto3 S3 client with the current
defaults (path-style, one attempt, credentials from the AWS_* environment); `@check(name)`,
which runs a function at once and prints `ok - <name>` or `FAIL - <name>: <why>`; and
`finish()`, which prints the final `RESULT passed=N failed=M` line that run.sh reads and exits
non-zero on any failure."""

import sys
import traceback

import boto3
from botocore.config import Config

_counts = {"passed": 0, "failed": 0}


def client(url):
    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
    )


def check(name):
    def wrap(fn):
        try:
            fn()
            _counts["passed"] += 1
            print(f"ok - {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure and go on
            _counts["failed"] += 1
            print(f"FAIL - {name}: {e!r}", flush=True)
            traceback.print_exc(limit=3)
        return fn

    return wrap


def finish():
    print(f"RESULT passed={_counts['passed']} failed={_counts['failed']}", flush=True)
    sys.exit(1 if _counts["failed"] else 0)
