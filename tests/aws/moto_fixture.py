#!/usr/bin/env python3
"""moto_fixture.py — moto's server on loopback with signature checking on, for
the C tests of host/backends/aws (tests/unit/test_aws_*.c start it).

Starts ThreadedMotoServer on 127.0.0.1 (a free port), creates while
authentication is still off: an IAM user with an access key and a policy
allowing everything, a VPC with a subnet and a security group, an S3 bucket,
the public Ubuntu AMI parameter, an IAM role for web identity, and two roles
for assume-role profiles (sbx-deployer allowed everything, sbx-noperm nothing). Then it
turns authentication on (POST /moto-api/reset-auth with 0: every later
request must carry a valid SigV4 signature from a known key) and prints one
JSON line with what it made. It serves until its stdin closes.
"""
import json
import os
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_ACCESS_KEY_ID"] = "bootstrap"
os.environ["AWS_SECRET_ACCESS_KEY"] = "bootstrap"
for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(var, None)

import boto3  # noqa: E402
import urllib.request  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

REGION = "us-east-1"


def fix_query_canonicalization() -> None:
    """moto checks a signature against the query as the web server hands it over,
    already percent-decoded ('prefix=a%2Fb' arrives as 'prefix=a/b'), while SigV4
    signs it percent-encoded: every ListObjectsV2 with a '/' in its prefix would be
    refused, from botocore as from sbx. Re-encode the query as SigV4 does before
    moto recomputes the signature."""
    from urllib.parse import parse_qsl, quote
    from moto.iam import access_control

    orig = access_control.IAMRequestBase._create_aws_request

    def create(self):
        path, _, query = self._path.partition("?")
        if query:
            pairs = sorted(parse_qsl(query, keep_blank_values=True))
            self._path = path + "?" + "&".join(
                "%s=%s" % (quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in pairs)
        return orig(self)

    access_control.IAMRequestBase._create_aws_request = create


def main() -> None:
    fix_query_canonicalization()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"

    def client(name):
        return boto3.client(name, region_name=REGION, endpoint_url=url)

    iam = client("iam")
    iam.create_user(UserName="sbx")
    iam.put_user_policy(
        UserName="sbx",
        PolicyName="all",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="sbx")["AccessKey"]
    role = iam.create_role(
        RoleName="web",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Federated": "x"}, "Action": "sts:*"}],
            }
        ),
    )["Role"]
    iam.create_instance_profile(InstanceProfileName="sbx-profile")
    # roles for assume-role profiles: one allowed everything, one allowed nothing
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
    deployer = iam.create_role(RoleName="sbx-deployer", AssumeRolePolicyDocument=trust)["Role"]
    iam.put_role_policy(RoleName="sbx-deployer", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    noperm = iam.create_role(RoleName="sbx-noperm", AssumeRolePolicyDocument=trust)["Role"]

    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName="sbx", Description="sbx", VpcId=vpc)["GroupId"]
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    client("s3").create_bucket(Bucket="sbx-test-bucket")
    # moto reserves /aws/service/ names; the test parameter stands in for the public one.
    param = "/sbx-test/ubuntu/24.04/ami-id"
    client("ssm").put_parameter(Name=param, Value=ami, Type="String")

    req = urllib.request.Request(
        f"{url}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    urllib.request.urlopen(req).read()

    print(
        json.dumps(
            {
                "endpoint": url,
                "region": REGION,
                "access_key_id": key["AccessKeyId"],
                "secret_access_key": key["SecretAccessKey"],
                "vpc": vpc,
                "subnet": subnet,
                "security_group": sg,
                "ami": ami,
                "bucket": "sbx-test-bucket",
                "instance_profile": "sbx-profile",
                "role_arn": role["Arn"],
                "deployer_role_arn": deployer["Arn"],
                "noperm_role_arn": noperm["Arn"],
                "ami_parameter": param,
            }
        ),
        flush=True,
    )
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    main()
