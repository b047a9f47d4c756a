"""awsfixture.py — AWS without AWS for the Python tests of the EC2 backend: moto
(moto_fixture.py: EC2, S3, IAM, signatures checked) and the Session Manager emulator
(ssm_emulator.py --boot: each instance booted from its real user data by instance_boot.py,
so its agent and secret arrive as on EC2), plus the environment that points sbx at them and boto3 clients to check what sbx
did. Used by tests/aws/test_ec2_cli.py and tests/python/test_inspect_ec2.py; the C tests'
counterpart is tests/unit/aws_fixture.h."""
import json
import os
import subprocess
import sys
import tempfile

import boto3
from botocore.config import Config

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _spawn(argv, log):
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(log, "w"),
                         cwd=ROOT, text=True)
    return p, p.stdout.readline()


def start_moto(log):
    """moto alone (moto_fixture.py, stderr to log): (its process, the JSON of what it made)."""
    p, line = _spawn([sys.executable, "tests/aws/moto_fixture.py"], log)
    return p, json.loads(line)


def stop(p):
    """Ends a stand-in: its stdin closed, then (after 10 s) killed."""
    try:
        p.stdin.close()
        p.wait(timeout=10)
    except Exception:
        p.kill()
        p.wait()


class Aws:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="sbx-aws.")
        self.moto, self.m = start_moto(self.tmp + "/moto.log")
        m = self.m
        self.emulators = {}  # URL -> the emulator's process
        self.ssm_url = self.emulator()
        self.env = {
            "AWS_ENDPOINT_URL": m["endpoint"], "AWS_ENDPOINT_URL_SSM": self.ssm_url,
            "AWS_ACCESS_KEY_ID": m["access_key_id"], "AWS_SECRET_ACCESS_KEY": m["secret_access_key"],
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": self.tmp + "/none",
            "AWS_CONFIG_FILE": self.tmp + "/none",
            "INSPECT_EC2_SANDBOX_REGION": m["region"], "INSPECT_EC2_SANDBOX_VPC_ID": m["vpc"],
            "INSPECT_EC2_SANDBOX_SECURITY_GROUP_ID": m["security_group"],
            "INSPECT_EC2_SANDBOX_SUBNET_ID": m["subnet"],
            "INSPECT_EC2_SANDBOX_INSTANCE_PROFILE": m["instance_profile"],
            "INSPECT_EC2_SANDBOX_S3_BUCKET": m["bucket"], "INSPECT_EC2_SANDBOX_S3_KEY_PREFIX": "comms",
            "INSPECT_EC2_SANDBOX_AMI_ID": m["ami"], "INSPECT_EC2_SANDBOX_INSTANCE_TYPE": "t3a.small",
        }
        sess = boto3.Session(aws_access_key_id=m["access_key_id"], aws_secret_access_key=m["secret_access_key"],
                             region_name=m["region"])
        self.ec2 = sess.client("ec2", endpoint_url=m["endpoint"])
        self.s3 = sess.client("s3", endpoint_url=m["endpoint"],
                              config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))

    def emulator(self, *extra):
        """Starts another Session Manager emulator; returns its URL (for AWS_ENDPOINT_URL_SSM)."""
        m = self.m
        p, first = _spawn([sys.executable, "tests/aws/ssm_emulator.py", "--boot", m["endpoint"],
                           "--region", m["region"], "--access-key", m["access_key_id"], "--secret", m["secret_access_key"],
                           "--ami", m["ami"], *extra], self.tmp + "/emulator%d.log" % len(self.emulators))
        url = "http://127.0.0.1:%s" % first.split()[1]
        self.emulators[url] = p
        return url

    def say(self, url, command):
        """One line to the test hooks of the emulator at url (ssm_emulator.py: drop, terminate, ...)."""
        p = self.emulators[url]
        p.stdin.write(command + "\n")
        p.stdin.flush()

    def stop_emulator(self, url):
        """Stops the emulator at url (its booted instances go with it)."""
        stop(self.emulators.pop(url))

    def clean_environ(self):
        """os.environ without AWS/INSPECT settings, plus ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INSPECT_EC2_SANDBOX_"))}
        env.update(self.env)
        return env

    def instances(self, **tags):
        filters = [{"Name": "tag:" + k, "Values": [v]} for k, v in tags.items()]
        return [i for r in self.ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]]

    @staticmethod
    def live(insts):
        return [i for i in insts if i["State"]["Name"] in ("pending", "running")]

    def objects(self, prefix):
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.m["bucket"], Prefix=prefix).get("Contents", [])]

    def run_instance(self, tags):
        return self.ec2.run_instances(ImageId=self.m["ami"], MinCount=1, MaxCount=1, SubnetId=self.m["subnet"],
                                      TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                          {"Key": k, "Value": v} for k, v in tags.items()]}])["Instances"][0]["InstanceId"]

    def close(self):
        for p in self.emulators.values():
            stop(p)
        stop(self.moto)
        subprocess.run(["rm", "-rf", self.tmp])
