# ConciliaExtrato deploy runbooks. `make help` lists every target.
# Every runbook needs ENV=<name> (a file in env/): there is no default, so production is never hit by accident.
SHELL := /bin/bash
.DEFAULT_GOAL := help
TSX := node_modules/.bin/tsx
# A runbook through runbooks/run.ts: the variables (ENV=, RELEASE=, DRY_RUN=1...) reach it through the
# environment (make exports its command-line variables), never pasted into the shell line. make itself
# exits 2 whenever a recipe fails; the runbook's own code is run.ts's last line ("deploy: exit 4 (...)")
# and what run.ts returns when CI or a script calls it directly (README: Exit codes).
RUNBOOK = node --import tsx runbooks/run.ts $(1)

.PHONY: help deps deps-node check test test-unit test-integration demo sandbox sandbox-down status setup-server verify-server bench-setup unlock access secrets-edit rotate-secret logs psql exec maintenance deploy rollback releases release-images bench-deploy backup backups backup-recipient ship-records restore restore-drill prune-backups bench-pitr bench-backup dns health bench-health bench-outside-in bench-oncall uptime status-page report loadtest security-scan incident rehearse-migration emergency image drill-emergency gates alert heartbeats bench-pipeline rehearse rehearse-pipeline

help: ## List every target
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | awk -F'\t' '{printf "  make %-18s %s\n", $$1, $$2}'
	@echo "  Runbooks take ENV=<env> (required; one of: $$(ls env/*.yaml | xargs -n1 basename | sed 's/.yaml//' | tr '\n' ' ')),"
	@echo "  DRY_RUN=1 to print the commands without changing anything, YES=1 to skip the confirmation."

deps: ## Install what the sandbox and tests need (apt, npm ci) and start dockerd
	@bash .ci/deps.sh

deps-node: ## Only the npm packages (npm ci when package-lock.json changed): what check and test-unit need
	@bash .ci/deps.sh --node

check: deps-node ## Typecheck and lint
	@npm run --silent check

test: deps check ## Check, then unit and sandbox integration tests; ends with "N passed, N failed"
	@$(TSX) test/run.ts all

test-unit: deps-node ## Unit tests only (no Docker, no apt package; as root or with passwordless sudo, as a CI runner has)
	@$(TSX) test/run.ts unit

test-integration: deps ## Integration tests on sandbox droplets only
	@$(TSX) test/run.ts integration

demo: sandbox ## Sandbox droplet -> setup-server -> deploy v1 -> status; prints the three URLs it answers on
	@$(TSX) runbooks/setup-server.ts --env local --yes
	@$(TSX) runbooks/deploy.ts --env local --release v1 --yes
	@$(TSX) runbooks/status.ts --env local
	@echo "The stack answers on (*.localhost resolves to 127.0.0.1):"
	@$(TSX) test/sandbox/cli.ts urls

sandbox: deps ## Start the sandbox droplets (DROPLETS=N, default 1) and build the fixture images
	@$(TSX) test/sandbox/cli.ts up --droplets $(or $(DROPLETS),1)

sandbox-down: ## Remove every sandbox container and network
	@$(TSX) test/sandbox/cli.ts down

status: ## Status of every host: OS, uptime, disk, memory, Docker, release, lock, audit (read-only)
	@$(call RUNBOOK,status)

setup-server: ## Make a fresh droplet a hardened deploy target (HOST=<name> for one host); safe to re-run
	@$(call RUNBOOK,setup-server)

verify-server: ## Check every promise setup-server makes on the host(s) (read-only; HOST=<name>)
	@$(call RUNBOOK,verify-server)

bench-setup: deps ## Benchmark: setup-server on a new sandbox droplet, fresh and re-run (JSON line at the end)
	@$(TSX) test/bench/setup.ts

logs: ## Containers' logs of every host, marked host service/colour, secrets redacted (SERVICE= SINCE=10m GREP= FOLLOW=1 HOST=)
	@$(call RUNBOOK,logs)

psql: ## One SQL text on the env's Postgres, one transaction, read-only unless WRITE=1; audited (SQL="...")
	@$(call RUNBOOK,psql)

access: ## Who can log in where: every key of deploy, root and the checker per host vs the env file (APPLY=1 revokes strays)
	@$(call RUNBOOK,access)

secrets-edit: ## Edit env/<ENV>.secrets.age (age-encrypted) in your editor; SET=NAME (value on stdin), UNSET=NAME, IMPORT=1, REKEY=1
	@$(call RUNBOOK,secrets-edit)

rotate-secret: ## Change POSTGRES_PASSWORD or REDIS_PASSWORD (NAME=) with no failed request; the new value saved where the secret is kept
	@$(call RUNBOOK,rotate-secret)

maintenance: ## A 503 page with Retry-After on every web host (ON=1 or OFF=1; SERVICE=api,saas MINUTES=60 REASON=)
	@$(call RUNBOOK,maintenance)

exec: ## One command in a service's running container (SERVICE= CMD="..." [HOST=]); audited; production confirms
	@$(call RUNBOOK,exec)

unlock: ## Break a stale deploy lock (shows who held it; audited)
	@$(call RUNBOOK,unlock)

deploy: ## Deploy RELEASE=<sha> with zero downtime (blue/green); DIGESTS= pins the images; BRANCH=, ALLOW_BRANCH=1 for the branch rule
	@$(call RUNBOOK,deploy)

rollback: ## Back to the previous good release, or TO=<release>
	@$(call RUNBOOK,rollback)

releases: ## The release history (read-only)
	@$(call RUNBOOK,releases)

release-images: ## Was RELEASE=<sha> already built (the merge queue)? Its digests, asked on the env's first host (CI: found=, digests= outputs)
	@$(call RUNBOOK,release-images)

bench-deploy: deps ## Benchmark: deploy and rollback under continuous load vs recreating in place; HOSTS=2 on a swarm; BUSY=1 beside a droplet taking backups; ROUNDS=N cycles; RATE=30 requests a second (0: flat out) (JSON line; exit 1 if a request failed)
	@$(TSX) test/bench/deploy.ts

backup: ## Back up Postgres, Redis and the deploy config, encrypted, to the env's store (REASON=...)
	@$(call RUNBOOK,backup)

backup-recipient: ## The public half of the env's backup key (it seals, it opens nothing): what a sealing host holds
	@$(call RUNBOOK,backup-recipient)

ship-records: ## Copy this machine's audit records and run state to the env's backup store (records/<env>/<day>/<run>/; CI's last step)
	@$(call RUNBOOK,ship-records)

backups: ## List the env's backups: complete or not, size, key id (read-only; needs no host)
	@$(call RUNBOOK,backups)

restore: ## Restore BACKUP=<id> (default: latest complete): verified first, then swapped in after a confirmation
	@$(call RUNBOOK,restore)

restore-drill: ## Restore the latest backup into a scratch database, verify it, time each phase; nothing live changes
	@$(call RUNBOOK,restore-drill)

prune-backups: ## Retention from backup.keep: shows what it would delete; APPLY=1 deletes
	@$(call RUNBOOK,prune-backups)

bench-pitr: deps ## Benchmark: a row every 100 ms on droplet A, A destroyed, emergency restores the archived WAL (rpo_s; JSON line at the end)
	@$(TSX) test/bench/pitr.ts

bench-backup: deps ## Benchmark: backup and verified restore of a >= 1 GB database vs a plain pg_dump (JSON line at the end)
	@$(TSX) test/bench/backup.ts

dns: ## Cloudflare records, TLS settings, origin certificate and ranges: shows the plan; APPLY=1 makes it so
	@$(call RUNBOOK,dns)

health: ## Every health check (domains, latency, TLS, headers, containers, services, disk, backup, deploy); JSON=1 for machines
	@$(call RUNBOOK,health)

bench-health: deps ## Benchmark: a full make health, and a dying service to the alert arriving (JSON line at the end)
	@$(TSX) test/bench/health.ts

bench-outside-in: deps ## Benchmark: two envs watch each other, droplet A killed: B's outside alert, the heartbeat's silence notice, make uptime's outside view, the status page in Chromium (JSON line at the end)
	@$(TSX) test/bench/outside-in.ts

bench-oncall: deps ## Benchmark: restore's maintenance pause under load, rotate-secret under load, make logs' first line, images kept, instant rollback (JSON line at the end)
	@$(TSX) test/bench/oncall.ts

uptime: ## Availability vs the 99.9% budget, from the host and from outside, p50/p95 and trend, 5xx/restarts/error lines (DAYS=30, JSON=1, HTML=1 for the charts; read-only)
	@$(call RUNBOOK,uptime)

status-page: ## The public status page (90-day bars from outside and the host, p95, incidents, deploys) rendered and published to status_page's store
	@$(call RUNBOOK,status-page)

report: ## The month's delivery figures from the records in the backup store: deploys, success rate, lead time, change failure rate, time to restore, uptime and error budget (MONTH=YYYY-MM, JSON=1; Markdown and HTML in reports/)
	@$(call RUNBOOK,report)

security-scan: ## ssh-audit, testssl (every domain through the edge), nmap (every port of each host), lynis inside each host, npm audit (and cargo audit with WORKSPACE=), against the env file's security: thresholds; exit 4 on a finding [JSON=1]
	@$(call RUNBOOK,security-scan)
loadtest: ## Load every domain through the edge with autocannon (RPS=50, production 5 and confirmed; DURATION=60s; URL_PATH=/): p50/p95/p99, throughput, errors; fails when p95 >= 2 s or errors > 1%
	@$(call RUNBOOK,loadtest)

incident: ## The incident register: OPEN="..." (SEVERITY=, DETECTED=, PERSONAL_DATA=1), UPDATE=/MITIGATED=/RESOLVE="..." (ID=); without one: the open incidents; the LGPD clock when personal data may be involved
	@$(call RUNBOOK,incident)

rehearse-migration: ## RELEASE=<sha>'s migrations on a masked copy of the latest backup (BACKUP=<id>) in a scratch database: rows and constraints compared; exit 4 when they fail; nothing live changes (JSON=1)
	@$(call RUNBOOK,rehearse-migration)

emergency: ## The droplet is gone: CREATE=1 (or HOST=<ip> HOST_KEY=<fp>) -> setup, deploy, restore, gates, DNS, verify; resumable
	@$(call RUNBOOK,emergency)

image: ## The env's golden image: a builder droplet set up by setup-server, sealed, snapshotted at DigitalOcean; emergency starts from it (KEEP_BUILDER=1)
	@$(call RUNBOOK,image)

drill-emergency: deps ## Benchmark: make image, droplet A destroyed, make emergency CREATE=1 brings B up from the golden image (ROWS=500000, DB_GB=10: a 10 GiB database, GOLDEN=0: from the distribution; JSON line at the end)
	@$(TSX) test/bench/emergency.ts

gates: ## Quality gates of a Rust workspace (WORKSPACE=., MIGRATIONS=migrations): fmt, clippy, check, test, audit, migrations on a scratch Postgres
	@$(call RUNBOOK,gates)

heartbeats: ## The dead man's switch: create or update each job's check at Healthchecks (DRY_RUN=1 to see), show which went silent (exit 3)
	@$(call RUNBOOK,heartbeats)

alert: ## Tell the team something failed (TITLE="...", PAGE=docs/runbooks/...): the env's notify targets for `alert`
	@$(call RUNBOOK,alert)

bench-pipeline: deps ## Benchmark: the staging pipeline's local stages: gates, build, deploy to a sandbox droplet (JSON line at the end)
	@$(TSX) test/bench/pipeline.ts

rehearse-pipeline: deps ## Rehearsal: the app's pipelines (docs/ci/*.yml) and these reusable workflows end to end, by GitHub's parser and evaluator, on the committed staging and production; JSON line at the end
	@$(TSX) test/bench/rehearse-pipeline.ts

rehearse: deps ## Rehearsal: the COMMITTED env file (ENV=production|staging) end to end on the sandbox, only addresses overridden; testssl (SHORT=1 skips it); JSON line at the end
	@$(TSX) test/bench/rehearse.ts --env "$$ENV"
