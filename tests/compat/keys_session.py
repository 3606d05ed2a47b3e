"""Access keys with aws-cli and boto3 against a running `outpost store` (URL in argv[1], the root
credentials in the AWS_* environment, the binary in OUTPOST_BIN): `outpost key create` prints
export lines a shell takes as they are; the new key may do nothing until `outpost key allow`;
aws-cli and boto3 then read, write, create buckets and list only what the key is granted; a
deleted key is InvalidAccessKeyId.
"""

import os
import pathlib
import subprocess
import sys
import tempfile
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

import checks

URL = sys.argv[1]
OUTPOST = os.environ.get("OUTPOST_BIN") or str(
    pathlib.Path(__file__).resolve().parents[2] / "target" / "debug" / "outpost"
)
AWS = str(pathlib.Path(sys.executable).parent / "aws")
root = checks.client(URL)
bucket = "keys-" + uuid.uuid4().hex[:12]
made = "keys-made-" + uuid.uuid4().hex[:8]
root.create_bucket(Bucket=bucket)
root.put_object(Bucket=bucket, Key="o.txt", Body=b"hello keys\n")


def key(*args):
    """`outpost key ARGS --endpoint URL` with the root credentials; its stdout."""
    out = subprocess.run(
        [OUTPOST, "key", *args, "--endpoint", URL], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, f"outpost key {args}: {out.stderr}"
    return out.stdout


def exported(lines):
    """What a shell makes of the export lines: (access key id, secret)."""
    script = lines + '\nprintf "%s\\n%s" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY"'
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    return out.stdout.split("\n")


access_key, secret = exported(key("create", "compat-app"))
env = dict(os.environ, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret)
app = boto3.client(
    "s3",
    endpoint_url=URL,
    region_name="us-east-1",
    aws_access_key_id=access_key,
    aws_secret_access_key=secret,
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1, "mode": "standard"}),
)


def aws(*args):
    """aws-cli as the key; (exit status, stdout + stderr)."""
    out = subprocess.run(
        [AWS, "--endpoint-url", URL, *args], capture_output=True, text=True, env=env, check=False
    )
    return out.returncode, out.stdout + out.stderr


def refused(code, call, **kwargs):
    try:
        call(**kwargs)
    except ClientError as e:
        assert e.response["Error"]["Code"] == code, e.response
        return
    raise AssertionError(f"{call.__name__} was not refused")


@checks.check("a new key lists no bucket and may read or write nothing")
def _():
    assert app.list_buckets()["Buckets"] == []
    refused("AccessDenied", app.get_object, Bucket=bucket, Key="o.txt")
    refused("AccessDenied", app.get_object, Bucket="no-such-bucket-here", Key="o.txt")
    refused("AccessDenied", app.put_object, Bucket=bucket, Key="n.txt", Body=b"x")
    status, out = aws("s3", "ls", f"s3://{bucket}/")
    assert status != 0 and "AccessDenied" in out, out


@checks.check("allow --read: aws s3 cp down works, up is AccessDenied")
def _():
    key("allow", "compat-app", "--bucket", bucket, "--read")
    status, out = aws("s3", "cp", f"s3://{bucket}/o.txt", "-")
    assert status == 0 and out == "hello keys\n", out
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"up\n")
        f.flush()
        status, out = aws("s3", "cp", f.name, f"s3://{bucket}/up.txt")
    assert status != 0 and "AccessDenied" in out, out


@checks.check("allow --write: aws s3 cp up works, boto3 deletes")
def _():
    key("allow", "compat-app", "--bucket", bucket, "--write")
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"up\n")
        f.flush()
        status, out = aws("s3", "cp", f.name, f"s3://{bucket}/up.txt")
    assert status == 0, out
    assert root.get_object(Bucket=bucket, Key="up.txt")["Body"].read() == b"up\n"
    app.delete_object(Bucket=bucket, Key="up.txt")


@checks.check("allow --create-bucket: aws s3 mb works and ls shows the key's buckets only")
def _():
    status, out = aws("s3", "mb", f"s3://{made}")
    assert status != 0 and "AccessDenied" in out, out
    key("allow", "compat-app", "--create-bucket")
    status, out = aws("s3", "mb", f"s3://{made}")
    assert status == 0, out
    root.create_bucket(Bucket=made + "-root")
    names = sorted(b["Name"] for b in app.list_buckets()["Buckets"])
    assert names == sorted([bucket, made]), names
    assert "read write owner" in key("info", "compat-app")


@checks.check("deny --read: reads are refused again at once")
def _():
    key("deny", "compat-app", "--bucket", bucket, "--read")
    refused("AccessDenied", app.get_object, Bucket=bucket, Key="o.txt")


@checks.check("a deleted key is InvalidAccessKeyId, for boto3 and aws-cli")
def _():
    key("delete", "compat-app")
    refused("InvalidAccessKeyId", app.list_buckets)
    status, out = aws("s3", "ls")
    assert status != 0 and "InvalidAccessKeyId" in out, out


checks.finish()
