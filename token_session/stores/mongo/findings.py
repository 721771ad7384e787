"""What ``doctor`` says about a collection connect-mongo uses: its TTL index and expired
documents. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..records import Finding

__all__ = ["expired_finding", "index_findings", "sample_finding"]


def index_findings(
    collection_name: str, auto_remove: str, indexes: Sequence[Mapping[str, Any]]
) -> list[Finding]:
    """Whether ``list_indexes`` shows the TTL index on ``expires`` connect-mongo relies on."""
    check = "TTL index on expires"
    create = f"db.{collection_name}.createIndex({{expires: 1}}, {{expireAfterSeconds: 0}})"
    on_expires = [ix for ix in indexes if list(dict(ix.get("key", {}))) == ["expires"]]
    ttl = [ix for ix in on_expires if "expireAfterSeconds" in ix]
    if any(ix["expireAfterSeconds"] == 0 for ix in ttl):
        return [Finding("ok", check, "present (expireAfterSeconds: 0)")]
    if ttl:
        late = ttl[0]["expireAfterSeconds"]
        return [
            Finding(
                "warning",
                check,
                f"expireAfterSeconds is {late}: expired sessions stay {late} s longer",
                f"db.runCommand({{collMod: '{collection_name}', index: {{keyPattern: "
                "{expires: 1}, expireAfterSeconds: 0}})",
            )
        ]
    if auto_remove != "native":
        return [
            Finding(
                "info",
                check,
                f"none; auto_remove is {auto_remove}, so expired sessions stay until removed",
                "run `token-session purge-expired` on a schedule, or create the index: " + create,
            )
        ]
    return [
        Finding(
            "error" if on_expires else "warning",
            check,
            "an index on expires without expireAfterSeconds: expired sessions are never removed"
            if on_expires
            else "missing: connect-mongo (autoRemove native) creates it when it starts; "
            "until then expired sessions are never removed",
            create,
        )
    ]


def expired_finding(count: int) -> Finding:
    if not count:
        return Finding("ok", "expired documents", "none waiting to be removed")
    return Finding(
        "info",
        "expired documents",
        f"{count} expired documents not removed yet (the TTL monitor runs every 60 s)",
        "token-session purge-expired",
    )


def sample_finding(encrypting: bool, count: int, failures: list[str]) -> Finding:
    """What reading the first ``count`` live sessions showed (``failures``: why some did not
    decode), with the store's encryption (``encrypting``) or without."""
    check = "sessions decode" + (" (encrypted)" if encrypting else "")
    if not count:
        return Finding("ok", check, "no live sessions to read")
    if not failures:
        return Finding("ok", check, f"the first {count} live sessions decode")
    encrypted = any("encrypted" in reason for reason in failures)
    fix = (
        'give the store connect-mongo\'s crypto option, e.g. -o \'crypto={"secret": "..."}\', '
        "or crypto_adapter"
        if encrypted and not encrypting
        else "check the store's options (the secret, crypto or crypto_adapter, stringify) "
        "against the Node app's"
    )
    return Finding(
        "error",
        check,
        f"{len(failures)} of the first {count} live sessions do not decode: {failures[0]}",
        fix,
    )
