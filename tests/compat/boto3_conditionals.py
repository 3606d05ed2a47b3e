"""Conditional reads with boto3's current defaults against a running `outpost store` or
`outpost edge` (URL in argv[1], credentials in the AWS_* environment). Every answer must be the
store's: GetObject/HeadObject with a matching IfNoneMatch or a future IfModifiedSince raise
ClientError 304, a wrong IfMatch or a past IfUnmodifiedSince raise 412 PreconditionFailed.
Each request is made twice (through an edge: the cold cache, then the warm one), for a
cacheable object and for one the edge may not store (`Cache-Control: no-store`).

Issue 10, bug 1: through the edge, boto3 raised `TypeError: a bytes-like object is required,
not 'StreamingChecksumBody'` for the 304, because the edge's 304 carried the object's
`x-amz-checksum-*` headers and botocore wrapped the empty body to validate them.
"""

import datetime
import sys
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

import checks

URL = sys.argv[1]
s3 = boto3.client(
    "s3",
    endpoint_url=URL,
    region_name="us-east-1",
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
)
bucket = "cond-" + uuid.uuid4().hex[:12]
s3.create_bucket(Bucket=bucket)
FUTURE = datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)
PAST = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
DATA = b"conditional hello\n" * 100


def fails_with(status, code, call, **kwargs):
    """`call(**kwargs)` must raise a ClientError with this HTTP status and error code."""
    try:
        r = call(Bucket=bucket, **kwargs)
    except ClientError as e:
        got = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
        assert got == (status, code), f"expected {(status, code)}, got {got}: {e.response}"
        return
    raise AssertionError(f"no error; answered {r['ResponseMetadata']['HTTPStatusCode']}")


for label, extra in [("cacheable", {}), ("no-store", {"CacheControl": "no-store"})]:
    key = f"{label}.txt"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=DATA, **extra)["ETag"]
    for round in ["cold", "warm"]:
        name = f"boto3 conditionals ({label}, {round})"

        @checks.check(f"{name}: get_object IfNoneMatch=<its ETag> raises ClientError 304")
        def _():
            fails_with(304, "304", s3.get_object, Key=key, IfNoneMatch=etag)

        @checks.check(f"{name}: get_object IfModifiedSince=<future> raises ClientError 304")
        def _():
            fails_with(304, "304", s3.get_object, Key=key, IfModifiedSince=FUTURE)

        @checks.check(f"{name}: get_object IfMatch=<wrong> raises 412 PreconditionFailed")
        def _():
            fails_with(412, "PreconditionFailed", s3.get_object, Key=key, IfMatch='"nope"')

        @checks.check(f"{name}: get_object IfUnmodifiedSince=<past> raises 412")
        def _():
            fails_with(412, "PreconditionFailed", s3.get_object, Key=key, IfUnmodifiedSince=PAST)

        @checks.check(f"{name}: head_object IfNoneMatch / IfModifiedSince raise 304")
        def _():
            fails_with(304, "304", s3.head_object, Key=key, IfNoneMatch=etag)
            fails_with(304, "304", s3.head_object, Key=key, IfModifiedSince=FUTURE)

        @checks.check(f"{name}: head_object IfMatch=<wrong> raises 412")
        def _():
            fails_with(412, "412", s3.head_object, Key=key, IfMatch='"nope"')

        @checks.check(f"{name}: conditions that hold answer the object, checksum validated")
        def _():
            r = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag, IfModifiedSince=PAST)
            assert r["Body"].read() == DATA
            r = s3.get_object(Bucket=bucket, Key=key, IfNoneMatch='"other"')
            assert r["Body"].read() == DATA
            assert s3.head_object(Bucket=bucket, Key=key, IfMatch=etag)["ETag"] == etag

for key in ["cacheable.txt", "no-store.txt"]:
    s3.delete_object(Bucket=bucket, Key=key)
s3.delete_bucket(Bucket=bucket)
checks.finish()
