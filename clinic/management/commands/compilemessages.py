"""Django's compilemessages for this project's catalogs only: not the virtualenv's packages,
whose .mo files come compiled (`manage.py compilemessages -l es` is all a translator types)."""

from django.core.management.commands import compilemessages

IGNORED = [".venv", "var", "node_modules"]


class Command(compilemessages.Command):
    def handle(self, **options):
        options["ignore_patterns"] = [*options.get("ignore_patterns", []), *IGNORED]
        return super().handle(**options)
