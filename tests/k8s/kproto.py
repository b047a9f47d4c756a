"""kproto.py — decodes the Kubernetes protobuf bodies the emulator receives: client-go sends core
objects (helm's release Secrets) as application/vnd.kubernetes.protobuf, i.e. the magic "k8s\\0"
then a runtime.Unknown {typeMeta {apiVersion, kind}, raw} whose raw is the object's message.
Only the fields of ObjectMeta and of Secret/ConfigMap that helm sets are mapped to JSON; the
API's .proto files (k8s.io/api core/v1 generated.proto, apimachinery meta/v1) give the numbers.
"""
import base64

MAGIC = b"k8s\x00"


def fields(buf):
    """(number, wire type, value) of each field; value is int or bytes."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(buf, i)
        elif wt == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("protobuf wire type %d is not supported" % wt)
        yield num, wt, v


def varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def map_entry(v):
    k = val = b""
    for num, _, x in fields(v):
        if num == 1:
            k = x
        elif num == 2:
            val = x
    return k.decode(), val


def object_meta(buf):
    meta, strs = {}, {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for num, _, v in fields(buf):
        if num in strs:
            meta[strs[num]] = v.decode()
        elif num in (11, 12):
            k, val = map_entry(v)
            meta.setdefault("labels" if num == 11 else "annotations", {})[k] = val.decode()
    return meta


def decode(body):
    """The JSON form of a protobuf-encoded Secret or ConfigMap. Raises ValueError otherwise."""
    if not body.startswith(MAGIC):
        raise ValueError("not a Kubernetes protobuf body (no k8s\\0 magic)")
    api_version = kind = ""
    raw = b""
    for num, _, v in fields(body[4:]):
        if num == 1:
            for n2, _, x in fields(v):
                if n2 == 1:
                    api_version = x.decode()
                elif n2 == 2:
                    kind = x.decode()
        elif num == 2:
            raw = v
    if kind not in ("Secret", "ConfigMap"):
        raise ValueError("protobuf bodies of kind %r are not emulated (send JSON)" % kind)
    obj = {"apiVersion": api_version, "kind": kind}
    for num, _, v in fields(raw):
        if num == 1:
            obj["metadata"] = object_meta(v)
        elif num == 2:  # Secret data (bytes) / ConfigMap data (string)
            k, val = map_entry(v)
            obj.setdefault("data", {})[k] = base64.b64encode(val).decode() if kind == "Secret" else val.decode()
        elif num == 3 and kind == "Secret":
            obj["type"] = v.decode()
        elif num == 4 and kind == "Secret":
            k, val = map_entry(v)
            obj.setdefault("stringData", {})[k] = val.decode()
        elif num == 5 and kind == "Secret":
            obj["immutable"] = bool(v)
    return obj
