"""Browser form uploads as a web app builds them: boto3's `generate_presigned_post` (its
defaults with a custom endpoint, and `signature_version='s3v4'`) posted with `requests`, the
way a browser posts the form (fields first, the file last), against a running `outpost store`
or `outpost edge` (URL in argv[1]; the store in argv[2], where the object is checked; the same
URL when absent). Credentials from the AWS_* environment.

Checks: which signature boto3 produces (SigV4 fields, or SigV2 ones), a 201 PostResponse with
`${filename}` in the key and the object's Content-Type and metadata at the store, a 303
redirect, a field outside the policy (AccessDenied), a file past content-length-range
(EntityTooLarge, nothing stored), and a tampered signature (SignatureDoesNotMatch).
Through an edge running with an edge key (the client signing with a key of its own), SigV4
forms are checked at the edge and SigV2 ones relayed for the store to check; either way the
answer's Location names the address the client posted to.
"""

import os

import sys
import uuid
import xml.etree.ElementTree as ET

import requests
from botocore.config import Config

import checks

url = sys.argv[1]
store = checks.client(sys.argv[2] if len(sys.argv) > 2 else url)
bucket = "form-" + uuid.uuid4().hex[:12]
store.create_bucket(Bucket=bucket)


def signer(signature_version=None):
    """A client for `url` with boto3's defaults, or the given signature version."""
    if signature_version is None:
        return checks.client(url)
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(signature_version=signature_version, s3={"addressing_style": "path"}),
    )


def presigned(client, key, fields, conditions, expires=300):
    return client.generate_presigned_post(
        bucket, key, Fields=dict(fields), Conditions=list(conditions), ExpiresIn=expires
    )


def post(form, data, filename="hello.txt", fields=None, **kwargs):
    body = dict(form["fields"])
    body.update(fields or {})
    # requests trusts the CA that boto3 and aws-cli do (AWS_CA_BUNDLE, over https).
    verify = os.environ.get("AWS_CA_BUNDLE") or True
    return requests.post(
        form["url"], data=body, files={"file": (filename, data)}, timeout=60, verify=verify, **kwargs
    )


def error_code(r):
    return ET.fromstring(r.content).findtext("Code")


FIELDS = {"success_action_status": "201", "Content-Type": "text/plain", "x-amz-meta-app": "compat"}
CONDITIONS = [
    ["starts-with", "$key", "uploads/"],
    {"success_action_status": "201"},
    {"Content-Type": "text/plain"},
    {"x-amz-meta-app": "compat"},
    ["content-length-range", 1, 1 << 20],
]


def upload_with(client, name):
    form = presigned(client, "uploads/${filename}", FIELDS, CONDITIONS)
    r = post(form, b"hello from boto3\n", filename=name)
    assert r.status_code == 201, (r.status_code, r.text)
    doc = ET.fromstring(r.content)
    assert doc.findtext("Key") == f"uploads/{name}", r.text
    assert doc.findtext("Bucket") == bucket, r.text
    assert doc.findtext("Location") == f"{url}/{bucket}/uploads/{name}", r.text
    got = store.get_object(Bucket=bucket, Key=f"uploads/{name}")
    assert got["Body"].read() == b"hello from boto3\n"
    assert got["ContentType"] == "text/plain", got["ContentType"]
    assert got["Metadata"] == {"app": "compat"}, got["Metadata"]
    assert doc.findtext("ETag") == got["ETag"], (doc.findtext("ETag"), got["ETag"])
    return form


@checks.check("generate_presigned_post (defaults, custom endpoint) + requests: 201 PostResponse, ${filename}, headers stored")
def default_signer():
    form = upload_with(signer(), "default.txt")
    kind = "SigV4" if "x-amz-signature" in form["fields"] else "SigV2"
    print(f"   boto3's default presigned POST with a custom endpoint is {kind}: {sorted(form['fields'])}")


@checks.check("generate_presigned_post (signature_version='s3v4') + requests")
def s3v4_signer():
    form = upload_with(signer("s3v4"), "v4.txt")
    assert form["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256", form["fields"]


@checks.check("generate_presigned_post (signature_version='s3', SigV2) + requests")
def sigv2_signer():
    form = upload_with(signer("s3"), "v2.txt")
    assert "AWSAccessKeyId" in form["fields"] and "signature" in form["fields"], form["fields"]


@checks.check("success_action_redirect: 303 to the redirect with bucket, key and etag")
def redirect():
    to = "http://app.example/uploaded"
    form = presigned(signer(), "r.txt", {"success_action_redirect": to}, [{"success_action_redirect": to}])
    r = post(form, b"redirected", allow_redirects=False)
    assert r.status_code == 303, (r.status_code, r.text)
    location = r.headers["Location"]
    assert location.startswith(f"{to}?bucket={bucket}&key=r.txt&etag=%22"), location
    assert store.get_object(Bucket=bucket, Key="r.txt")["Body"].read() == b"redirected"


@checks.check("a field outside the policy: 403 AccessDenied, nothing stored")
def outside_policy():
    form = presigned(signer(), "uploads/${filename}", FIELDS, CONDITIONS)
    r = post(form, b"x", filename="bad.txt", fields={"Content-Type": "image/png"})
    assert (r.status_code, error_code(r)) == (403, "AccessDenied"), (r.status_code, r.text)
    assert "Policy Condition failed" in r.text, r.text
    extra = post(form, b"x", filename="bad.txt", fields={"x-amz-meta-other": "1"})
    assert (extra.status_code, error_code(extra)) == (403, "AccessDenied"), extra.text
    assert "Extra input fields: x-amz-meta-other" in extra.text, extra.text
    assert store.list_objects_v2(Bucket=bucket, Prefix="uploads/bad")["KeyCount"] == 0


@checks.check("a file past content-length-range: 400 EntityTooLarge, nothing stored")
def too_large():
    form = presigned(signer(), "uploads/${filename}", FIELDS, CONDITIONS)
    r = post(form, b"x" * ((1 << 20) + 1), filename="big.txt")
    assert (r.status_code, error_code(r)) == (400, "EntityTooLarge"), (r.status_code, r.text)
    assert store.list_objects_v2(Bucket=bucket, Prefix="uploads/big")["KeyCount"] == 0


@checks.check("a tampered signature: 403 SignatureDoesNotMatch")
def tampered():
    form = presigned(signer("s3v4"), "t.txt", {}, [])
    sig = form["fields"]["x-amz-signature"]
    form["fields"]["x-amz-signature"] = ("1" if sig[0] == "0" else "0") + sig[1:]
    r = post(form, b"t")
    assert (r.status_code, error_code(r)) == (403, "SignatureDoesNotMatch"), (r.status_code, r.text)


checks.finish()
