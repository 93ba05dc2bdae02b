"""The review page: a small FastAPI + Jinja2 app over one digitize run folder.

One doubtful field at a time: its crop (the whole top section on demand), the chosen value in an
editable box, each engine's candidates as numbered buttons, progress. The fields are the run's
form's (:attr:`ReviewRun.spec <handwriting_pipeline.review.run.ReviewRun.spec>`), a value is
checked with its field's type. Keyboard first (see ``static/review.js``). Every decision goes
straight into the run's corrections store
(:class:`~handwriting_pipeline.review.store.CorrectionStore`) before the page moves on.

Safety: :func:`serve` binds 127.0.0.1 unless told otherwise (another interface needs
``allow_remote`` and a token); only image files inside the run folder are served
(:meth:`ReviewRun.file`); decisions are validated (:func:`~handwriting_pipeline.review.store.check_value`);
templates autoescape and data reaches the script as JSON (``tojson``), shown with ``textContent``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from handwriting_pipeline.review.run import ReviewRun
from handwriting_pipeline.review.store import CorrectionStore, Decision, InvalidDecision

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
TOKEN_COOKIE = "review_token"


class DecisionIn(BaseModel):
    """A decision as the page posts it."""

    index: int = Field(ge=0)
    field: str = Field(max_length=64)
    value: str = Field(max_length=200)
    action: str = Field(max_length=16)
    candidate: str | None = Field(default=None, max_length=200)


def _decision_view(d: Decision) -> dict[str, Any]:
    return {"value": d.value, "reviewer": d.reviewer, "at": d.at, "action": d.action, "status": d.status}


def create_app(run: ReviewRun, store: CorrectionStore, reviewer: str, token: str | None = None) -> FastAPI:
    """The app for ``run``; decisions are stored as ``reviewer``. With ``token`` every request
    must carry it (``?token=`` once, then a same-site cookie, or the ``X-Review-Token`` header)."""
    app = FastAPI(title="handwriting_pipeline review", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def check_token(request: Request, call_next):  # noqa: ANN001, ANN202 - starlette's signature
        if token is None:
            response = await call_next(request)
        else:
            given = (request.query_params.get("token") or request.headers.get("x-review-token")
                     or request.cookies.get(TOKEN_COOKIE) or "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"error": "a valid token is needed (open the URL the server printed)"}, 403)
            response = await call_next(request)
            if request.query_params.get("token"):
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; img-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def decided(i: int) -> list[Decision]:
        item = run.items[i]
        return store.decisions(item.form, item.field)

    def progress() -> dict[str, int]:
        latest = store.latest()
        done = {(it.form, it.field) for it in run.items} & set(latest)
        forms: dict[str, bool] = {}
        for it in run.items:
            forms[it.form] = forms.get(it.form, True) and (it.form, it.field) in done
        return {"fields_done": len(done), "fields": len(run.items), "forms_done": sum(forms.values()),
                "forms": len(forms)}

    def first_open() -> int | None:
        latest = store.latest()
        return next((it.index for it in run.items if (it.form, it.field) not in latest), None)

    @app.get("/", response_class=HTMLResponse)
    def home() -> Any:
        index = first_open()
        return RedirectResponse("/done" if index is None else f"/item/{index}", status_code=303)

    @app.get("/item/{index}", response_class=HTMLResponse)
    def item_page(request: Request, index: int, conflict: str | None = None) -> Any:
        if not 0 <= index < len(run.items):
            raise HTTPException(404, f"no doubtful field {index}; the run has {len(run.items)}")
        item = run.items[index]
        history = [_decision_view(d) for d in decided(index)]
        options = item.options()
        data = {"index": index, "field": item.field, "chosen": item.chosen, "options": options,
                "previous": index - 1 if index > 0 else None, "count": len(run.items), "reviewer": reviewer}
        return templates.TemplateResponse(request, "page.html", {
            "item": item, "options": options, "history": history, "progress": progress(), "data": data,
            "reviewer": reviewer, "conflict": conflict, "run_name": run.folder.name,
            "crop": item.crop if item.crop and run.file(item.crop) else None,
            "top": item.top if item.top and run.file(item.top) else None,
            "record": run.record_of(item.form) or {}, "fields": run.keys, "title": item.title,
        })

    @app.get("/done", response_class=HTMLResponse)
    def done_page(request: Request) -> Any:
        conflicts = [{"form": f, "field": k, "values": [_decision_view(d) for d in ds]}
                     for (f, k), ds in store.conflicts().items()]
        return templates.TemplateResponse(request, "done.html", {
            "progress": progress(), "conflicts": conflicts, "run_name": run.folder.name, "count": len(run.items),
            "folder": str(run.folder)})

    @app.get("/files/{relative:path}")
    def run_file(relative: str) -> Any:
        path = run.file(relative)
        if path is None:
            raise HTTPException(404, "not a file of this run")
        return FileResponse(path)

    @app.get("/api/progress")
    def api_progress() -> dict[str, int]:
        return progress()

    @app.post("/api/decide")
    def decide(body: DecisionIn, request: Request) -> Any:
        if "application/json" not in request.headers.get("content-type", ""):
            raise HTTPException(415, "JSON only")
        if not 0 <= body.index < len(run.items):
            raise HTTPException(404, f"no doubtful field {body.index}")
        item = run.items[body.index]
        if body.field != item.field:
            raise HTTPException(422, f"field {body.field!r} is not the field of item {body.index} ({item.field})")
        if body.action == "pick" and body.value not in [o["value"] for o in item.options()]:
            raise HTTPException(422, "picked value is none of the candidates")
        try:
            decision, conflicts = store.record(item.form, item.field, body.value, item.chosen, reviewer,
                                               action=body.action, candidate=body.candidate)
        except InvalidDecision as err:
            raise HTTPException(422, str(err)) from err
        following = body.index + 1 if body.index + 1 < len(run.items) else None
        return {"ok": True, "decision": decision.to_dict(), "next": following,
                "conflicts": [_decision_view(d) for d in conflicts], "progress": progress()}

    return app


def serve(folder: str | Path, host: str = "127.0.0.1", port: int = 8765, reviewer: str = "reviewer",
          token: str | None = None, allow_remote: bool = False, store_path: str | Path | None = None,
          form: str | Path | None = None) -> None:
    """Run the review page for a digitize run folder until Ctrl-C (``form``: the run's form spec
    when its summary names one that is not shipped)."""
    import uvicorn

    if host not in LOCAL_HOSTS:
        if not allow_remote:
            raise SystemExit(f"refusing to serve on {host}: the page binds 127.0.0.1 unless you pass --allow-remote "
                             "(and then a token guards it)")
        token = token or secrets.token_urlsafe(16)
    run = ReviewRun.open(folder, form)
    store = run.store(store_path)
    app = create_app(run, store, reviewer, token)
    query = f"?token={token}" if token else ""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(f"Review page: http://{shown}:{port}/{query}  ({len(run.items)} doubtful fields of the form "
          f"{run.spec.name} in {run.folder}; "
          f"decisions -> {store.path}; Ctrl-C to stop)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
