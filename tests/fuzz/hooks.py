"""Schemathesis hooks of the fuzz gate (tests/tests/e2e/fuzz.rs).

Two jobs, both narrow:

1. Nothing leaves the machine. Every URL the generator makes points at the test's loopback
   peer (ATELIER_FUZZ_PEER: one PNG, one webhook receiver), and a case carrying any other
   http(s) URL -- a negative case can mutate one into something the api still accepts -- is
   dropped before it is sent, so no worker, ingest or webhook ever resolves another host.
2. The few rules JSON Schema cannot state, which the document states in words (see
   services/api/src/jobs/request/schema.rs and openapi/creations.rs): positive cases that
   break them are dropped, as a partner reading the document would not send them.
"""

import os
import struct
import zlib

import schemathesis
from hypothesis import strategies as st

PEER = os.environ["ATELIER_FUZZ_PEER"]
INPUT = f"{PEER}/files/input.png"
HOOK = f"{PEER}/hook"

schemathesis.openapi.format("uri", st.sampled_from([INPUT, HOOK]))


def _png(width=16, height=16):
    """A small RGB gradient, as tests/src/lib.rs's gradient_png draws one."""
    pixels = lambda y: b"".join(bytes((x * 16 % 256, y * 16 % 256, 128)) for x in range(width))
    rows = b"".join(b"\x00" + pixels(y) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


PNG = _png()


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _leaves_the_machine(text):
    # The url crate drops leading C0 controls and spaces, and tabs and newlines anywhere, and
    # reads "http:host" and "http:\\host" as http://host; judge what it would read.
    cleaned = "".join(c for c in text if c not in "\t\n\r").lstrip("".join(map(chr, range(33))))
    lowered = cleaned.lower()
    if not (lowered.startswith("http:") or lowered.startswith("https:")):
        return False
    return not (cleaned.startswith(INPUT) or cleaned.startswith(HOOK))


def _inputs(body, *lists):
    return sum(len(body.get(name) or []) for name in lists if isinstance(body.get(name), list))


def _keeps_documented_cross_field_rules(path, method, body):
    if not isinstance(body, dict):
        return True
    if (method, path) == ("POST", "/api/v1/jobs"):
        if body.get("inputAssetIds"):
            # An asset id must name an existing asset of the caller's; random ones do not.
            return False
        lists = ("imageUrls", "inputUrls", "inputAssetIds")
        capability = body.get("capability")
        if capability == "image.generate":
            width, height = body.get("width") or 1024, body.get("height") or 1024
            return _inputs(body, *lists) <= 14 and width * height <= 16_777_216
        if capability == "image.inpaint":
            return _inputs(body, *lists) == 2
        if capability == "image.upscale":
            return _inputs(body, *lists) == 1
        if capability == "video.generate":
            return _inputs(body, *lists, "materials") <= 9
    if (method, path) == ("POST", "/openapi/v1/creations"):
        script, count = body.get("script"), body.get("scene_count")
        if isinstance(script, list) and count is not None:
            return len(script) == count
    if (method, path) == ("POST", "/api/v1/assets"):
        # The kind is checked against the content, and the peer serves a PNG.
        return body.get("kind") in (None, "image")
    return True


def _positive(case):
    return case.meta is None or case.meta.generation.mode != "negative"


@schemathesis.hook
def map_case(context, case):
    # An upload must be an image, video or audio file, which the schema can only say in
    # words: schema-valid uploads carry a real PNG.
    files = case.body.get("files") if isinstance(case.body, dict) else None
    is_upload = (case.method.upper(), case.operation.path) == ("POST", "/api/v1/assets")
    if is_upload and _positive(case) and isinstance(files, list):
        case.body["files"] = [PNG for _ in files]
    return case


@schemathesis.hook
def filter_case(context, case):
    parts = (case.body, case.query, case.path_parameters, case.headers)
    if any(_leaves_the_machine(s) for part in parts for s in _strings(part)):
        return False
    if not _positive(case):
        return True
    return _keeps_documented_cross_field_rules(case.operation.path, case.method.upper(), case.body)
