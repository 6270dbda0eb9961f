# One-shot maker of a local CA and certificates for compose's mtls profile (compose.mtls.yaml).
# Build from the repository root:  docker build -f tools/certificates.Dockerfile -t classifier/certs:0.1.0 .
FROM python:3.11-slim AS deps
WORKDIR /src
COPY Pipfile.lock tools/lock_requirements.py tools/install_locked.sh ./
RUN sh install_locked.sh certs /install

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin certs \
    && mkdir /certs && chown 10001:10001 /certs
COPY --from=deps /install /usr/local
WORKDIR /app
COPY protocol/ protocol/
COPY tools/__init__.py tools/certificates.py tools/
USER 10001
ENTRYPOINT ["python", "-m", "tools.certificates"]
CMD ["--out", "/certs", "--server", "primary", "--server", "fallback", "--client", "gateway"]
