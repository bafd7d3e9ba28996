# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The embedded default: no DATABASE_URL or broker, so SQLite, eager Celery, console mail.
DEV_ENV := env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL DEBUG=true
# Pass (b) of `make test`: the real services (override on the command line if yours differ).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/clinic
TEST_REDIS_URL ?= redis://127.0.0.1:6379/14
TEST_ENV := SECRET_KEY=insecure-key-for-tests-only SITE_URL=http://127.0.0.1:8000
BOOTSTRAP_VERSION := 5.3.9
PURGECSS_VERSION := 8.0.0

.PHONY: run test test-embedded test-services test-dates worker lint format vendor clean bench lighthouse

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed (python3.11 or python3 on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

run: $(STAMP)
	$(DEV_ENV) $(PY) manage.py migrate --noinput
	$(DEV_ENV) $(PY) manage.py load_content
	$(DEV_ENV) $(PY) manage.py ensure_demo_admin
	@echo "Serving the clinic's site on http://127.0.0.1:8000 (Ctrl-C stops it)"
	$(DEV_ENV) $(PY) manage.py runserver 127.0.0.1:8000

test: test-embedded test-services

test-embedded: $(STAMP)
	@echo "==> make test, pass (a): embedded default (SQLite, eager Celery, locmem mail)"
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL $(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

test-services: $(STAMP)
	@echo "==> make test, pass (b): PostgreSQL + Redis + a real Celery worker"
	@if [ "$$CI" = "true" ] || $(PY) tests/services_up.py "$(TEST_DATABASE_URL)" "$(TEST_REDIS_URL)"; then \
		DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" $(TEST_ENV) \
		CLINIC_REAL_WORKER=1 $(PY) -m pytest $(PYTEST_ARGS); \
	else \
		echo "################################################################"; \
		echo "## SKIPPED pass (b): PostgreSQL or Redis is not reachable.     ##"; \
		echo "## Start them, or set TEST_DATABASE_URL / TEST_REDIS_URL.      ##"; \
		echo "################################################################"; \
	fi

# Pass (a), browser tests aside, under libfaketime at instants that are hard for a clinic in
# America/Los_Angeles (UTC below; local time in the comment). Needs `apt-get install faketime`.
# Not part of `make test` (eight runs take a while); run it after touching anything with dates.
TEST_DATES ?= \
	2027-03-14T06:30:00 \
	2027-11-07T09:15:00 \
	2027-01-01T07:55:00 \
	2028-02-29T20:00:00 \
	2027-06-05T17:00:00 \
	2027-06-07T06:40:00 \
	2027-01-13T18:00:00 \
	2026-12-05T03:00:00
# Sat 13 Mar 22:30 PST, the evening before spring-forward | Sun 7 Nov 01:15 PST, the second
# 01:15 of fall-back | Thu 31 Dec 23:55 PST, New Year's Eve | Tue 29 Feb 2028 12:00 PST, a
# leap day | Sat 5 Jun 10:00 PDT | Sun 6 Jun 23:40 PDT, Sunday night | Wed 13 Jan 10:00 PST,
# whose 60-day booking window ends on spring-forward day | Fri 4 Dec 19:00 PST, a Friday evening.
test-dates: $(STAMP)
	@command -v faketime >/dev/null || { echo "make test-dates needs faketime (apt-get install faketime)"; exit 2; }
	@failed=""; for instant in $(TEST_DATES); do \
		echo "==> make test-dates: pass (a) at $$instant UTC"; \
		env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL $(TEST_ENV) TZ=UTC \
			faketime "$$(echo $$instant | tr T ' ')" $(PY) -m pytest -q -p no:cacheprovider \
			--ignore=tests/e2e $(PYTEST_ARGS) || failed="$$failed $$instant"; \
	done; \
	if [ -n "$$failed" ]; then echo "make test-dates: failed at$$failed"; exit 1; fi; \
	echo "make test-dates: green at every instant"

# A worker needs a broker: the local Redis unless REDIS_URL or CELERY_BROKER_URL says otherwise.
# It consumes the default queue (transactional mail) and the bulk queue (newsletters).
worker: $(STAMP)
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0} DEBUG=$${DEBUG:-true} \
		$(PY) -m celery -A clinic worker --beat -Q celery,$${CELERY_BULK_QUEUE:-bulk} --loglevel=info

# The site as in production, on this machine: DEBUG off, PostgreSQL (clinic_serve, created,
# migrated and loaded if missing), Redis, collectstatic, gunicorn, the worker and one beat,
# started together; Ctrl-C stops them all (scripts/serve.py; the environment overrides).
.PHONY: serve
serve: $(STAMP)
	$(PY) scripts/serve.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/bandit -c pyproject.toml -r . -q

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Refresh the self-hosted Bootstrap from the npm package (needs npm; the result is committed),
# keeping only the rules our templates use (PurgeCSS, purgecss.config.cjs).
vendor: $(STAMP)
	rm -rf var/vendor && mkdir -p var/vendor static/vendor/bootstrap
	cd var/vendor && npm pack --silent bootstrap@$(BOOTSTRAP_VERSION) && tar xzf bootstrap-$(BOOTSTRAP_VERSION).tgz
	cd var/vendor && npm install --silent --no-audit --no-fund --no-save -E purgecss@$(PURGECSS_VERSION)
	SITE_PACKAGES="$$($(PY) -c 'import django, pathlib; print(pathlib.Path(django.__file__).parent.parent)')" \
		var/vendor/node_modules/.bin/purgecss --config purgecss.config.cjs \
		--css var/vendor/package/dist/css/bootstrap.min.css --output static/vendor/bootstrap/
	cp var/vendor/package/LICENSE static/vendor/bootstrap/LICENSE
	echo "Bootstrap $(BOOTSTRAP_VERSION), compiled CSS from the npm package 'bootstrap', only the rules the site uses (PurgeCSS $(PURGECSS_VERSION), make vendor)." > static/vendor/bootstrap/VERSION
	sed -i '/sourceMappingURL/d' static/vendor/bootstrap/bootstrap.min.css

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

# Booking times are measured twice: on SQLite in a temporary file, then on this PostgreSQL
# database (created and migrated if missing; skipped with a note if the server is down).
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/clinic_bench

bench: $(STAMP)
	env -u REDIS_URL -u CELERY_BROKER_URL $(PY) bench/pages.py
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL $(PY) bench/booking.py
	env -u REDIS_URL -u CELERY_BROKER_URL DATABASE_URL="$(BENCH_DATABASE_URL)" $(PY) bench/booking.py
	$(PY) bench/waitlist.py
	$(PY) bench/rooms.py
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL $(PY) bench/newsletter.py
	env -u REDIS_URL -u CELERY_BROKER_URL DATABASE_URL="$(BENCH_DATABASE_URL)" $(PY) bench/newsletter.py
	$(PY) bench/http_bench.py

# Backups of the PostgreSQL database DATABASE_URL names (postgres://...), in pg_dump's custom
# format. `make backup` writes var/backups/clinic-<UTC time>.dump, or BACKUP=path; the file
# holds patients' data, so only its owner may read it. `make restore BACKUP=path` replaces
# everything in DATABASE_URL's database with the file's contents, in one transaction.
# Recipes are not echoed: DATABASE_URL may carry a password.
.PHONY: backup restore
BACKUP_DIR := var/backups

backup:
	@case "$$DATABASE_URL" in postgres://*|postgresql://*) ;; \
		*) echo "make backup: set DATABASE_URL to the PostgreSQL database (postgres://...)" >&2; exit 2;; esac
	@file="$${BACKUP:-$(BACKUP_DIR)/clinic-$$(date -u +%Y%m%dT%H%M%SZ).dump}"; \
		mkdir -p "$$(dirname "$$file")" && umask 077 && \
		{ pg_dump --format=custom --no-owner --no-acl --dbname="$$DATABASE_URL" --file="$$file.partial" \
			|| { rm -f "$$file.partial"; exit 1; }; } && \
		mv "$$file.partial" "$$file" && echo "Backed up to $$file"

restore:
	@case "$$DATABASE_URL" in postgres://*|postgresql://*) ;; \
		*) echo "make restore: set DATABASE_URL to the PostgreSQL database (postgres://...)" >&2; exit 2;; esac
	@test -n "$$BACKUP" || { echo "make restore: name the file: make restore BACKUP=$(BACKUP_DIR)/clinic-....dump" >&2; \
		ls -1t $(BACKUP_DIR)/*.dump 2>/dev/null | head -5 >&2; exit 2; }
	@test -f "$$BACKUP" || { echo "make restore: there is no file $$BACKUP" >&2; exit 2; }
	@pg_restore --clean --if-exists --no-owner --no-acl --single-transaction --exit-on-error \
		--dbname="$$DATABASE_URL" "$$BACKUP" && echo "Restored $$BACKUP"

# Lighthouse on the home page, the calf article and every booking step (needs npm and
# Chromium; lighthouse is installed into var/lighthouse, which git ignores).
LIGHTHOUSE_VERSION := 12.2.3
lighthouse: $(STAMP)
	test -x var/lighthouse/node_modules/.bin/lighthouse || { mkdir -p var/lighthouse && \
		cd var/lighthouse && npm install --silent --no-audit --no-fund --no-save -E lighthouse@$(LIGHTHOUSE_VERSION); }
	CHROME_PATH=$${CHROME_PATH:-/usr/bin/chromium} $(PY) bench/lighthouse.py

# The default social card (og:image), drawn from the clinic's name, tagline and colours.
# The PNG is committed; run this after changing any of them.
.PHONY: social-card
social-card: $(STAMP)
	$(PY) scripts/social_card.py
