#!/usr/bin/env python3
"""test_infra.py — ami/infra/sbx-ec2.yaml: cfn-lint (from PyPI; not in Debian) passes it
and refuses a copy with a dangling reference; checked structurally too: every !Ref /
!GetAtt names a resource or parameter, the pieces the EC2 backend needs are there (SSM,
SSM messages and EC2 messages interface endpoints, an S3 gateway endpoint, a security
group without ingress, the instance profile with AmazonSSMManagedInstanceCore and
bucket-only S3 access, an expiring bucket), the Egress parameter's two paths (isolated:
nothing that leads out exists, the security group sends HTTPS only; nat: a NAT gateway
in a public subnet routed to an internet gateway, the sandbox subnets' default route
through the NAT gateway, never straight to the internet gateway), and the outputs are
the INSPECT_EC2_SANDBOX_* settings."""
import os
import shutil
import subprocess
import sys
import tempfile

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
    egress_param = t["Parameters"]["Egress"]
    cond = t["Conditions"]["UseNat"]
    check("egress_parameter", egress_param["Default"] == "isolated" and
          sorted(egress_param["AllowedValues"]) == ["isolated", "nat"] and cond.tag == "Equals" and
          cond.value[0].value == "Egress" and cond.value[1] == "nat", (egress_param, cond.value))
    outward = ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP", "AWS::EC2::VPCGatewayAttachment",
               "AWS::EC2::Route")
    unconditional = [n for n, r in res.items() if r["Type"] in outward and r.get("Condition") != "UseNat"]
    check("isolated_has_no_way_out", not unconditional and "AWS::EC2::InternetGateway" in types, unconditional)
    sg_egress = sg["SecurityGroupEgress"]
    nat_rules, isolated_rules = (sg_egress.value[1], sg_egress.value[2]) if isinstance(sg_egress, Tag) else ([], [])
    check("sg_egress_by_path", isinstance(sg_egress, Tag) and sg_egress.value[0] == "UseNat" and
          [(r["IpProtocol"], r.get("FromPort"), r.get("ToPort")) for r in isolated_rules] == [("tcp", 443, 443)] and
          [r["IpProtocol"] for r in nat_rules] == ["-1"], sg_egress.value if isinstance(sg_egress, Tag) else sg_egress)

    def ref(x):
        return x.value if isinstance(x, Tag) and x.tag == "Ref" else None

    routes = {n: r["Properties"] for n, r in res.items() if r["Type"] == "AWS::EC2::Route"}
    assoc = [(ref(r["Properties"]["SubnetId"]), ref(r["Properties"]["RouteTableId"])) for r in res.values()
             if r["Type"] == "AWS::EC2::SubnetRouteTableAssociation"]
    nat = [r["Properties"] for r in res.values() if r["Type"] == "AWS::EC2::NatGateway"]
    public_tables = {ref(p["RouteTableId"]) for p in routes.values() if ref(p.get("GatewayId")) == "InternetGateway"}
    sandbox_tables = {tbl for sub, tbl in assoc if sub in ("SubnetA", "SubnetB")}
    check("nat_path", len(nat) == 1 and (ref(nat[0]["SubnetId"]), next(iter(public_tables), None)) in assoc and
          any(ref(p["RouteTableId"]) in sandbox_tables and ref(p.get("NatGatewayId")) == "NatGateway" and
              p["DestinationCidrBlock"] == "0.0.0.0/0" for p in routes.values()) and
          not (public_tables & sandbox_tables), (routes, assoc))
    outs = sorted(o["Description"] for o in t["Outputs"].values())
    want = sorted("INSPECT_EC2_SANDBOX_" + n for n in ["REGION", "VPC_ID", "SUBNET_ID", "SECURITY_GROUP_ID",
                                                       "INSTANCE_PROFILE", "S3_BUCKET"])
    check("outputs_are_the_settings", outs == want, outs)


def lint():
    """cfn-lint passes the template, and fails a copy whose NAT route names no resource
    (so a pass means it read the template)."""
    exe = shutil.which("cfn-lint")
    if not exe:
        print("skip cfn_lint: cfn-lint is not installed (pip install cfn-lint; Debian has no package)")
        return
    path = os.path.join(ROOT, "ami", "infra", "sbx-ec2.yaml")
    r = subprocess.run([exe, path], capture_output=True, text=True, timeout=200)
    check("cfn_lint_passes", r.returncode == 0, r.stdout + r.stderr)
    text = open(path).read()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text.replace("NatGatewayId: !Ref NatGateway", "NatGatewayId: !Ref NoSuchGateway"))
    r = subprocess.run([exe, f.name], capture_output=True, text=True, timeout=200)
    os.unlink(f.name)
    check("cfn_lint_catches_dangling_ref", r.returncode != 0 and "NoSuchGateway" in r.stdout, r.stdout + r.stderr)


if __name__ == "__main__":
    main()
    lint()
    sys.exit(0)
