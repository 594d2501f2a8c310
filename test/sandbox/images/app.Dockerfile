# One fixture service (site, saas or api) of one release: the std-only binary and its three libraries.
FROM scratch
ARG SERVICE
ARG RELEASE
ARG BROKEN=0
COPY rootfs/ /
COPY migrations/ /migrations/
ENV PORT=8080 APP_RELEASE=${RELEASE} APP_BROKEN=${BROKEN} APP_SERVICE=${SERVICE}
LABEL org.opencontainers.image.revision=${RELEASE} org.opencontainers.image.title=${SERVICE}
USER 65534:65534
EXPOSE 8080
HEALTHCHECK --interval=2s --timeout=3s --start-period=2s --retries=3 CMD ["/app", "healthcheck"]
ENTRYPOINT ["/app"]
