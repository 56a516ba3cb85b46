# Relay as a container: python:3.11-slim, a non-root user, a health check on /healthz.
#   docker build -t relay .
#   docker run -p 8080:8080 -e RELAY_KEY=sk-change-me relay
# The configuration is /etc/relay/relay.toml (deploy/relay.toml; mount your own over it). The SQLite store, when
# no RELAY_STORE_URL is given, is in the /var/lib/relay volume. docker-compose.yml adds PostgreSQL and Redis.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY relay ./relay
RUN python -m pip install . && rm -rf /src

RUN groupadd --system --gid 10001 relay \
    && useradd --system --uid 10001 --gid relay --home-dir /var/lib/relay --shell /usr/sbin/nologin relay \
    && mkdir -p /etc/relay /var/lib/relay \
    && chown relay:relay /var/lib/relay
COPY deploy/relay.toml /etc/relay/relay.toml

USER relay:relay
WORKDIR /var/lib/relay
VOLUME ["/var/lib/relay"]
EXPOSE 8080

# No curl in the slim image: Python asks /healthz (200 while the process serves; no key needed).
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# SIGTERM (docker stop) drains in-flight requests for up to [limits] shutdown_grace seconds.
STOPSIGNAL SIGTERM
CMD ["relay", "serve", "--config", "/etc/relay/relay.toml"]
