from django.shortcuts import render
from django.urls import path

PARAGRAPHS = [f"Paragraph {n}" for n in range(20)]


def page(request):
    return render(request, "bare.html", {"title": "Bare Django", "paragraphs": PARAGRAPHS})


urlpatterns = [path("", page)]
