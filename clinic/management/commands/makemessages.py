"""Django's makemessages with this project's defaults, so `manage.py makemessages -l es` is all
a translator types and the test that finds unmarked strings runs exactly the same thing.

Only the site's own code and templates are read (not tests, benchmarks or scripts), and
locations name the file without a line number, so moving a line does not rewrite the .po.
"""

from django.core.management.commands import makemessages

# Folders whose strings no patient reads.
IGNORED = ["tests", "bench", "scripts", "deploy", "var", "static", "locale"]


class Command(makemessages.Command):
    def handle(self, *args, **options):
        options["ignore_patterns"] = [*options.get("ignore_patterns", []), *IGNORED]
        if options.get("add_location") is None:
            options["add_location"] = "file"
        return super().handle(*args, **options)
