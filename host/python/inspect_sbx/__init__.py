"""inspect_sbx — sbx sandboxes for Inspect, over a C extension of libsbx.

    sandbox="sbx-local"                         one local agent, service "default"
    sandbox=("sbx-local", "compose.yaml")       one local agent per service
    sandbox=("sbx-k8s", "values.yaml")          (registered; not available in this build yet)
    sandbox=("sbx-ec2", {...})                  (one EC2 instance per sample, over SSM)

Inspect finds the types through the `inspect_ai` entry point (inspect_sbx._registry).
The sandbox logic lives in inspect_sbx.sandbox and inspect_sbx.provider, which do not
import inspect_ai; they can be used directly from asyncio code.
"""
from .contract import Contract
from .provider import Ec2Provider, K8sProvider, LocalProvider, Provider
from .sandbox import SbxProcess, SbxSandbox

__all__ = ["Contract", "Ec2Provider", "K8sProvider", "LocalProvider", "Provider",
           "SbxProcess", "SbxSandbox"]
__version__ = "0.1.0"
