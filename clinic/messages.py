"""Flash messages kept server-side, in the database session, never in a cookie.

Django's default stores them in a signed but readable cookie; some of ours are about a
patient's health (the advice after a "yes" to the health questions), and health data never
goes into a cookie. Sessions already live in the database.

A visitor without a session cookie has no messages to read, so the session is not even
looked at (no query, no `Vary: Cookie` on public pages). Once a visitor's last message is
shown and nothing else is in their session, the session is deleted and its cookie dropped,
so the page cache serves them again.
"""

from django.conf import settings
from django.contrib.messages.storage.session import SessionStorage


class ServerSideMessageStorage(SessionStorage):
    def _get(self, *args, **kwargs):
        if settings.SESSION_COOKIE_NAME not in self.request.COOKIES:
            return [], True
        return super()._get(*args, **kwargs)

    def _store(self, messages, response, *args, **kwargs):
        unstored = super()._store(messages, response, *args, **kwargs)
        session = self.request.session
        if not messages and not session.keys():
            # Nothing left to keep: delete the row (its text included) and the cookie.
            session.flush()
        return unstored
