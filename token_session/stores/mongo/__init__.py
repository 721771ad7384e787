"""MongoDB store: connect-mongo's documents (see :mod:`.format`)."""

from __future__ import annotations

from .format import AUTO_REMOVE as AUTO_REMOVE
from .format import AsyncMongoStore, MongoCodec, MongoRecords, MongoStore
from .format import Op as Op
from .format import default_serialize as default_serialize

__all__ = ["AsyncMongoStore", "MongoCodec", "MongoRecords", "MongoStore"]
