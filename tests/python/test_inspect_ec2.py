#!/usr/bin/env python3
"""Tests of inspect_sbx's sbx-ec2 provider without AWS (tests/aws/awsfixture.py: moto with
signature checks, the Session Manager emulator booting each instance from its user data):
sample_init launches one instance per sample through libsbx and reaches its agent over
the SSM data channel; exec and files follow Inspect's contract there; sample_cleanup,
task_cleanup (the Ctrl-C path) and cli_cleanup terminate and delete; a cancelled
sample_init removes what it started; the EC2 sandbox's config fields win over
INSPECT_EC2_SANDBOX_*, which win over a .env file (volume_size reaching RunInstances' block
device mapping); 1 MiB of argv goes through; missing settings are named; commands cannot reach the instance's
metadata service unless the config's allow_metadata says so. One line per test.

    python3 tests/python/test_inspect_ec2.py [SUBSTRING]
"""
import asyncio
import os
import sys
import unittest
from unittest import mock

import sbxtest

sbxtest.setup_path()
sys.path.insert(0, os.path.join(sbxtest.ROOT, "tests", "aws"))

import awsfixture  # noqa: E402
from inspect_sbx import config as cfg  # noqa: E402
from inspect_sbx.provider import Ec2Provider  # noqa: E402

AWS = None
IMDS = r"""
import socket
try:
    s = socket.create_connection(("169.254.169.254", 80), timeout=5)
    s.sendall(b"GET /latest/meta-data/iam/security-credentials/sbx-instance-role HTTP/1.0\r\n\r\n")
    print("REACHED" if b"ASIAINSTANCEROLE" in s.makefile("rb").read() else "OTHER")
except OSError as e:
    print("REFUSED", e.errno)
"""


def setUpModule():
    global AWS
    AWS = awsfixture.Aws()


def tearDownModule():
    if AWS:
        AWS.close()


class Ec2Case(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self):
        self.env_patch = mock.patch.dict(os.environ, AWS.clean_environ(), clear=True)
        self.env_patch.start()
        self.provider = Ec2Provider(poll_ms=50)

    async def asyncTearDown(self):
        self.env_patch.stop()

    def mine(self):
        return AWS.live(AWS.instances(**{"sbx-owner": self.provider.owner}))

    async def metadata_reached(self, config):
        await self.provider.task_init("md", config)
        envs = await self.provider.sample_init("md", config, {})
        try:
            r = await envs["default"].exec(["python3", "-c", IMDS])
            return r.stdout.strip()
        finally:
            await self.provider.sample_cleanup("md", config, envs, False)

    async def test_metadata_blocked_by_default(self):
        self.assertEqual(await self.metadata_reached({}), "REFUSED 1")

    async def test_allow_metadata_restores_access(self):
        self.assertEqual(await self.metadata_reached({"allow_metadata": True}), "REACHED")

    async def test_sample_lifecycle_exec_and_files(self):
        config = {"instance_type": "t3.micro", "extra_tags": (("team", "evals"),)}
        await self.provider.task_init("ec2task", config)
        envs = await self.provider.sample_init("ec2task", config, {})
        self.assertEqual(list(envs), ["default"])
        live = self.mine()
        self.assertEqual(len(live), 1)
        tags = {t["Key"]: t["Value"] for t in live[0]["Tags"]}
        self.assertEqual(live[0]["InstanceType"], "t3.micro")  # the config wins over the environment
        self.assertEqual((tags["team"], tags["Name"]), ("evals", "inspect_ec2_sandbox_ec2task"))
        self.assertEqual(len(AWS.objects("comms/sbx/%s/" % self.provider.owner)), 1)
        sb = envs["default"]
        r = await sb.exec(["sh", "-c", "echo out; echo err >&2; exit 4"])
        self.assertEqual((r.success, r.returncode, r.stdout, r.stderr), (False, 4, "out\n", "err\n"))
        # Inspect's self_check test_exec_large_command: 16 arguments of 64 KiB
        r = await sb.exec(["sh", "-c", 'n=0; for x in "$@"; do n=$((n + ${#x})); done; echo $# $n', "sh",
                           *(chr(ord("a") + i) * 65536 for i in range(16))])
        self.assertEqual((r.returncode, r.stdout), (0, "16 1048576\n"))
        path = os.path.join(AWS.tmp, "inspect-ec2", "sub", "f.bin")
        await sb.write_file(path, b"\x00\xffdata" * 1000)
        self.assertEqual(await sb.read_file(path, text=False), b"\x00\xffdata" * 1000)
        with self.assertRaises(UnicodeDecodeError):
            await sb.read_file(path)
        with self.assertRaises(FileNotFoundError):
            await sb.read_file(path + ".missing")
        with self.assertRaises(TimeoutError):
            await sb.exec(["sleep", "30"], timeout=1)
        conn = await sb.connection() if asyncio.iscoroutinefunction(sb.connection) else sb.connection()
        self.assertIn("aws ssm start-session --target " + live[0]["InstanceId"], conn.command)
        await self.provider.sample_cleanup("ec2task", config, envs, False)
        self.assertEqual(self.mine(), [])
        self.assertEqual(AWS.objects("comms/sbx/%s/" % self.provider.owner), [])

    async def test_task_cleanup_removes_what_samples_left(self):
        # Ctrl-C: Inspect skips the sample cleanups and calls task_cleanup.
        samples = await asyncio.gather(*(self.provider.sample_init("t2", None, {}) for _ in range(3)))
        self.assertEqual(len(self.mine()), 3)
        r = await asyncio.gather(*(s["default"].exec(["echo", str(i)]) for i, s in enumerate(samples)))
        self.assertEqual([x.stdout for x in r], ["0\n", "1\n", "2\n"])
        await self.provider.task_cleanup("t2", None, cleanup=False)
        self.assertEqual(self.mine(), [])
        self.assertEqual(AWS.objects("comms/sbx/%s/" % self.provider.owner), [])

    async def test_cancelled_sample_init_removes_its_instance(self):
        os.environ["AWS_ENDPOINT_URL_SSM"] = AWS.emulator("--offline")  # never comes Online
        task = asyncio.ensure_future(self.provider.sample_init("t3", None, {}))
        for _ in range(200):
            await asyncio.sleep(0.05)
            if self.mine():
                break
        self.assertEqual(len(self.mine()), 1)
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        self.assertEqual(self.mine(), [])
        self.assertEqual(AWS.objects("comms/sbx/%s/" % self.provider.owner), [])

    async def test_online_timeout_is_reported_and_cleaned(self):
        os.environ["AWS_ENDPOINT_URL_SSM"] = AWS.emulator("--offline")
        os.environ["INSPECT_EC2_SANDBOX_ONLINE_TIMEOUT"] = "1"
        with self.assertRaisesRegex(RuntimeError, "Online.*within 1 s"):
            await self.provider.sample_init("t4", None, {})
        self.assertEqual(self.mine(), [])

    async def test_cli_cleanup_by_owner_and_all(self):
        a = AWS.run_instance({"sbx-owner": "run-a"})
        b = AWS.run_instance({"sbx-owner": "run-b"})
        other = AWS.run_instance({"owner": "not-sbx"})
        AWS.s3.put_object(Bucket=AWS.m["bucket"], Key="comms/sbx/run-a/x/sbx-agent", Body=b"1")
        AWS.s3.put_object(Bucket=AWS.m["bucket"], Key="comms/sbx/run-b/x/sbx-agent", Body=b"2")
        await self.provider.cli_cleanup("run-a")
        self.assertEqual(self.provider.cleaned, (1, 1))
        state = lambda: {i["InstanceId"]: i["State"]["Name"] for i in AWS.instances()}  # noqa: E731
        self.assertEqual((state()[a], state()[b]), ("terminated", "running"))
        await self.provider.cli_cleanup(None)
        self.assertEqual(self.provider.cleaned, (1, 1))
        self.assertEqual((state()[b], state()[other]), ("terminated", "running"))
        self.assertEqual(AWS.objects("comms/sbx/"), [])

    async def test_missing_settings_are_named(self):
        del os.environ["INSPECT_EC2_SANDBOX_VPC_ID"]
        del os.environ["INSPECT_EC2_SANDBOX_S3_BUCKET"]
        with self.assertRaisesRegex(ValueError, "vpc_id .or INSPECT_EC2_SANDBOX_VPC_ID.*s3_bucket"):
            await self.provider.task_init("t", None)
        with self.assertRaisesRegex(ValueError, "INSPECT_EC2_SANDBOX_VPC_ID"):
            await self.provider.sample_init("t", {"subnet_id": "subnet-0"}, {})
        with self.assertRaisesRegex(ValueError, "subnet-"):
            await self.provider.sample_init("t", {"vpc_id": "vpc-1", "s3_bucket": "b", "subnet_id": "sub"}, {})
        self.assertEqual(self.mine(), [])

    def volume_size(self, instance):
        vols = [m["Ebs"]["VolumeId"] for m in instance.get("BlockDeviceMappings", [])]
        return [v["Size"] for v in AWS.ec2.describe_volumes(VolumeIds=vols)["Volumes"]] if vols else []

    async def test_dotenv_precedence_and_volume_size(self):
        # The EC2 sandbox's pydantic settings: explicit config > environment > .env in the
        # working directory; volume_size becomes the root volume of RunInstances.
        d = os.path.join(AWS.tmp, "dotenv-cwd")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, ".env"), "w") as f:
            f.write("INSPECT_EC2_SANDBOX_INSTANCE_TYPE=t3.large\nINSPECT_EC2_SANDBOX_VOLUME_SIZE=13\n"
                    "INSPECT_EC2_SANDBOX_EXTRA_TAGS_STR=origin=dotenv\n")
        os.environ["INSPECT_EC2_SANDBOX_VOLUME_SIZE"] = "11"  # the environment's t3a.small and 11 GiB
        old = os.getcwd()
        os.chdir(d)
        try:
            a_cfg, b_cfg = {"instance_type": "t3.micro"}, {"volume_size": 21}
            a, b = await asyncio.gather(self.provider.sample_init("dotenv", a_cfg, {}),
                                        self.provider.sample_init("dotenv", b_cfg, {}))
            live = {i["InstanceType"]: i for i in self.mine()}
            self.assertEqual(sorted(live), ["t3.micro", "t3a.small"])  # config > env > .env (t3.large)
            self.assertEqual(self.volume_size(live["t3.micro"]), [11])  # env > .env
            self.assertEqual(self.volume_size(live["t3a.small"]), [21])  # config > env
            for inst in live.values():
                self.assertEqual({t["Key"]: t["Value"] for t in inst["Tags"]}.get("origin"), "dotenv")
            await self.provider.sample_cleanup("dotenv", a_cfg, a, False)
            await self.provider.sample_cleanup("dotenv", b_cfg, b, False)
        finally:
            os.chdir(old)
        self.assertEqual(self.mine(), [])

    async def test_config_fields_and_environment(self):
        env = {"INSPECT_EC2_SANDBOX_REGION": "eu-west-2", "INSPECT_EC2_SANDBOX_VPC_ID": "vpc-env",
               "INSPECT_EC2_SANDBOX_EXTRA_TAGS_STR": "team=evals;cost=7"}
        c = cfg.ec2_config({"vpc_id": "vpc-cfg", "instance_type": "t3.small", "extra_tags": (("cost", "9"),)}, env)
        self.assertEqual((c.region, c.vpc_id, c.instance_type), ("eu-west-2", "vpc-cfg", "t3.small"))
        self.assertEqual(c.extra_tags, {"team": "evals", "cost": "9"})
        with self.assertRaisesRegex(ValueError, "KEY=VALUE"):
            cfg.ec2_config(None, {"INSPECT_EC2_SANDBOX_EXTRA_TAGS_STR": "a=b=c"})


if __name__ == "__main__":
    sbxtest.main()
