# sbx-agent.pkr.hcl — bakes sbx-agent and its systemd unit into an Ubuntu 24.04 AMI
# (amd64 and arm64), so EC2 sandboxes start without fetching the agent at boot.
#
#   make agent && make agent ARCH=arm64          # build/sbx-agent, build/arm64/sbx-agent
#   packer build -var region=eu-west-2 ami/
#
# Written for the amazon-ebs builder as Debian's packer (1.6) has it built in; with Packer
# >= 1.7 add a packer { required_plugins { amazon = {...} } } block and run `packer init`.
#
# The agent listens on 127.0.0.1 only; sbx reaches it through an SSM port-forwarding
# session, so the instance needs no inbound rule. The SSM agent ships with Ubuntu's AMIs.

variable "region" {
  type    = string
  default = "eu-west-2"
}

variable "agent_port" {
  type    = number
  default = 7000
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Where the build instance runs (needs outbound HTTPS); empty: the default VPC."
}

locals {
  stamp = formatdate("YYYYMMDDhhmm", timestamp())
  arches = {
    amd64 = { instance_type = "t3a.small", agent = "../build/sbx-agent" }
    arm64 = { instance_type = "t4g.small", agent = "../build/arm64/sbx-agent" }
  }
}

source "amazon-ebs" "ubuntu" {
  region        = var.region
  subnet_id     = var.subnet_id
  ssh_username  = "ubuntu"
  tags = {
    sbx = "agent-ami"
  }
}

build {
  dynamic "source" {
    for_each = local.arches
    labels   = ["amazon-ebs.ubuntu"]
    content {
      name          = source.key
      ami_name      = "sbx-agent-ubuntu-24.04-${source.key}-${local.stamp}"
      instance_type = source.value.instance_type
      source_ami_filter {
        filters = {
          name                = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-${source.key}-server-*"
          virtualization-type = "hvm"
          root-device-type    = "ebs"
        }
        owners      = ["099720109477"]
        most_recent = true
      }
    }
  }

  provisioner "file" {
    source      = "${local.arches[source.name].agent}"
    destination = "/tmp/sbx-agent"
  }

  provisioner "file" {
    source      = "sbx-agent.service"
    destination = "/tmp/sbx-agent.service"
  }

  provisioner "shell" {
    inline = [
      "sudo install -m 0755 /tmp/sbx-agent /usr/local/bin/sbx-agent",
      "sed 's/@PORT@/${var.agent_port}/' /tmp/sbx-agent.service | sudo tee /etc/systemd/system/sbx-agent.service >/dev/null",
      "sudo systemctl daemon-reload",
      "sudo systemctl enable sbx-agent.service",
      "/usr/local/bin/sbx-agent --help >/dev/null",
    ]
  }
}
