"""A short boto3 session against a running `outpost store` (URL in argv[1], credentials in the
AWS_* environment). Uses the current boto3 defaults (CRC32 request checksums, response
validation) plus explicit checksum algorithms, multipart with checksums, delete_objects and
presigning. Prints `ok - <name>` / `FAIL - <name>: <why>` per check and a final
`RESULT passed=N failed=M` line; exits non-zero on any failure.
"""

import base64
import hashlib
import io
import os
import ssl
import sys
import urllib.request
import uuid
import zlib

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

import checks

URL = sys.argv[1]
MIB = 1024 * 1024


def check(name):
    return checks.check(f"boto3: {name}")


def b64(raw):
    return base64.b64encode(raw).decode()


def crc32_b64(data):
    return b64((zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big"))


s3 = checks.client(URL)
bucket = "boto3-" + uuid.uuid4().hex[:12]
small = os.urandom(100_000)
big = os.urandom(12 * MIB + 123)


@check("create_bucket + head_bucket")
def _():
    s3.create_bucket(Bucket=bucket)
    s3.head_bucket(Bucket=bucket)


@check("put_object with default checksum (CRC32) echoes the right value")
def _():
    r = s3.put_object(Bucket=bucket, Key="small.bin", Body=small)
    assert r["ETag"] == '"%s"' % hashlib.md5(small).hexdigest(), r["ETag"]
    assert r.get("ChecksumCRC32") == crc32_b64(small), r.get("ChecksumCRC32")


@check("put_object with explicit CRC32C/SHA1/SHA256, head_object ChecksumMode=ENABLED")
def _():
    expected = {
        "SHA1": b64(hashlib.sha1(small).digest()),
        "SHA256": b64(hashlib.sha256(small).digest()),
    }
    for algo in ["CRC32C", "SHA1", "SHA256"]:
        key = f"algo/{algo}"
        r = s3.put_object(Bucket=bucket, Key=key, Body=small, ChecksumAlgorithm=algo)
        field = "Checksum" + algo
        assert field in r, (algo, r.keys())
        h = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert h.get(field) == r[field], (algo, h.get(field), r[field])
        if algo in expected:
            assert h[field] == expected[algo], (algo, h[field], expected[algo])


@check("get_object ChecksumMode=ENABLED (botocore validates the body)")
def _():
    r = s3.get_object(Bucket=bucket, Key="algo/SHA256", ChecksumMode="ENABLED")
    assert r["Body"].read() == small
    assert r["ContentLength"] == len(small)


@check("ranged get_object")
def _():
    r = s3.get_object(Bucket=bucket, Key="small.bin", Range="bytes=100-199")
    assert r["Body"].read() == small[100:200]
    assert r["ContentRange"] == f"bytes 100-199/{len(small)}", r["ContentRange"]


@check("upload_fileobj multipart (5 MiB parts) + download_fileobj")
def _():
    cfg = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=3)
    s3.upload_fileobj(io.BytesIO(big), bucket, "big/multi.bin", Config=cfg)
    h = s3.head_object(Bucket=bucket, Key="big/multi.bin")
    assert h["ContentLength"] == len(big)
    parts = [big[i : i + 5 * MIB] for i in range(0, len(big), 5 * MIB)]
    want = '"%s-%d"' % (hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest(), len(parts))
    assert h["ETag"] == want, (h["ETag"], want)
    out = io.BytesIO()
    s3.download_fileobj(bucket, "big/multi.bin", out, Config=cfg)
    assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(big).digest()


@check("manual multipart with SHA256 part checksums (COMPOSITE)")
def _():
    key = "big/sha256-mpu.bin"
    up = s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256")
    uid = up["UploadId"]
    chunks = [big[: 6 * MIB], big[6 * MIB :]]
    done = []
    for n, chunk in enumerate(chunks, start=1):
        r = s3.upload_part(Bucket=bucket, Key=key, UploadId=uid, PartNumber=n, Body=chunk, ChecksumAlgorithm="SHA256")
        assert r["ChecksumSHA256"] == b64(hashlib.sha256(chunk).digest())
        done.append({"PartNumber": n, "ETag": r["ETag"], "ChecksumSHA256": r["ChecksumSHA256"]})
    parts = s3.list_parts(Bucket=bucket, Key=key, UploadId=uid)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1, 2]
    r = s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=uid, MultipartUpload={"Parts": done})
    composite = b64(hashlib.sha256(b"".join(hashlib.sha256(c).digest() for c in chunks)).digest()) + "-2"
    assert r.get("ChecksumSHA256") == composite, (r.get("ChecksumSHA256"), composite)
    h = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert h.get("ChecksumSHA256") == composite


@check("abort_multipart_upload + list_multipart_uploads")
def _():
    up = s3.create_multipart_upload(Bucket=bucket, Key="aborted")
    listed = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert any(u["UploadId"] == up["UploadId"] for u in listed)
    s3.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=up["UploadId"])
    listed = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert not any(u["UploadId"] == up["UploadId"] for u in listed)


@check("copy_object with REPLACE metadata")
def _():
    s3.copy_object(
        Bucket=bucket,
        Key="copy/of small.bin",
        CopySource={"Bucket": bucket, "Key": "small.bin"},
        MetadataDirective="REPLACE",
        Metadata={"purpose": "compat"},
        ContentType="application/x-compat",
    )
    h = s3.head_object(Bucket=bucket, Key="copy/of small.bin")
    assert h["Metadata"] == {"purpose": "compat"}, h["Metadata"]
    assert h["ContentType"] == "application/x-compat"


@check("list_objects_v2 with prefix/delimiter and paginator")
def _():
    r = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    prefixes = sorted(p["Prefix"] for p in r.get("CommonPrefixes", []))
    assert prefixes == ["algo/", "big/", "copy/"], prefixes
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys == sorted(keys, key=lambda k: k.encode()), keys
    assert "big/multi.bin" in keys and "small.bin" in keys


@check("generate_presigned_url (SigV4) + plain HTTP GET")
def _():
    v4 = boto3.client(
        "s3",
        endpoint_url=URL,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    url = v4.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "small.bin"}, ExpiresIn=300)
    # Over https, the CA the session trusts (AWS_CA_BUNDLE, as botocore reads it).
    context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE"))
    with urllib.request.urlopen(url, context=context) as resp:
        assert resp.status == 200
        assert resp.read() == small


@check("delete_objects (CRC32 checksum, no Content-MD5) + head_object 404")
def _():
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    assert not r.get("Errors"), r.get("Errors")
    assert len(r.get("Deleted", [])) == len(keys)
    try:
        s3.head_object(Bucket=bucket, Key="small.bin")
        raise AssertionError("object still there")
    except ClientError as e:
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@check("error codes: NoSuchKey, BucketNotEmpty")
def _():
    try:
        s3.get_object(Bucket=bucket, Key="missing")
        raise AssertionError("no error")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchKey", e.response["Error"]
    s3.put_object(Bucket=bucket, Key="blocker", Body=b"x")
    try:
        s3.delete_bucket(Bucket=bucket)
        raise AssertionError("no error")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "BucketNotEmpty", e.response["Error"]
    s3.delete_object(Bucket=bucket, Key="blocker")


@check("delete_bucket")
def _():
    s3.delete_bucket(Bucket=bucket)
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    assert bucket not in names


checks.finish()
