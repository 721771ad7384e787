"""Redis store, byte for byte what connect-redis 9.0.0 writes (and 7.1.1 and 6.1.3 wrote):
see ``format.py``."""

from .format import AsyncRedisStore, RedisCodec, RedisRecords, RedisStore

__all__ = ["AsyncRedisStore", "RedisCodec", "RedisRecords", "RedisStore"]
