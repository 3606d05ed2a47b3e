"""CORS with boto3's current defaults against a running `outpost store` or `outpost edge` (URL
in argv[1], credentials in the AWS_* environment): PutBucketCors (boto3 sends its default
checksum) / GetBucketCors / DeleteBucketCors round trip, S3's errors for an unsupported method
and for 101 rules, an unsigned preflight from an allowed and from another origin (urllib3,
as a browser sends it) and for a bucket that does not exist, and the rule's headers on a
presigned GET carrying an Origin (`Vary` alone without one).
"""

import sys
import uuid

import urllib3
from botocore.exceptions import ClientError

import checks

url = sys.argv[1]
s3 = checks.client(url)
http = urllib3.PoolManager(retries=False)
bucket = "cors-" + uuid.uuid4().hex[:12]
s3.create_bucket(Bucket=bucket)
s3.put_object(Bucket=bucket, Key="a.txt", Body=b"hello")
APP = "https://app.example.test"
RULES = [
    {
        "ID": "app",
        "AllowedOrigins": [APP],
        "AllowedMethods": ["GET", "PUT"],
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 600,
    }
]


def error_of(call, **kwargs):
    try:
        call(Bucket=bucket, **kwargs)
    except ClientError as e:
        return (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
    raise AssertionError("no error")


@checks.check("GetBucketCors without rules: 404 NoSuchCORSConfiguration")
def _():
    assert error_of(s3.get_bucket_cors) == (404, "NoSuchCORSConfiguration")


@checks.check("PutBucketCors / GetBucketCors round trip")
def _():
    s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": RULES})
    got = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert got == RULES, got


@checks.check("an unsupported method is InvalidRequest, 101 rules too")
def _():
    bad = [{"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]}]
    assert error_of(s3.put_bucket_cors, CORSConfiguration={"CORSRules": bad}) == (400, "InvalidRequest")
    many = [{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101
    assert error_of(s3.put_bucket_cors, CORSConfiguration={"CORSRules": many}) == (400, "InvalidRequest")
    assert s3.get_bucket_cors(Bucket=bucket)["CORSRules"] == RULES


def preflight(origin, of=None):
    headers = {"Origin": origin, "Access-Control-Request-Method": "PUT",
               "Access-Control-Request-Headers": "content-type"}
    return http.request("OPTIONS", f"{url}/{of or bucket}/a.txt", headers=headers)


@checks.check("a preflight from the allowed origin: 200 with the rule's headers")
def _():
    r = preflight(APP)
    assert r.status == 200, (r.status, r.data)
    assert r.headers["Access-Control-Allow-Origin"] == APP
    assert r.headers["Access-Control-Allow-Methods"] == "GET, PUT"
    assert r.headers["Access-Control-Allow-Headers"] == "content-type"
    assert r.headers["Access-Control-Max-Age"] == "600"


@checks.check("a preflight from another origin: 403 AccessForbidden")
def _():
    r = preflight("https://evil.example.test")
    assert r.status == 403 and b"<Code>AccessForbidden</Code>" in r.data, (r.status, r.data)
    assert "Access-Control-Allow-Origin" not in r.headers


@checks.check("a preflight for a bucket that does not exist: 403 Bucket not found")
def _():
    r = preflight(APP, of="no-such-" + bucket)
    assert r.status == 403 and b"<Code>AccessForbidden</Code>" in r.data, (r.status, r.data)
    assert b"CORSResponse: Bucket not found" in r.data, r.data


@checks.check("a presigned GET with an Origin carries the rule's headers")
def _():
    signed = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a.txt"})
    r = http.request("GET", signed, headers={"Origin": APP})
    assert r.status == 200 and r.data == b"hello", (r.status, r.data)
    assert r.headers["Access-Control-Allow-Origin"] == APP
    assert r.headers["Access-Control-Expose-Headers"] == "ETag"
    assert "Origin" in r.headers["Vary"]
    r = http.request("GET", signed)
    assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers, r.headers
    assert "Origin" in r.headers["Vary"], r.headers


@checks.check("DeleteBucketCors")
def _():
    s3.delete_bucket_cors(Bucket=bucket)
    assert error_of(s3.get_bucket_cors) == (404, "NoSuchCORSConfiguration")
    s3.delete_object(Bucket=bucket, Key="a.txt")
    s3.delete_bucket(Bucket=bucket)


checks.finish()
