"""MongoDB store, document for document what connect-mongo 6.0.0 writes (and 4.6.0 wrote).

:class:`MongoCodec` (:mod:`.format`) holds the rules and does no I/O: the filter, update and
options of each operation, and how a stored document becomes a session; :mod:`.values` maps
JS values to the BSON the Node driver writes. :class:`MongoStore` (:mod:`.store`, pymongo's
``MongoClient``) and :class:`AsyncMongoStore` (:mod:`.aio`, ``AsyncMongoClient``) only run
them, on what they share (:mod:`.shell`), each operation bounded by the store's ``timeout``
(:mod:`.options`: the options, and what a URL holds); :class:`MongoRecords`
(:mod:`.records`) is the ``token-session`` command's record access and ``doctor``.

Where connect-mongo goes wrong the store does better: ``all()`` skips a document it cannot
decode (connect-mongo's fails), ``length()`` counts the live sessions only, and a failed
TTL index creation is tried again on the next call.

Encrypted sessions (connect-mongo's ``crypto`` and 6.0.0's ``cryptoAdapter``; ``crypto=`` /
``crypto_adapter=`` here) are read and written by :mod:`.sealing`, over kruptein's records
(:mod:`.kruptein`) and the WebCrypto adapter (:mod:`.crypto`); kruptein's key is derived once
per salt, where kruptein derives one on every read and write.
"""

from __future__ import annotations

from .aio import AsyncMongoStore
from .format import AUTO_REMOVE as AUTO_REMOVE
from .format import MongoCodec
from .format import Op as Op
from .format import log as log
from .records import MongoRecords
from .sealing import CryptoAdapter as CryptoAdapter
from .sealing import create_kruptein_adapter, create_webcrypto_adapter
from .store import MongoStore
from .values import default_serialize as default_serialize

__all__ = [
    "AsyncMongoStore",
    "MongoCodec",
    "MongoRecords",
    "MongoStore",
    "create_kruptein_adapter",
    "create_webcrypto_adapter",
]
