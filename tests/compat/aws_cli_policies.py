"""Bucket policies, policy status, Block Public Access and the ACL rule with the current aws-cli
(from the venv next to this interpreter) and curl, against a running `outpost store` or an
`outpost edge` in front of one (URL in argv[1], credentials in the AWS_* environment). The
issue's example: a policy scoped to `public/*` opens `public/a.txt` (200) and not
`private/b.txt` (403); `aws s3 cp --acl public-read` is refused instead of accepted and ignored.

Anonymous reads use a fresh query string after each policy change: an edge serves what it
cached under the previous policy until the entry expires (README, "Bucket policies").
"""

import json
import os
import subprocess
import sys
import tempfile
import uuid

import checks

URL = sys.argv[1]
AWS = os.path.join(os.path.dirname(sys.executable), "aws")
bucket = "pol-" + uuid.uuid4().hex[:12]
work = tempfile.mkdtemp()
reads = iter(range(1_000_000))


def aws(*args, ok=True):
    """Runs `aws --endpoint-url URL ARGS`; returns (exit code, stdout, stderr)."""
    r = subprocess.run([AWS, "--endpoint-url", URL, *args], capture_output=True, text=True)
    if ok and r.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed: {r.stderr}")
    return r.returncode, r.stdout, r.stderr


def refused(code, *args):
    rc, _, err = aws(*args, ok=False)
    assert rc != 0 and code in err, f"expected {code}, got rc={rc}: {err}"


def curl(key):
    """An anonymous GET with curl: (status, body)."""
    out = os.path.join(work, "curl.out")
    r = subprocess.run(
        ["curl", "-sS", "-o", out, "-w", "%{http_code}", f"{URL}/{bucket}/{key}?read={next(reads)}"],
        capture_output=True,
        text=True,
        check=True,
    )
    with open(out, "rb") as f:
        return int(r.stdout), f.read()


def put_policy(statement):
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    return ("s3api", "put-bucket-policy", "--bucket", bucket, "--policy", json.dumps(policy))


def read_statement(resource, **extra):
    return {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/{resource}", **extra}


def policy_status():
    _, out, _ = aws("s3api", "get-bucket-policy-status", "--bucket", bucket)
    return json.loads(out)["PolicyStatus"]["IsPublic"]


aws("s3", "mb", f"s3://{bucket}")
for key in ["public/a.txt", "private/b.txt"]:
    path = os.path.join(work, "f")
    with open(path, "w") as f:
        f.write(key)
    aws("s3", "cp", path, f"s3://{bucket}/{key}")


@checks.check("aws-cli put-bucket-policy scoped to public/*: curl public/a.txt 200, private/b.txt 403")
def prefix_policy():
    aws(*put_policy(read_statement("public/*")))
    assert curl("public/a.txt") == (200, b"public/a.txt")
    status, body = curl("private/b.txt")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body, (status, body)


@checks.check("aws-cli get-bucket-policy-status: IsPublic true, then false for an IP-limited policy")
def status():
    assert policy_status() is True
    limited = read_statement("public/*", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}})
    aws(*put_policy(limited))
    assert policy_status() is False
    assert curl("public/a.txt")[0] == 200


@checks.check("aws-cli put-bucket-policy with an unsupported qualifier: MalformedPolicy naming it")
def unsupported():
    statement = read_statement("*", Condition={"ForAnyValue:StringLike": {"aws:Referer": "x*"}})
    rc, _, err = aws(*put_policy(statement), ok=False)
    assert rc != 0 and "MalformedPolicy" in err and "ForAnyValue" in err, err


@checks.check("aws-cli put-bucket-policy naming Effect twice, or s3:GetObject on the bucket: MalformedPolicy")
def refused_policies():
    aws(*put_policy(read_statement("public/*")))
    _, before, _ = aws("s3api", "get-bucket-policy", "--bucket", bucket)
    twice = json.dumps(read_statement("*", Effect="Deny"))[:-1] + ', "Effect": "Allow"}'
    document = '{"Version": "2012-10-17", "Statement": [%s]}' % twice
    rc, _, err = aws("s3api", "put-bucket-policy", "--bucket", bucket, "--policy", document, ok=False)
    assert rc != 0 and "MalformedPolicy" in err and "Duplicate field Effect" in err, err
    on_bucket = dict(read_statement(""), Resource=f"arn:aws:s3:::{bucket}")
    rc, _, err = aws(*put_policy(on_bucket), ok=False)
    assert rc != 0 and "Action does not apply to any resource(s) in statement" in err, err
    _, after, _ = aws("s3api", "get-bucket-policy", "--bucket", bucket)
    assert after == before, (before, after)
    assert curl("private/b.txt")[0] == 403


@checks.check("aws s3 cp --acl public-read: AccessControlListNotSupported; --acl private works")
def acls():
    path = os.path.join(work, "acl")
    with open(path, "w") as f:
        f.write("acl")
    refused("AccessControlListNotSupported", "s3", "cp", path, f"s3://{bucket}/acl.txt", "--acl", "public-read")
    assert curl("acl.txt")[0] in (403, 404)
    aws("s3", "cp", path, f"s3://{bucket}/acl.txt", "--acl", "private")
    aws("s3api", "head-object", "--bucket", bucket, "--key", "acl.txt")


@checks.check("aws-cli put-public-access-block: BlockPublicPolicy refuses, RestrictPublicBuckets closes")
def public_access_block():
    aws(*put_policy(read_statement("public/*")))
    assert curl("public/a.txt")[0] == 200
    config = "BlockPublicAcls=true,IgnorePublicAcls=false,BlockPublicPolicy=true,RestrictPublicBuckets=true"
    aws("s3api", "put-public-access-block", "--bucket", bucket, "--public-access-block-configuration", config)
    _, out, _ = aws("s3api", "get-public-access-block", "--bucket", bucket)
    got = json.loads(out)["PublicAccessBlockConfiguration"]
    assert got == {"BlockPublicAcls": True, "IgnorePublicAcls": False,
                   "BlockPublicPolicy": True, "RestrictPublicBuckets": True}, got
    assert curl("public/a.txt")[0] == 403
    refused("AccessDenied", *put_policy(read_statement("*")))
    aws("s3api", "delete-public-access-block", "--bucket", bucket)
    refused("NoSuchPublicAccessBlockConfiguration", "s3api", "get-public-access-block", "--bucket", bucket)
    assert curl("public/a.txt")[0] == 200


aws("s3", "rb", "--force", f"s3://{bucket}", ok=False)
checks.finish()
