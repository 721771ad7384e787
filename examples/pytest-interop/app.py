"""The Python half of a stack whose Express app logs people in: a small Flask app that
reads and writes the same sessions over the same Redis (token_session.web.flask)."""

from __future__ import annotations

from typing import Any

from flask import Flask, request, session

from token_session.web.flask import ExpressSessionInterface


def create_app(redis_url: str, prefix: str, secret: str) -> Flask:
    app = Flask(__name__)
    app.session_interface = ExpressSessionInterface(
        f"{redis_url}{'&' if '?' in redis_url else '?'}prefix={prefix}",
        secret=secret,
        resave=False,
        save_uninitialized=False,
        cookie={"max_age": 60_000},
    )

    @app.get("/me")
    def me() -> dict[str, Any]:
        return {"user": session.get("user"), "cart": session.get("cart", [])}

    @app.post("/cart")
    def cart() -> dict[str, Any]:
        session["cart"] = [*session.get("cart", []), request.args["item"]]
        return {"user": session.get("user"), "cart": session["cart"]}

    @app.post("/logout")
    def logout() -> dict[str, Any]:
        session.destroy()  # type: ignore[attr-defined]
        return {"user": None}

    return app
