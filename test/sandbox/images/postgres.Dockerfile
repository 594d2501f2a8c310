# PostgreSQL 15 from Debian's packages, accepting the official image's variables.
ARG BASE
FROM ${BASE}
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-common \
 && sed -ri 's/#?create_main_cluster = .*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
 # zstd, as the official postgres image carries it: backups compress the dump and the base with it.
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends zstd \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/locale/* \
 # The sandbox's droplets store images with Docker's vfs driver (full copies), so size matters: drop
 # LLVM (JIT is turned off at initdb) and the perl wrappers (we call the binaries in PATH directly).
 && dpkg --purge --force-depends libllvm14 libz3-4 perl perl-modules-5.36 libperl5.36 locales 2>/dev/null
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
