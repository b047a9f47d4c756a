#!/usr/bin/env python3
"""test_infra.py — ami/infra/sbx-ec2.yaml, checked structurally (cfn-lint is not
installable here: neither Debian nor npm carries it): every !Ref / !GetAtt names a
resource or parameter, the pieces the EC2 backend needs are there (SSM, SSM messages and
EC2 messages interface endpoints, an S3 gateway endpoint, a security group without
ingress, the instance profile with AmazonSSMManagedInstanceCore and bucket-only S3 access,
an expiring bucket), and the outputs are the INSPECT_EC2_SANDBOX_* settings."""
import os
import sys

import yaml

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
results = []


def check(name, cond, why=""):
    results.append(name)
    print(("ok   %s" % name) if cond else ("FAIL %s: %s" % (name, why)))


class Tag:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value


def construct(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tag(suffix, value)


yaml.SafeLoader.add_multi_constructor("!", construct)


def walk(x):
    if isinstance(x, Tag):
        yield x
        yield from walk(x.value)
    elif isinstance(x, dict):
        for v in x.values():
            yield from walk(v)
    elif isinstance(x, list):
        for v in x:
            yield from walk(v)


def main():
    with open(os.path.join(ROOT, "ami", "infra", "sbx-ec2.yaml")) as f:
        t = yaml.safe_load(f)
    res = t["Resources"]
    names = set(res) | set(t.get("Parameters", {})) | {"AWS::Region", "AWS::Partition", "AWS::AccountId"}
    bad = []
    for tag in walk(t):
        if tag.tag == "Ref" and tag.value not in names:
            bad.append(tag.value)
        if tag.tag == "GetAtt":
            target = tag.value.split(".")[0] if isinstance(tag.value, str) else tag.value[0]
            if target not in res:
                bad.append(target)
    check("references_resolve", not bad, "unknown: %s" % bad)

    types = [r["Type"] for r in res.values()]
    endpoints = [r["Properties"] for r in res.values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    services = sorted(e["ServiceName"].value.rsplit(".", 1)[1] + ":" + e["VpcEndpointType"] for e in endpoints)
    check("vpc_endpoints", services == ["ec2messages:Interface", "s3:Gateway", "ssm:Interface",
                                        "ssmmessages:Interface"], services)
    sg = res["SandboxSecurityGroup"]["Properties"]
    check("sandbox_sg_has_no_ingress", "SecurityGroupIngress" not in sg, sg)
    role = res["SandboxRole"]["Properties"]
    managed = [m.value for m in role["ManagedPolicyArns"]]
    check("ssm_managed_policy", any(m.endswith("AmazonSSMManagedInstanceCore") for m in managed), managed)
    stmts = role["Policies"][0]["PolicyDocument"]["Statement"]
    s3_only = all(all(a.startswith("s3:") for a in s["Action"]) and "*" not in str(s["Resource"].value)[:1]
                  for s in stmts)
    check("bucket_only_s3_access", s3_only, stmts)
    rules = res["Bucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    check("bucket_objects_expire", any(r.get("ExpirationInDays") for r in rules), rules)
    check("no_internet_gateway", "AWS::EC2::InternetGateway" not in types and "AWS::EC2::NatGateway" not in types)
    outs = sorted(o["Description"] for o in t["Outputs"].values())
    want = sorted("INSPECT_EC2_SANDBOX_" + n for n in ["REGION", "VPC_ID", "SUBNET_ID", "SECURITY_GROUP_ID",
                                                       "INSTANCE_PROFILE", "S3_BUCKET"])
    check("outputs_are_the_settings", outs == want, outs)


if __name__ == "__main__":
    main()
    sys.exit(0)
