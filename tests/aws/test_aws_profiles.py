#!/usr/bin/env python3
"""test_aws_profiles.py — the AWS credentials of real organisations, end to end through
`sbx down --all --backend ec2` (signed EC2 DescribeInstances and S3 ListObjectsV2 calls
against moto with signature and permission checks on):

- assume-role profiles (role_arn + source_profile, a chain of two roles,
  credential_source = Ec2InstanceMetadata against a local IMDS stand-in): moto records
  each AssumeRole (its /moto-api/data.json) with the profile's external_id and
  role_session_name, one per process (the role's credentials are kept), and the calls
  are made with the role's credentials: a role allowed nothing is refused;
- mfa_serial, a source_profile loop and a missing source profile: refused, saying why;
- IAM Identity Center (SSO) profiles (sso_session + [sso-session], and the legacy
  sso_start_url form): the token cached under ~/.aws/sso/cache/SHA1.json goes to a local
  stand-in of the SSO portal (cred_standins.py) whose role credentials moto issued; an
  expired token, a missing one and one the portal refuses say to run aws sso login."""
import datetime
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import awsfixture  # noqa: E402
from cred_standins import Imds, SsoPortal  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SBX = os.environ.get("SBX_BIN", os.path.join(ROOT, "build", "sbx"))
failed = []


def check(name, cond, why=""):
    print(("ok   %s" % name) if cond else ("FAIL %s: %s" % (name, why)), flush=True)
    if not cond:
        failed.append(name)


def assumed(m):
    with urllib.request.urlopen(m["endpoint"] + "/moto-api/data.json") as r:
        return json.load(r).get("sts", {}).get("AssumedRole", [])


def iso(delta_s):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_s)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    tmp = tempfile.mkdtemp(prefix="sbx-aws-profiles.")
    moto, m = awsfixture.start_moto(tmp + "/moto.log")
    token = "sso-access-token-for-tests"
    portal = SsoPortal(token, m)
    imds = Imds(m)
    home = tmp + "/home"
    os.makedirs(home + "/.aws/sso/cache")
    deployer, noperm = m["deployer_role_arn"], m["noperm_role_arn"]
    with open(home + "/.aws/credentials", "w") as f:
        f.write("[base]\naws_access_key_id = %s\naws_secret_access_key = %s\n" %
                (m["access_key_id"], m["secret_access_key"]))
    with open(home + "/.aws/config", "w") as f:
        f.write(f"""[profile dev]
role_arn = {deployer}
source_profile = base
external_id = ext-42
role_session_name = sbx-test-dev
duration_seconds = 1800

[profile chained]
role_arn = {deployer}
source_profile = dev
role_session_name = sbx-test-chained

[profile weak]
role_arn = {noperm}
source_profile = base

[profile frommeta]
role_arn = {deployer}
credential_source = Ec2InstanceMetadata
role_session_name = sbx-test-imds

[profile withmfa]
role_arn = {deployer}
source_profile = base
mfa_serial = arn:aws:iam::123456789012:mfa/someone

[profile loop-a]
role_arn = {deployer}
source_profile = loop-b

[profile loop-b]
role_arn = {deployer}
source_profile = loop-a

[profile orphan]
role_arn = {deployer}
source_profile = nowhere

[profile sso]
sso_session = corp
sso_account_id = 123456789012
sso_role_name = sbx-deployer

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
sso_region = {m["region"]}
sso_registration_scopes = sso:account:access

[profile sso-legacy]
sso_start_url = https://legacy.awsapps.com/start
sso_region = {m["region"]}
sso_account_id = 123456789012
sso_role_name = sbx-deployer

[profile sso-expired]
sso_session = old
sso_account_id = 123456789012
sso_role_name = sbx-deployer

[sso-session old]
sso_start_url = https://old.awsapps.com/start
sso_region = {m["region"]}

[profile sso-never]
sso_session = never
sso_account_id = 123456789012
sso_role_name = sbx-deployer

[sso-session never]
sso_start_url = https://never.awsapps.com/start
sso_region = {m["region"]}

[profile sso-revoked]
sso_session = revoked
sso_account_id = 123456789012
sso_role_name = sbx-deployer

[sso-session revoked]
sso_start_url = https://revoked.awsapps.com/start
sso_region = {m["region"]}
""")

    def cache(key, tok, expires):
        name = hashlib.sha1(key.encode()).hexdigest() + ".json"
        with open(home + "/.aws/sso/cache/" + name, "w") as f:
            json.dump({"startUrl": "x", "region": m["region"], "accessToken": tok, "expiresAt": expires}, f)
    cache("corp", token, iso(3600))
    cache("https://legacy.awsapps.com/start", token, iso(3600))
    cache("old", token, iso(-60))
    cache("revoked", "a-token-the-portal-does-not-know", iso(3600))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INSPECT_EC2_SANDBOX_"))}
    env.update({"HOME": home, "SBX_STATE_DIR": tmp + "/state", "AWS_ENDPOINT_URL": m["endpoint"],
                "AWS_ENDPOINT_URL_SSO": portal.url, "AWS_EC2_METADATA_DISABLED": "true",
                "INSPECT_EC2_SANDBOX_REGION": m["region"], "INSPECT_EC2_SANDBOX_S3_BUCKET": m["bucket"]})

    def down(profile, **extra):
        e = dict(env, AWS_PROFILE=profile, **extra)
        r = subprocess.run([SBX, "down", "--all", "--backend", "ec2"], capture_output=True, env=e, timeout=120)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def worked(r):
        return r[0] == 0 and "terminated 0 instances, deleted 0 objects" in r[1]

    try:
        before = len(assumed(m))
        r = down("dev")
        roles = assumed(m)[before:]
        check("assume_role_source_profile", worked(r), str(r))
        check("assume_role_settings_sent", len(roles) == 1 and roles[0]["role_arn"] == deployer and
              roles[0]["external_id"] == "ext-42" and roles[0]["session_name"] == "sbx-test-dev", str(roles))
        # down --all makes several signed calls; the role's credentials are kept between them
        check("assume_role_once_per_process", len(roles) == 1, str(roles))

        r = down("weak")
        check("assume_role_credentials_used", r[0] != 0 and "sbx-noperm" not in r[1] and
              ("AccessDenied" in r[2] or "not authorized" in r[2] or "UnauthorizedOperation" in r[2]), str(r))

        before = len(assumed(m))
        r = down("chained")
        roles = assumed(m)[before:]
        check("assume_role_chain", worked(r) and [x["session_name"] for x in roles] == ["sbx-test-dev",
                                                                                         "sbx-test-chained"],
              str(r) + str(roles))

        before = len(assumed(m))
        r = down("frommeta", AWS_EC2_METADATA_DISABLED="false", AWS_EC2_METADATA_SERVICE_ENDPOINT=imds.url)
        roles = assumed(m)[before:]
        check("assume_role_credential_source_imds", worked(r) and len(roles) == 1 and
              roles[0]["session_name"] == "sbx-test-imds" and
              any(s["path"] == "/latest/api/token" for s in imds.seen), str(r) + str(roles))
        r = down("frommeta")
        check("assume_role_credential_source_imds_disabled", r[0] != 0 and "Ec2InstanceMetadata" in r[2] and
              "AWS_EC2_METADATA_DISABLED" in r[2], str(r))

        before = len(assumed(m))
        r = down("withmfa")
        check("assume_role_mfa_refused", r[0] != 0 and "mfa_serial" in r[2] and "MFA code" in r[2] and
              len(assumed(m)) == before, str(r))
        r = down("loop-a")
        check("assume_role_loop_refused", r[0] != 0 and "loop-a -> loop-b -> loop-a" in r[2], str(r))
        r = down("orphan")
        check("assume_role_missing_source", r[0] != 0 and "'nowhere'" in r[2], str(r))

        n = len(portal.seen)
        r = down("sso")
        seen = portal.seen[n:]
        check("sso_session_profile", worked(r) and len(portal.issued) >= 1, str(r))
        check("sso_portal_request", len(seen) == 1 and seen[0]["headers"].get("x-amz-sso_bearer_token") == token and
              seen[0]["query"] == {"role_name": ["sbx-deployer"], "account_id": ["123456789012"]}, str(seen))
        r = down("sso-legacy")
        check("sso_legacy_profile", worked(r) and len(portal.seen) == n + 2, str(r))
        r = down("sso-expired")
        check("sso_expired_token", r[0] != 0 and "expired" in r[2] and
              "aws sso login --profile sso-expired" in r[2] and len(portal.seen) == n + 2, str(r))
        r = down("sso-never")
        check("sso_no_cached_token", r[0] != 0 and "no cached token" in r[2] and
              "aws sso login --profile sso-never" in r[2], str(r))
        r = down("sso-revoked")
        check("sso_token_refused", r[0] != 0 and "HTTP 401" in r[2] and
              "aws sso login --profile sso-revoked" in r[2], str(r))
    finally:
        portal.close()
        imds.close()
        awsfixture.stop(moto)
        subprocess.run(["rm", "-rf", tmp])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
