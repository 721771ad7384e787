"""The encryption rules that need no Node: a user's adapter, what is not encrypted, options
refused before any I/O, secrets never shown, strict DER, one key derived for many writes."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pymongo
import pytest

from token_session.compat import dumps, loads
from token_session.errors import InvalidArgumentError, SessionDecodeError, TokenSessionError
from token_session.stores import MongoStore, from_url
from token_session.stores.mongo import create_kruptein_adapter, create_webcrypto_adapter
from token_session.stores.mongo.crypto import DecryptError, der_octets, der_read_octets

from .databases import mongo_client
from .test_mongo_crypto import SECRET, session, stored

DB = "token_session_crypto_rules"


@pytest.fixture(scope="module")
def client(mongo_url: str) -> Iterator[pymongo.MongoClient[Any]]:
    with mongo_client(mongo_url, DB) as opened:
        yield opened


class Rot13:
    """A user's own adapter (connect-mongo 6.0.0's CryptoAdapter interface)."""

    def encrypt(self, plaintext: str) -> str:
        return "rot13:" + plaintext.translate(ROT13)

    def decrypt(self, ciphertext: str) -> str:
        if not ciphertext.startswith("rot13:"):
            raise ValueError("not mine")
        return ciphertext[6:].translate(ROT13)


ROT13 = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
)


def test_a_users_adapter_and_what_is_not_encrypted(client: Any) -> None:
    name = "c_" + uuid.uuid4().hex[:10]
    store = MongoStore(client, db_name=DB, collection_name=name, crypto_adapter=Rot13())
    sid, data = uuid.uuid4().hex, session()
    store.set(sid, data)
    assert stored(client[DB][name], sid) == "rot13:" + dumps(data).translate(ROT13)
    assert store.get(sid) == data
    client[DB][name].insert_one({"_id": "clear", "session": dumps(data)})
    with pytest.raises(SessionDecodeError, match="clear JSON text, not encrypted"):
        store.get("clear")
    client[DB][name].insert_one({"_id": "other", "session": "c29tZXRoaW5nIGVsc2U="})
    with pytest.raises(SessionDecodeError, match=r"crypto_adapter\.decrypt failed: ValueError"):
        store.get("other")
    assert sorted(store.all()) == [sid]  # the others skipped, and left alone
    assert client[DB][name].count_documents({}) == 3
    plain = MongoStore(client, db_name=DB, collection_name=name)
    krupteined = MongoStore(client, db_name=DB, collection_name=name, crypto={"secret": SECRET})
    krupteined.set(sid, data)
    with pytest.raises(
        SessionDecodeError, match="give the store the same crypto= or crypto_adapter="
    ):
        plain.get(sid)
    webcrypto = MongoStore(
        client,
        db_name=DB,
        collection_name=name,
        crypto_adapter=create_webcrypto_adapter(SECRET, iterations=10),
    )
    with pytest.raises(SessionDecodeError, match="it reads as a kruptein record"):
        webcrypto.get(sid)
    webcrypto.set(sid, data)
    with pytest.raises(SessionDecodeError, match="not a kruptein record"):
        krupteined.get(sid)


class Later:
    async def encrypt(self, plaintext: str) -> str:
        return plaintext[::-1]

    async def decrypt(self, ciphertext: str) -> str:
        return ciphertext[::-1]


def test_an_async_adapter_is_refused_saying_so(client: Any) -> None:
    store = MongoStore(client, db_name=DB, collection_name="c_later", crypto_adapter=Later())
    with pytest.raises(TokenSessionError, match="never await them"):
        store.set("a", session())
    assert client[DB]["c_later"].count_documents({}) == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"crypto": {"secret": SECRET}, "crypto_adapter": Rot13()}, "not both"),
        ({"crypto": {"secret": ""}}, "non-empty secret"),
        ({"crypto": {"secret": SECRET, "algorithm": "aes-256-cbc"}}, "only aes-256-gcm"),
        ({"crypto": {"secret": SECRET, "kruptein": "2.0.5"}}, "only kruptein 3.x"),
        ({"crypto": {"secret": SECRET, "colour": "red"}}, "colour"),
        ({"crypto": SECRET}, "mapping with a secret"),
        ({"crypto_adapter": object()}, "encrypt(text) and decrypt(text)"),
        ({"crypto_adapter": {"adapter": "rot13"}}, '"adapter": "webcrypto" or "kruptein"'),
        ({"crypto_adapter": create_webcrypto_adapter}, "encrypt(text) and decrypt(text)"),
    ],
)
def test_options_refused_before_any_io(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(message)):
        from_url("mongodb://127.0.0.1:1/db", **options)


def test_webcrypto_adapter_options_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="AES-GCM or AES-CBC"):
        create_webcrypto_adapter(SECRET, algorithm="AES-CTR")
    with pytest.raises(InvalidArgumentError, match="iv_length"):
        create_webcrypto_adapter(SECRET, algorithm="AES-CBC", iv_length=12)
    with pytest.raises(InvalidArgumentError, match="encoding"):
        create_webcrypto_adapter(SECRET, encoding="latin1")


def test_secret_false_asks_for_no_encryption(client: Any) -> None:
    name = "c_" + uuid.uuid4().hex[:10]
    store = MongoStore(client, db_name=DB, collection_name=name, crypto={"secret": False})
    data = session()
    store.set("a", data)
    assert loads(stored(client[DB][name], "a")) == data  # connect-mongo 6.0.0: no crypto


def test_the_secret_is_never_shown() -> None:
    url = "mongodb://127.0.0.1:1/db?crypto=" + quote(json.dumps({"secret": SECRET}))
    with pytest.raises(InvalidArgumentError, match="not in the URL") as raised:
        MongoStore.from_url(url)
    assert SECRET not in str(raised.value)
    store = MongoStore.from_url("mongodb://127.0.0.1:1/db", crypto={"secret": SECRET})
    adapter = create_webcrypto_adapter(SECRET)
    assert store.codec.sealer is not None
    assert SECRET not in repr(store.codec) + repr(store.codec.sealer.adapter) + repr(adapter)
    with pytest.raises(InvalidArgumentError) as raised:
        MongoStore.from_url("mongodb://127.0.0.1:1/db", crypto=SECRET)
    assert SECRET not in str(raised.value)
    store.close()


def test_kruptein_records_are_strict_der_and_known_variants() -> None:
    adapter = create_kruptein_adapter(SECRET)
    record = base64.b64decode(adapter.encrypt('{"a":1}'))
    assert adapter.decrypt(base64.b64encode(record).decode()) == '"{\\"a\\":1}"'
    fields = der_read_octets(record)
    bad = {
        "bytes after": record + b"\x00",
        "truncated": record[:-1],
        "long form for a short length": b"\x30\x81\x03\x04\x01\x00",
        "indefinite length": b"\x30\x80\x04\x01\x00\x00\x00",
        "not octet strings": b"\x30\x03\x02\x01\x00",
    }
    for why, data in bad.items():
        with pytest.raises(ValueError):
            der_read_octets(data)
        assert why
    odd = der_octets([fields[0], fields[1][:40], *fields[2:]])
    with pytest.raises(DecryptError, match="unknown kruptein variant"):
        adapter.decrypt(base64.b64encode(odd).decode())
    tag = bytearray(fields[4])
    tag[0] ^= 1
    forged = der_octets([*fields[:4], bytes(tag), fields[5]])
    with pytest.raises(DecryptError, match=r"its HMAC matches .* but not its IV, tag or AAD"):
        adapter.decrypt(base64.b64encode(forged).decode())


def test_one_key_derived_for_many_writes() -> None:
    adapter = create_kruptein_adapter(SECRET)
    records = [adapter.encrypt(str(i)) for i in range(50)]
    salts = {der_read_octets(base64.b64decode(r))[3] for r in records}
    assert len(salts) == 1 and len(adapter._keys) == 1
    assert [adapter.decrypt(r) for r in records] == [json.dumps(str(i)) for i in range(50)]
    assert len(adapter._keys) == 1  # reads of its own records derive nothing


def test_serialize_and_unserialize_with_encryption(client: Any) -> None:
    """connect-mongo 6.0.0 encrypts what serialize gave (JSON.stringify of it unless it is
    text) and hands unserialize what JSON.parse makes of the plaintext."""
    name = "c_" + uuid.uuid4().hex[:10]
    store = MongoStore(
        client,
        db_name=DB,
        collection_name=name,
        serialize=lambda s: {"wrapped": dict(s)},
        unserialize=lambda value: value["wrapped"],
        crypto_adapter=create_webcrypto_adapter(SECRET, iterations=10),
    )
    data = session()
    store.set("a", data)
    assert not set(stored(client[DB][name], "a")) & set('{":, ')
    assert store.get("a") == data


def test_a_wrong_cbc_key_whose_padding_passes_is_still_a_wrong_secret() -> None:
    # one time in 256 a wrong AES-CBC key leaves valid padding on garbage: find such a record
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    wrong = create_webcrypto_adapter("not the secret", algorithm="AES-CBC", iterations=10)
    right = create_webcrypto_adapter(SECRET, algorithm="AES-CBC", iterations=10)
    data = session()
    record = right.encrypt(dumps(data))
    combined = bytearray(base64.b64decode(record))
    decryptor = Cipher(algorithms.AES(wrong.key()), modes.CBC(bytes(combined[:16]))).decryptor()
    last = (decryptor.update(bytes(combined[16:])) + decryptor.finalize())[-1]
    combined[-17] ^= last ^ 1  # the wrong key's last plaintext byte becomes 1: a valid pad
    forged = base64.b64encode(bytes(combined)).decode()
    with pytest.raises(DecryptError, match="wrong secret"):
        wrong.decrypt(forged)
    assert loads(right.decrypt(record)) == data
