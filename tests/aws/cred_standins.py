"""cred_standins.py — local stand-ins for two AWS credential endpoints that moto does not
serve, for tests/aws/test_aws_profiles.py:

- the IAM Identity Center (SSO) portal's GetRoleCredentials
  (GET /federation/credentials?role_name=R&account_id=A with the header
  x-amz-sso_bearer_token): a known token gets role credentials that moto issues
  (STS AssumeRole of the given role, so they are real temporary credentials moto
  accepts), any other token HTTP 401 UnauthorizedException, as the portal does;
- the EC2 instance metadata service (IMDSv2: PUT /latest/api/token, then the role's
  credentials), answering with moto's IAM user keys.

Each records the requests it saw (method, path, query, headers)."""
import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import boto3


class _Server:
    def __init__(self, handler):
        self.seen = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _go(self):
                u = urlsplit(self.path)
                outer.seen.append({"method": self.command, "path": u.path, "query": parse_qs(u.query),
                                   "headers": {k.lower(): v for k, v in self.headers.items()}})
                status, body = handler(self.command, u.path, parse_qs(u.query), self.headers)
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = _go

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class SsoPortal(_Server):
    """token: the bearer token to accept; m: moto_fixture's JSON line (its endpoint and
    keys, used to get the role credentials from moto's STS)."""

    def __init__(self, token, m):
        sts = boto3.client("sts", region_name=m["region"], endpoint_url=m["endpoint"],
                           aws_access_key_id=m["access_key_id"], aws_secret_access_key=m["secret_access_key"])
        self.issued = []

        def handle(method, path, q, headers):
            if method != "GET" or path != "/federation/credentials":
                return 404, json.dumps({"message": "no such operation"})
            if headers.get("x-amz-sso_bearer_token") != token:
                return 401, json.dumps({"message": "Session token not found or invalid"})
            role, account = q.get("role_name", [""])[0], q.get("account_id", [""])[0]
            if not role or not account:
                return 400, json.dumps({"message": "role_name and account_id are required"})
            c = sts.assume_role(RoleArn="arn:aws:iam::%s:role/%s" % ("123456789012", role),
                                RoleSessionName="sso-standin")["Credentials"]
            self.issued.append(c["AccessKeyId"])
            return 200, json.dumps({"roleCredentials": {
                "accessKeyId": c["AccessKeyId"], "secretAccessKey": c["SecretAccessKey"],
                "sessionToken": c["SessionToken"], "expiration": int(c["Expiration"].timestamp() * 1000)}})

        super().__init__(handle)


class Imds(_Server):
    """IMDSv2 with one role whose credentials are moto's IAM user keys."""

    def __init__(self, m):
        exp = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")

        def handle(method, path, q, headers):
            if method == "PUT" and path == "/latest/api/token":
                return 200, "imds-token"
            if headers.get("X-aws-ec2-metadata-token") != "imds-token":
                return 401, ""
            if path == "/latest/meta-data/iam/security-credentials/":
                return 200, "standin-role"
            if path == "/latest/meta-data/iam/security-credentials/standin-role":
                return 200, json.dumps({"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": m["access_key_id"],
                                        "SecretAccessKey": m["secret_access_key"], "Token": "",
                                        "Expiration": exp})
            return 404, ""

        super().__init__(handle)
