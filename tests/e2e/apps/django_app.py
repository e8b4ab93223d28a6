"""A one-file Django project for the end-to-end tests (protected by `bastion-run`).

Served by gunicorn as `tests.e2e.apps.django_app:application` (WSGI) or by uvicorn as
`tests.e2e.apps.django_app:asgi_application` (ASGI, async views).
"""

from __future__ import annotations

import json

from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="e2e-only-not-secret",
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    INSTALLED_APPS=[],
    USE_TZ=True,
)

import django  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

import bastion  # noqa: E402

django.setup()


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


def search(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")
    response = HttpResponse(json.dumps({"query": q, "results": [q.upper()]}),
                            content_type="application/json")
    response["X-App"] = "django"
    return response


async def item(request: HttpRequest, item_id: str) -> JsonResponse:
    return JsonResponse({"item": item_id})


def submit(request: HttpRequest) -> HttpResponse:
    body = request.body
    return HttpResponse(json.dumps({"length": len(body)}), content_type="application/json")


def login_as(request: HttpRequest) -> HttpResponse:
    bastion.set_user(request.GET.get("user", ""))
    return HttpResponse("welcome", content_type="text/plain")


def refuse(request: HttpRequest) -> HttpResponse:
    bastion.block_request()
    return HttpResponse("not reached")


urlpatterns = [
    path("health", health),
    path("search", search),
    path("item/<str:item_id>", item),
    path("submit", submit),
    path("login-as", login_as),
    path("refuse", refuse),
]

from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

application = WSGIHandler()
asgi_application = ASGIHandler()
