# syntax=docker/dockerfile:1
# The gate sidecar image: `docker build -t ghcr.io/canary-gate/gate-sidecar:0.1.0 .`
#
# Stage 1 builds wheels (the project's and its dependencies'); stage 2 installs them into a
# slim Python with no build tools, no pip and no source tree, running as UID 65532 on a
# read-only root filesystem (only /tmp is written, an emptyDir in deploy/sidecar).

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY canarygate ./canarygate
COPY kubectl_gate ./kubectl_gate
COPY gate_sidecar ./gate_sidecar
# Our wheel plus a wheel for every dependency, so the runtime stage installs offline.
RUN python -m pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="gate-sidecar" \
      org.opencontainers.image.description="Canary Gate sidecar: answers Flagger webhooks from CanaryGate state" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    TMPDIR=/tmp
# pip compiles the .pyc files here, at build time, so nothing is written at run time.
# The wheels are bind-mounted from the builder, so they never land in a layer; pip,
# setuptools and wheel are removed afterwards: the runtime has no build or install tools.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels canary-gate \
    && python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 65532 gate \
    && useradd --system --uid 65532 --gid 65532 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin gate
WORKDIR /tmp
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["gate-sidecar"]
