"""CORS with the current aws-cli (from the venv next to this interpreter) and curl, against a
running `outpost store` or an `outpost edge` in front of one (URL in argv[1], credentials in
the AWS_* environment): the README's `put-bucket-cors`, `get-bucket-cors` giving it back,
101 rules refused with S3's InvalidRequest, curl preflights from the allowed origin and from
another, `delete-bucket-cors`.
"""

import json
import os
import subprocess
import sys
import uuid

import checks

URL = sys.argv[1]
AWS = os.path.join(os.path.dirname(sys.executable), "aws")
bucket = "corscli-" + uuid.uuid4().hex[:12]
APP = "https://app.example.com"
# The README's example.
RULES = [{"AllowedOrigins": [APP], "AllowedMethods": ["GET", "PUT"],
          "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]


def aws(*args, ok=True):
    """Runs `aws --endpoint-url URL ARGS`; returns (exit code, stdout, stderr)."""
    r = subprocess.run([AWS, "--endpoint-url", URL, *args], capture_output=True, text=True)
    if ok and r.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed: {r.stderr}")
    return r.returncode, r.stdout, r.stderr


def put_rules(rules, ok=True):
    document = json.dumps({"CORSRules": rules})
    return aws("s3api", "put-bucket-cors", "--bucket", bucket, "--cors-configuration", document, ok=ok)


def preflight(origin):
    """curl's OPTIONS as a browser sends it: (status, headers lower-cased)."""
    r = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-D", "-", "-X", "OPTIONS", f"{URL}/{bucket}/a.txt",
         "-H", f"Origin: {origin}", "-H", "Access-Control-Request-Method: PUT",
         "-H", "Access-Control-Request-Headers: Content-Type"],
        capture_output=True, text=True, check=True,
    )
    lines = r.stdout.splitlines()
    status = int(lines[0].split()[1])
    headers = dict(l.split(":", 1) for l in lines[1:] if ":" in l)
    return status, {k.strip().lower(): v.strip() for k, v in headers.items()}


aws("s3api", "create-bucket", "--bucket", bucket)


@checks.check("put-bucket-cors (the README's rules), get-bucket-cors gives them back")
def _():
    put_rules(RULES)
    _, out, _ = aws("s3api", "get-bucket-cors", "--bucket", bucket)
    assert json.loads(out)["CORSRules"] == RULES, out


@checks.check("101 rules: InvalidRequest, the rules kept")
def _():
    rc, _, err = put_rules([{"AllowedOrigins": ["*"], "AllowedMethods": ["GET"]}] * 101, ok=False)
    assert rc != 0 and "InvalidRequest" in err, err
    assert "should not exceed allowed limit of 100 rules" in err, err
    _, out, _ = aws("s3api", "get-bucket-cors", "--bucket", bucket)
    assert json.loads(out)["CORSRules"] == RULES, out


@checks.check("curl preflights: the allowed origin 200 with the rule's headers, another 403")
def _():
    status, h = preflight(APP)
    assert status == 200, (status, h)
    assert h["access-control-allow-origin"] == APP, h
    assert h["access-control-allow-methods"] == "GET, PUT", h
    assert h["access-control-allow-headers"] == "content-type", h
    status, h = preflight("https://elsewhere.example.com")
    assert status == 403 and "access-control-allow-origin" not in h, (status, h)


@checks.check("delete-bucket-cors, then get-bucket-cors is NoSuchCORSConfiguration")
def _():
    aws("s3api", "delete-bucket-cors", "--bucket", bucket)
    rc, _, err = aws("s3api", "get-bucket-cors", "--bucket", bucket, ok=False)
    assert rc != 0 and "NoSuchCORSConfiguration" in err, err
    aws("s3api", "delete-bucket", "--bucket", bucket)


checks.finish()
