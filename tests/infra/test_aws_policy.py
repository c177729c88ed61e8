"""The IAM policies of infra/aws (and infra/README.md) grant exactly what the code's boto3 calls need.

The calls are read from the code (every S3 operation named on a client, every KMS operation the keyring
makes); the action AWS checks for each is written out below from AWS's documentation. A new call without
its action in the policy fails here, and so does an action no call needs (least privilege).
"""

from __future__ import annotations

import json
import re
import uuid
from fnmatch import fnmatchcase
from pathlib import Path

import boto3
import pytest

from tests.infra import manifests as m

POLICY = m.INFRA / "aws" / "iam-policy.json"
ROTATION = m.INFRA / "aws" / "iam-policy-key-rotation.json"

# botocore method -> the IAM action S3 authorises it with.
S3_ACTIONS = {
    "put_object": "s3:PutObject",
    "create_multipart_upload": "s3:PutObject",
    "upload_part": "s3:PutObject",
    "complete_multipart_upload": "s3:PutObject",
    "abort_multipart_upload": "s3:AbortMultipartUpload",
    "get_object": "s3:GetObject",
    "head_object": "s3:GetObject",
    "delete_object": "s3:DeleteObject",
    "list_objects_v2": "s3:ListBucket",
    "head_bucket": "s3:ListBucket",
}
# Calls that production never makes, and why.
NOT_IN_PRODUCTION = {"create_bucket": "S3Storage.ensure_bucket: development and tests; production buckets are "
                                      "provisioned (infra/README.md)"}
KMS_APP = {"encrypt": {"kms:Encrypt"}, "decrypt": {"kms:Decrypt"}}
# `portal keys rotate-master` only, run by an operator under a role of its own.
KMS_ROTATION = {"re_encrypt": {"kms:ReEncryptFrom", "kms:ReEncryptTo"}}


def _code() -> dict[Path, str]:
    return {p: p.read_text() for d in ("portal", "tenants", "workers") for p in (m.ROOT / d).rglob("*.py")}


def _methods(service: str) -> set[str]:
    return set(boto3.session.Session().client(service, region_name="us-east-1").meta.method_to_api_mapping)


def s3_calls() -> set[str]:
    known = _methods("s3")
    found: set[str] = set()
    for text in _code().values():
        found |= set(re.findall(r"\bclient\.([a-z0-9_]+)\(", text)) & known
        found |= set(re.findall(r"get_paginator\(\"([a-z0-9_]+)\"\)", text)) & known
    return found


def kms_calls() -> set[str]:
    known = _methods("kms")
    found: set[str] = set()
    for text in _code().values():
        found |= set(re.findall(r"_call\(\"([a-z0-9_]+)\"", text)) & known
        found |= set(re.findall(r"\bkms\.([a-z0-9_]+)\(", text)) & known
    return found


def _statements(path: Path) -> list[dict]:
    return json.loads(path.read_text())["Statement"]


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _allowed(statements: list[dict]) -> set[str]:
    return {a for s in statements if s["Effect"] == "Allow" for a in _listed(s["Action"])}


def test_the_code_calls_s3_and_kms_only_in_ways_this_file_knows():
    s3, kms = s3_calls(), kms_calls()
    assert s3 >= {"put_object", "get_object", "delete_object"} and kms >= {"encrypt", "decrypt"}  # found at all
    assert s3 - S3_ACTIONS.keys() - NOT_IN_PRODUCTION.keys() == set(), "a new S3 call: add its action here and to " \
                                                                       "infra/aws/iam-policy.json"
    assert kms - KMS_APP.keys() - KMS_ROTATION.keys() == set(), "a new KMS call: add its action here and to the policy"
    # ensure_bucket (create_bucket) is called by tests and development only.
    callers = [p for p, text in _code().items() if "ensure_bucket(" in text and "def ensure_bucket" not in text]
    assert callers == []


def test_the_app_policy_allows_exactly_what_its_calls_need():
    needed = {S3_ACTIONS[c] for c in s3_calls() if c in S3_ACTIONS}
    needed |= {a for c in kms_calls() if c in KMS_APP for a in KMS_APP[c]}
    statements = _statements(POLICY)
    assert _allowed(statements) == needed
    rotation = _statements(ROTATION)
    assert _allowed(rotation) == {a for c in kms_calls() if c in KMS_ROTATION for a in KMS_ROTATION[c]}
    for statement in statements + rotation:
        assert statement["Effect"] == "Allow"
        assert all("*" not in a for a in _listed(statement["Action"]))
        assert all(r != "*" and not r.endswith(":*") for r in _listed(statement["Resource"]))


def test_the_object_statements_cover_the_keys_the_code_writes_and_nothing_deletes_a_checkpoint():
    from portal.documents.storage import RECORDS_ROOT, check_record, new_key

    statements = _statements(POLICY)
    bucket = _listed(next(s for s in statements if "s3:ListBucket" in _listed(s["Action"]))["Resource"])[0]

    def may(action: str, key: str) -> bool:
        return any(action in _listed(s["Action"]) and any(fnmatchcase(f"{bucket}/{key}", r)
                                                          for r in _listed(s["Resource"])) for s in statements)

    objects = [new_key() for _ in range(50)]
    record = f"{RECORDS_ROOT}/{check_record('audit', 'head-' + uuid.uuid4().hex)}"
    for key in objects:
        assert may("s3:PutObject", key) and may("s3:GetObject", key) and may("s3:DeleteObject", key), key
        assert may("s3:AbortMultipartUpload", key)
    assert may("s3:PutObject", record) and may("s3:GetObject", record)
    assert not may("s3:DeleteObject", record)  # signed checkpoints are never deleted (and sit under Object Lock)
    assert not may("s3:PutObject", "elsewhere/anything") and not may("s3:GetObject", "a/b")


def test_kms_is_limited_to_the_encryption_context_the_keyring_binds():
    from tenants.keyring import KmsKeyring

    keys = set(KmsKeyring._context(uuid.uuid4(), 1))
    for statement in _statements(POLICY) + _statements(ROTATION):
        if not any(a.startswith("kms:") for a in _listed(statement["Action"])):
            continue
        condition = statement["Condition"]
        assert set(condition["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"]) == keys
        assert condition["Null"] == {"kms:EncryptionContextKeys": "false"}  # no context at all is refused too


def _readme_json() -> list[object]:
    text = (m.INFRA / "README.md").read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", text, flags=re.S)]


@pytest.mark.parametrize("path", [POLICY, ROTATION], ids=lambda p: p.name)
def test_the_readme_shows_the_policies_as_they_are(path):
    assert json.loads(path.read_text()) in _readme_json()


def test_the_compose_object_store_grants_the_portal_user_the_same_s3_actions():
    setup = m.read_compose()["services"]["minio-setup"]
    script = m.interpolate(setup["command"][0])
    policy = json.loads(script.split("<<JSON\n", 1)[1].split("\nJSON", 1)[0])
    s3_needed = {S3_ACTIONS[c] for c in s3_calls() if c in S3_ACTIONS}
    assert _allowed(policy["Statement"]) == s3_needed
