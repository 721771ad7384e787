"""get+touch in one PostgreSQL statement, with no I/O (:mod:`.format` fills in each Node
store's expiry rules): what ``get`` reads, and in the same statement the expiry ``touch``
then writes for the session with its cookie restarted (express-session's ``resetMaxAge``),
wherever that is plain SQL: a whole ``originalMaxAge``, or no ``cookie.expires``. The
statement gives back the row's expiry before it, as text, for a session ``get`` then fails
to decode (``StoreFormat.restore`` writes it back)."""

from __future__ import annotations

__all__ = ["LAST_MS", "get_and_touch_sql"]

LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, which both sides write alike


def get_and_touch_sql(
    t: str, sid: str, exp: str, live: str, value: str, when: str, skip: str
) -> str:
    """get+touch as one statement on table ``t`` (quoted names ``sid`` and ``exp``; ``live``
    the get's condition). The row found is touched to ``value`` where ``when`` holds and
    needs no touch where ``skip`` does (SQL on ``found``): ``found.ms`` is now +
    cookie.originalMaxAge where that is a whole number of at most 15 digits (resetMaxAge
    then writes now + it as cookie.expires, exactly, and touch reads that back),
    ``found.timed`` whether originalMaxAge is a number, ``found.plain`` whether the session
    is an object with no cookie.expires or a null one. A row neither touched nor skipped
    gets the ordinary touch statement after. (The regex says ``{0,1}``, not ``?``: the
    placeholders are ``?``.)"""
    life = "j->'cookie'->'originalMaxAge'"
    return (
        # j: the JSON, unless it holds a \u escape (JSON.stringify writes them for control
        # characters and lone surrogates only): PostgreSQL fails to read some (\u0000, a
        # lone surrogate, any non-ASCII one outside UTF8 databases) field by field where
        # get reads the text whole. Such a row gets the touch statement after.
        f"WITH got AS (SELECT {sid} AS k, sess, {exp} AS old,"
        " CASE WHEN strpos(sess::text, E'\\\\u') = 0 THEN sess END AS j"
        f" FROM {t} WHERE {sid} = ? AND {live}),"
        f" found AS (SELECT k, sess, old, coalesce(json_typeof({life}), 'none') = 'number'"
        " AS timed, json_typeof(j) = 'object'"
        " AND coalesce(json_typeof(j->'cookie'->'expires'), 'null') = 'null' AS plain,"
        f" CASE WHEN json_typeof({life}) = 'number' THEN"
        " CASE WHEN j->'cookie'->>'originalMaxAge' ~ '^-{0,1}[0-9]{1,15}$'"
        " THEN ?::bigint + (j->'cookie'->>'originalMaxAge')::bigint END END AS ms FROM got),"
        f" touched AS (UPDATE {t} SET {exp} = {value} FROM found"
        f" WHERE {t}.{sid} = found.k AND ({when}) RETURNING 1)"
        f" SELECT found.sess::text, EXISTS (SELECT 1 FROM touched), {skip},"
        " found.old::text FROM found"
    )
