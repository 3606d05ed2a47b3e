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

from botocore.exceptions import ClientError

import checks

s3 = checks.client(sys.argv[1])
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


def conditions_that_hold(key, etag):
    r = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag, IfModifiedSince=PAST)
    assert r["Body"].read() == DATA
    r = s3.get_object(Bucket=bucket, Key=key, IfNoneMatch='"other"')
    assert r["Body"].read() == DATA
    assert s3.head_object(Bucket=bucket, Key=key, IfMatch=etag)["ETag"] == etag


for label, extra in [("cacheable", {}), ("no-store", {"CacheControl": "no-store"})]:
    key = f"{label}.txt"
    etag = s3.put_object(Bucket=bucket, Key=key, Body=DATA, **extra)["ETag"]
    # (call, condition, what is expected): a HEAD's error has no body, its code is the status.
    cases = [
        (s3.get_object, {"IfNoneMatch": etag}, 304, "304"),
        (s3.get_object, {"IfModifiedSince": FUTURE}, 304, "304"),
        (s3.get_object, {"IfMatch": '"nope"'}, 412, "PreconditionFailed"),
        (s3.get_object, {"IfUnmodifiedSince": PAST}, 412, "PreconditionFailed"),
        (s3.head_object, {"IfNoneMatch": etag}, 304, "304"),
        (s3.head_object, {"IfModifiedSince": FUTURE}, 304, "304"),
        (s3.head_object, {"IfMatch": '"nope"'}, 412, "412"),
    ]
    for pass_ in ["cold", "warm"]:
        for call, condition, status, code in cases:
            (name,) = condition
            what = f"{call.__name__} {name} ({label}, {pass_}) raises ClientError {status} {code}"
            checks.check(f"boto3 conditionals: {what}")(
                lambda: fails_with(status, code, call, Key=key, **condition)
            )
        checks.check(f"boto3 conditionals: conditions that hold ({label}, {pass_})")(
            lambda: conditions_that_hold(key, etag)
        )

for key in ["cacheable.txt", "no-store.txt"]:
    s3.delete_object(Bucket=bucket, Key=key)
s3.delete_bucket(Bucket=bucket)
checks.finish()
