#!/usr/bin/python3
"""Generate SharedKey signing vectors with the official Azure SDK for Python.

Each request below is built the way the SDK's pipeline builds one (an azure.core
HttpRequest wrapped in a PipelineRequest with a PipelineContext) and handed to the
SDK's own SharedKeyCredentialPolicy.on_request, which computes the Authorization header.
The string-to-sign is captured from inside the policy, so both come from the SDK.
tests/test_azure_sharedkey.c checks that src/azure_sharedkey.c produces the same two strings.

Run with Debian's interpreter (python3-azure is installed there):

    /usr/bin/python3 tests/data/gen_sharedkey_vectors.py          # rewrite the JSON
    /usr/bin/python3 tests/data/gen_sharedkey_vectors.py --check  # fail if it is stale

All inputs are fixed (keys, dates, ETags), so the output is byte-for-byte reproducible.

Two vectors carry an "sdk_url" that differs from "url": requests the SDK itself never
sends, but which have an exact SDK equivalent with the same canonicalized resource.
  * Repeated query names (?include=snapshots&include=metadata): azure-core parses the
    query into a dict, so the SDK would keep only the last value; the service's
    documented rule is "values sorted, joined by ','", which is exactly what the SDK signs
    for its own form ?include=metadata,snapshots.
  * A URL with no path (https://host?comp=list): on the wire the request line's path is
    "/", so it is signed as the SDK signs https://host/?comp=list.
"""

import argparse
import json
import os
import sys

import azure.core
import azure.storage.blob
import azure.storage.filedatalake
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import HttpRequest
from azure.storage.blob._shared.authentication import (
    SharedKeyCredentialPolicy as BlobSharedKeyPolicy,
)
from azure.storage.filedatalake._shared.authentication import (
    SharedKeyCredentialPolicy as DfsSharedKeyPolicy,
)

try:
    from azure.core.pipeline.transport import RequestsTransport
except ImportError:  # requests is not installed: the policy does not need a transport
    RequestsTransport = None

# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
# A made-up account and a fixed, random-looking 64-byte key (not a real credential).
TEST_ACCOUNT = "soracamtest"
TEST_KEY = (
    "q7Z3mK1vR9dT0xWf5nYb2LcJ8hGs4uPe6oAiQz1XkVw3NrMt7SyD0gHj5FlBa9CpUe2OxIv8KmZn4WqRs6TyLg=="
)

DATE = "Thu, 26 Nov 2026 07:00:00 GMT"
VERSION = "2021-08-06"
AZURITE_BLOB = "http://127.0.0.1:10000/devstoreaccount1"
TEST_BLOB = "https://soracamtest.blob.core.windows.net"
TEST_DFS = "https://soracamtest.dfs.core.windows.net"
MD5 = "XrY7u+Ae7tCTyyK7j1rNww=="  # base64(md5("hello world"))

# name, service, account, key, method, url, headers[, sdk_url]
REQUESTS = [
    (
        "put_blob_host_style",
        "blob", TEST_ACCOUNT, TEST_KEY, "PUT",
        TEST_BLOB + "/images/cam-1/2026/11/26/070000.jpg",
        [
            ["Content-Length", "11"],
            ["Content-MD5", MD5],
            ["If-None-Match", "*"],
            ["x-ms-blob-type", "BlockBlob"],
            ["x-ms-blob-content-type", "image/jpeg"],
            ["x-ms-meta-device_id", "7C2F80000001"],
            ["x-ms-meta-captured_at", "2026-11-26T07:00:00Z"],
            ["x-ms-date", DATE],
            ["x-ms-version", VERSION],
        ],
    ),
    (
        "put_blob_azurite_path_style",
        "blob", AZURITE_ACCOUNT, AZURITE_KEY, "PUT",
        AZURITE_BLOB + "/images/cam-1/070000.jpg",
        [
            ["x-ms-version", VERSION],
            ["x-ms-date", DATE],
            ["x-ms-blob-type", "BlockBlob"],
            ["Content-Length", "11"],
            ["Content-MD5", MD5],
            ["x-ms-blob-content-type", "image/jpeg"],
            ["x-ms-meta-device_id", "7C2F80000001"],
            ["If-None-Match", "*"],
        ],
    ),
    (
        "put_blob_empty_body",
        "blob", AZURITE_ACCOUNT, AZURITE_KEY, "PUT",
        AZURITE_BLOB + "/images/empty.jpg",
        [
            ["Content-Length", "0"],
            ["x-ms-blob-type", "BlockBlob"],
            ["x-ms-date", DATE],
            ["x-ms-version", VERSION],
        ],
    ),
    (
        "head_blob_azurite",
        "blob", AZURITE_ACCOUNT, AZURITE_KEY, "HEAD",
        AZURITE_BLOB + "/images/cam-1/070000.jpg",
        [["x-ms-date", DATE], ["x-ms-version", VERSION]],
    ),
    (
        "create_container",
        "blob", TEST_ACCOUNT, TEST_KEY, "PUT",
        TEST_BLOB + "/images?restype=container",
        [
            ["Content-Length", "0"],
            ["x-ms-date", DATE],
            ["x-ms-version", VERSION],
        ],
    ),
    (
        "list_blobs_repeated_query_names",
        "blob", TEST_ACCOUNT, TEST_KEY, "GET",
        TEST_BLOB + "/images?restype=container&comp=list&include=snapshots"
        "&include=metadata&prefix=cam-1%2F2026%2F",
        [["x-ms-date", DATE], ["x-ms-version", VERSION]],
        TEST_BLOB + "/images?restype=container&comp=list&include=metadata,snapshots"
        "&prefix=cam-1%2F2026%2F",
    ),
    (
        "list_blobs_comma_list",
        "blob", AZURITE_ACCOUNT, AZURITE_KEY, "GET",
        AZURITE_BLOB + "/images?restype=container&comp=list&include=metadata,snapshots"
        "&maxresults=100",
        [["x-ms-date", DATE], ["x-ms-version", VERSION]],
    ),
    (
        "list_containers_slash",
        "blob", TEST_ACCOUNT, TEST_KEY, "GET",
        TEST_BLOB + "/?comp=list",
        [["x-ms-date", DATE], ["x-ms-version", VERSION]],
    ),
    (
        "list_containers_no_path",
        "blob", TEST_ACCOUNT, TEST_KEY, "GET",
        TEST_BLOB + "?comp=list",
        [["x-ms-date", DATE], ["x-ms-version", VERSION]],
        TEST_BLOB + "/?comp=list",
    ),
    (
        "put_blob_encoded_path",
        "blob", TEST_ACCOUNT, TEST_KEY, "PUT",
        TEST_BLOB + "/images/dir%20one/caf%C3%A9%2B1%25.jpg",
        [
            ["Content-Length", "11"],
            ["x-ms-blob-type", "BlockBlob"],
            ["x-ms-date", DATE],
            ["x-ms-version", VERSION],
        ],
    ),
    (
        "metadata_sort_and_spacing",
        "blob", TEST_ACCOUNT, TEST_KEY, "PUT",
        TEST_BLOB + "/images/meta.jpg?comp=metadata",
        [
            ["x-ms-meta-b", "last"],
            ["x-ms-meta-ab", "letters"],
            ["x-ms-meta-a1", "digit"],
            ["x-ms-meta-a_b", "underscore sorts before digits"],
            ["x-ms-meta-note", "two  spaces\tand a tab"],
            ["Content-Length", "0"],
            ["x-ms-version", VERSION],
            ["x-ms-date", DATE],
        ],
    ),
    (
        "get_all_standard_headers",
        "blob", TEST_ACCOUNT, TEST_KEY, "GET",
        TEST_BLOB + "/images/cam-1/070000.jpg?snapshot=2026-11-26T07%3A00%3A00.1234567Z",
        [
            ["Content-Encoding", "gzip"],
            ["Content-Language", "ja-JP"],
            ["Content-Length", "42"],
            ["Content-MD5", MD5],
            ["Content-Type", "application/octet-stream"],
            ["Date", DATE],
            ["If-Modified-Since", "Wed, 25 Nov 2026 07:00:00 GMT"],
            ["If-Match", '"0x8DA7073A2000D1C"'],
            ["If-None-Match", '"0x8DA7073A2000D1D"'],
            ["If-Unmodified-Since", "Fri, 27 Nov 2026 07:00:00 GMT"],
            ["x-ms-range", "bytes=0-1023"],
            ["x-ms-version", VERSION],
        ],
    ),
    (
        "dfs_create_filesystem",
        "dfs", TEST_ACCOUNT, TEST_KEY, "PUT",
        TEST_DFS + "/images?resource=filesystem",
        [["Content-Length", "0"], ["x-ms-date", DATE], ["x-ms-version", VERSION]],
    ),
    (
        "dfs_create_file",
        "dfs", TEST_ACCOUNT, TEST_KEY, "PUT",
        TEST_DFS + "/images/cam-1/2026/11/26/070000.jpg?resource=file",
        [
            ["Content-Length", "0"],
            ["If-None-Match", "*"],
            ["x-ms-content-type", "image/jpeg"],
            ["x-ms-properties", "device_id=N0MyRjgwMDAwMDAx,camera=Y2FtLTE="],
            ["x-ms-date", DATE],
            ["x-ms-version", VERSION],
        ],
    ),
    (
        "dfs_append",
        "dfs", TEST_ACCOUNT, TEST_KEY, "PATCH",
        TEST_DFS + "/images/cam-1/2026/11/26/070000.jpg?action=append&position=0",
        [
            ["Content-Length", "123"],
            ["Content-MD5", MD5],
            ["Content-Type", "application/octet-stream"],
            ["x-ms-date", DATE],
            ["x-ms-version", VERSION],
        ],
    ),
    (
        "dfs_flush",
        "dfs", TEST_ACCOUNT, TEST_KEY, "PATCH",
        TEST_DFS + "/images/cam-1/2026/11/26/070000.jpg?action=flush&position=123&close=true",
        [
            ["Content-Length", "0"],
            ["If-Match", '"0x8DA7073A211CBEE"'],
            ["x-ms-content-type", "image/jpeg"],
            ["x-ms-content-md5", MD5],
            ["x-ms-date", DATE],
            ["x-ms-version", VERSION],
        ],
    ),
    (
        "dfs_head_path",
        "dfs", TEST_ACCOUNT, TEST_KEY, "HEAD",
        TEST_DFS + "/images/cam-1/2026/11/26/070000.jpg",
        [["x-ms-date", DATE], ["x-ms-version", VERSION]],
    ),
    (
        "dfs_delete_if_match",
        "dfs", TEST_ACCOUNT, TEST_KEY, "DELETE",
        TEST_DFS + "/images/cam-1/2026/11/26/070000.jpg",
        [
            ["Content-Length", "0"],
            ["If-Match", '"0x8DA7073A211CBEE"'],
            ["x-ms-date", DATE],
            ["x-ms-version", VERSION],
        ],
    ),
    (
        "dfs_flush_path_style_emulator",
        "dfs", AZURITE_ACCOUNT, AZURITE_KEY, "PATCH",
        AZURITE_BLOB + "/images/cam-1/2026/11/26/7CDDDE000001/soracam_20261126_070000_000.jpg"
        "?action=flush&position=59752&close=true",
        [
            ["x-ms-date", DATE],
            ["x-ms-version", VERSION],
            ["Content-Length", "0"],
            ["If-Match", '"0x8DA7073A211CBEE"'],
            ["x-ms-content-type", "image/jpeg"],
            ["x-ms-content-md5", MD5],
        ],
    ),
    (
        "dfs_create_file_emulator_path_style",
        "dfs", AZURITE_ACCOUNT, AZURITE_KEY, "PUT",
        AZURITE_BLOB + "/images/a%20b.jpg?resource=file",
        [["Content-Length", "0"], ["x-ms-date", DATE], ["x-ms-version", VERSION]],
    ),
]


def sign(service, account, key, method, url, headers):
    """Run the SDK's SharedKeyCredentialPolicy on one request.

    Returns (string_to_sign, authorization) as computed by the SDK.
    """
    base = DfsSharedKeyPolicy if service == "dfs" else BlobSharedKeyPolicy

    class CapturingPolicy(base):
        string_to_sign = None

        def _add_authorization_header(self, request, string_to_sign):
            self.string_to_sign = string_to_sign
            super()._add_authorization_header(request, string_to_sign)

    policy = CapturingPolicy(account, key)
    http_request = HttpRequest(method, url, headers=dict(headers))
    transport = RequestsTransport() if RequestsTransport is not None else None
    request = PipelineRequest(http_request, PipelineContext(transport))
    policy.on_request(request)
    return policy.string_to_sign, http_request.headers["Authorization"]


def build():
    """Return the JSON document (as a string) for all vectors."""
    vectors = []
    for entry in REQUESTS:
        name, service, account, key, method, url, headers = entry[:7]
        sdk_url = entry[7] if len(entry) > 7 else url
        sts, auth = sign(service, account, key, method, sdk_url, headers)
        vec = {
            "name": name,
            "service": service,
            "account": account,
            "key_b64": key,
            "method": method,
            "url": url,
        }
        if sdk_url != url:
            vec["sdk_url"] = sdk_url
        vec["headers"] = headers
        vec["string_to_sign"] = sts
        vec["authorization"] = auth
        vectors.append(vec)
    doc = {
        "generator": "tests/data/gen_sharedkey_vectors.py",
        "sdk": {
            "azure-core": azure.core.__version__,
            "azure-storage-blob": azure.storage.blob.__version__,
            "azure-storage-file-datalake": azure.storage.filedatalake.__version__,
            "policy": "azure.storage.{blob,filedatalake}._shared.authentication."
            "SharedKeyCredentialPolicy",
        },
        "vectors": vectors,
    }
    return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the committed JSON differs from a fresh run")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "sharedkey_vectors.json"))
    args = parser.parse_args()
    text = build()
    if args.check:
        try:
            with open(args.out, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            print(f"{args.out} is stale; rerun {sys.argv[0]}", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {len(json.loads(text)['vectors'])} vectors to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
