"""The FastAPI half: sees who logged in on Express and keeps their cart, in the same session.

Run with ``uvicorn app:app --port 8000`` (see docs/guides/share-login.md).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request

from token_session.stores import async_from_url
from token_session.web.asgi import SessionMiddleware, session_of

# the Redis, key prefix and secret the Express app uses
store = async_from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), prefix="sess:")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await store.close()


app = FastAPI(lifespan=lifespan)
app.add_middleware(
    SessionMiddleware,
    store=store,
    secret=os.environ.get("SESSION_SECRET", "change me"),
    resave=False,
    save_uninitialized=False,
    cookie={"max_age": 24 * 3600 * 1000, "same_site": "lax"},  # milliseconds, as in Express
)


def view(request: Request) -> dict[str, Any]:
    session = request.session
    return {"app": "fastapi", "user": session.get("user"), "cart": session.get("cart", [])}


@app.get("/me")
async def me(request: Request) -> dict[str, Any]:
    return view(request)


@app.post("/cart")
async def add_to_cart(request: Request, item: str) -> dict[str, Any]:
    if request.session.get("user") is None:
        return {"error": "log in on the Express app first"}
    request.session["cart"] = [*request.session.get("cart", []), item]
    return view(request)


@app.post("/logout")
async def logout(request: Request) -> dict[str, Any]:
    session_of(request).destroy()
    return {"app": "fastapi", "user": None}
