#!/usr/bin/env python3
"""presign_check.py URL AKID SECRET REGION — recomputes a presigned S3 GET
URL's signature with botocore (an independent SigV4 implementation) at the
URL's own X-Amz-Date and prints OK or MISMATCH with botocore's canonical
request. moto cannot check presigned URLs while its authentication is on,
so tests/unit/test_aws_moto.c asks botocore instead."""
import sys
from urllib.parse import parse_qsl, quote, urlsplit

from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def enc(s: str) -> str:
    return quote(s, safe="-_.~")


def check(url: str, akid: str, secret: str, region: str) -> tuple[bool, str]:
    """(whether botocore computes the URL's signature, botocore's canonical request)."""
    parts = urlsplit(url)
    q = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(q)
    rest = "&".join(f"{enc(k)}={enc(v)}" for k, v in q if k != "X-Amz-Signature")
    req = AWSRequest(method="GET", url=f"{parts.scheme}://{parts.netloc}{parts.path}?{rest}",
                     headers={"Host": parts.netloc})
    req.context["timestamp"] = params["X-Amz-Date"]
    auth = S3SigV4QueryAuth(Credentials(akid, secret), "s3", region, expires=int(params["X-Amz-Expires"]))
    creq = auth.canonical_request(req)
    return auth.signature(auth.string_to_sign(req, creq), req) == params.get("X-Amz-Signature"), creq


def signature_ok(url: str, akid: str, secret: str, region: str) -> bool:
    try:
        return check(url, akid, secret, region)[0]
    except (KeyError, ValueError):
        return False


def main() -> None:
    ok, creq = check(*sys.argv[1:5])
    print("OK" if ok else "MISMATCH\n" + creq)


if __name__ == "__main__":
    main()
