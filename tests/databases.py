"""Databases of a test module's own on the shared MySQL, PostgreSQL and MongoDB servers,
dropped afterwards."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pymongo
import pymysql

from .backends import mysql_connect_args


@contextlib.contextmanager
def scratch_database(postgres_url: str, prefix: str) -> Iterator[str]:
    """A PostgreSQL database of its own (dropped afterwards): its URL."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(postgres_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scratch_mysql_database(mysql_url: str, prefix: str) -> Iterator[dict[str, Any]]:
    """A MySQL database of its own (dropped afterwards): connect keywords for it (PyMySQL's,
    the store's and mysql2's alike)."""
    args = mysql_connect_args(mysql_url)
    name = f"{prefix}_{secrets.token_hex(4)}"
    server = pymysql.connect(**{**args, "database": None}, autocommit=True)
    with server.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield {**args, "database": name}
    finally:
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        server.close()


def drop_mysql_table(mysql_url: str, table: str) -> None:
    """Drop ``table`` from the URL's database, if it is there (a test's own table)."""
    connection = pymysql.connect(**mysql_connect_args(mysql_url), autocommit=True)
    try:
        connection.cursor().execute(f"DROP TABLE IF EXISTS `{table}`")
    finally:
        connection.close()


@contextlib.contextmanager
def mongo_client(mongo_url: str, database: str) -> Iterator[pymongo.MongoClient[Any]]:
    """A client (dates read as aware datetimes, as the stores read them) of the server at
    ``mongo_url``; ``database`` is dropped afterwards."""
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_url, tz_aware=True)
    try:
        yield client
    finally:
        client.drop_database(database)
        client.close()
