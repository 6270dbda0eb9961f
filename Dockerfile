# Every Python image of the service, one target each; build from the repository root with BuildKit
# (it builds only the stages a target needs):
#   gateway            the Flask gateway, no TensorFlow
#   fallback           MobileNetV3-Large on our LiteRT server (CPU)
#   primary-litert     WRN-50-2 with the dynamic-range int8 export on our LiteRT server, for CPU-only
#                      hosts and tests (150 ms per image on 2 cores against 211 ms for the SavedModel
#                      on TensorFlow's CPU kernels)
#   primary-tfserving  TensorFlow Serving on a GPU with the WRN-50-2 SavedModel, batching, Prometheus
#   certs              the one-shot local CA of compose's mtls profile (compose.mtls.yaml)
# e.g.  docker build --target fallback --build-arg WEIGHTS=random -t classifier/fallback:0.1.0 .
# WEIGHTS=imagenet (default) downloads the weights at build time; random works offline.
# TFSERVING_BASE: primary-tfserving's base; CI builds it on the CPU image of the same version
# (tensorflow/serving:2.21.0) to start the shipped image on a runner without a GPU.
ARG TFSERVING_BASE=tensorflow/serving:2.21.0-gpu
ARG WEIGHTS=imagenet

# Each image installs only its own Pipfile.lock category, into /install for COPY into a slim stage.
FROM python:3.11-slim AS installer
WORKDIR /src
COPY Pipfile.lock tools/lock_requirements.py tools/install_locked.sh ./

FROM installer AS gateway-deps
RUN sh install_locked.sh gateway /install

FROM installer AS certs-deps
RUN sh install_locked.sh certs /install

FROM installer AS server-deps
RUN sh install_locked.sh server /install

FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app

FROM runtime AS gateway
COPY --from=gateway-deps /install /usr/local
COPY common/ common/
COPY protocol/ protocol/
COPY gateway/ gateway/
USER 10001
# Probes and scrapes go to PROBE_PORT, where /classify traffic cannot starve them (README "Probes
# under load"); the healthcheck follows PROBE_PORT if a deployment moves or empties it.
ENV PROBE_PORT=8081
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('PROBE_PORT') or os.environ.get('PORT') or '8080'; sys.exit(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["python", "-m", "gateway"]

FROM runtime AS certs
RUN mkdir /certs && chown 10001:10001 /certs
COPY --from=certs-deps /install /usr/local
COPY protocol/ protocol/
COPY tools/__init__.py tools/certificates.py tools/
USER 10001
ENTRYPOINT ["python", "-m", "tools.certificates"]
CMD ["--out", "/certs", "--server", "primary", "--server", "fallback", "--client", "gateway"]

# The exports run on the build machine's platform: their .tflite/SavedModel files are the same for
# every target platform, and TensorFlow under emulation (an arm64 build on amd64) is slow or absent.
# (Its own install: the target platform's wheels in "installer" would not run here.)
FROM --platform=$BUILDPLATFORM python:3.11-slim AS exporter
WORKDIR /src
COPY Pipfile.lock tools/lock_requirements.py tools/install_locked.sh ./
RUN sh install_locked.sh export
COPY protocol/ protocol/
COPY models/__init__.py models/
COPY models/export/ models/export/

FROM exporter AS primary-export
ARG WEIGHTS
RUN python -m models.export --model wide_resnet50_2 --weights "${WEIGHTS}" --out /export

FROM exporter AS fallback-export
ARG WEIGHTS
RUN python -m models.export --model mobilenet_v3_large --weights "${WEIGHTS}" --no-int8 --out /export

# Our LiteRT server, speaking TF-Serving's REST and gRPC; the model targets add their model.
FROM runtime AS litert
ENV MODEL_BASE_PATH=/models MONITORING_CONFIG_FILE=/config/monitoring.config
COPY --from=server-deps /install /usr/local
COPY common/ common/
COPY protocol/ protocol/
COPY models/__init__.py models/
COPY models/server/ models/server/
# The same Prometheus endpoint as the TF-Serving primary: one monitoring.config for every server.
COPY models/primary/monitoring.config /config/
USER 10001
EXPOSE 8500 8501
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(b'AVAILABLE' not in urllib.request.urlopen('http://127.0.0.1:8501/v1/models/' + os.environ['MODEL_NAME'], timeout=2).read())"]
ENTRYPOINT ["python", "-m", "models.server"]

# Batching off: through the whole stack it gained nothing beyond noise and cost ~80 MB of RSS
# (docs/benchmarks.md "Peer comparison (issue 15)"); ENABLE_BATCHING=true
# BATCHING_PARAMETERS_FILE=/config/batching.config turns it on.
FROM litert AS fallback
ENV MODEL_NAME=mobilenet_v3_large INTERPRETER_THREADS=1
COPY models/fallback/batching.config /config/
COPY --from=fallback-export /export/mobilenet_v3_large/1/model.tflite /export/mobilenet_v3_large/1/manifest.json \
     /models/mobilenet_v3_large/1/

# Server-side batching, measured in docs/benchmarks.md "Model server batching (issue 15)"; the
# primary-tfserving target's batching.config: one file for both servers.
FROM litert AS primary-litert
ENV MODEL_NAME=wide_resnet50_2 MODEL_FILE=model_int8.tflite \
    ENABLE_BATCHING=true BATCHING_PARAMETERS_FILE=/config/batching.config
COPY models/primary/batching.config /config/
COPY --from=primary-export /export/wide_resnet50_2/1/model_int8.tflite /export/wide_resnet50_2/1/manifest.json \
     /models/wide_resnet50_2/1/

FROM ${TFSERVING_BASE} AS primary-tfserving
ENV MODEL_NAME=wide_resnet50_2 MODEL_BASE_PATH=/models
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin serving
COPY --from=primary-export /export/wide_resnet50_2/1/saved_model.pb /export/wide_resnet50_2/1/fingerprint.pb \
     /export/wide_resnet50_2/1/manifest.json /models/wide_resnet50_2/1/
COPY --from=primary-export /export/wide_resnet50_2/1/variables/ /models/wide_resnet50_2/1/variables/
COPY models/primary/batching.config models/primary/monitoring.config /config/
USER 10001
EXPOSE 8500 8501
# The image has no curl or wget; bash's /dev/tcp asks the REST status endpoint.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8501 && printf 'GET /v1/models/wide_resnet50_2 HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q AVAILABLE <&3"]
# tf_serving_entrypoint.sh adds --port=8500 --rest_api_port=8501 --model_name --model_base_path.
CMD ["--enable_batching=true", "--batching_parameters_file=/config/batching.config", \
     "--monitoring_config_file=/config/monitoring.config"]
