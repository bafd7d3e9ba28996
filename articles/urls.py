from django.urls import path

from . import feeds, views

app_name = "articles"
urlpatterns = [
    path("", views.article_list, name="list"),
    path("feed/rss/", feeds.LatestArticlesFeed(), name="rss"),
    path("feed/atom/", feeds.LatestArticlesAtomFeed(), name="atom"),
    path("topics/<slug:slug>/", views.topic_detail, name="topic"),
    path("<slug:slug>/", views.article_detail, name="detail"),
]
