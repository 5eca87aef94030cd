# syntax=docker/dockerfile:1
#
# augsvc service image (CUDA). Build from the repository root:
#   docker build -t augsvc:0.1.0 .
# Runs on a GPU host with the NVIDIA container toolkit (docker run --gpus all ...), and on a
# CPU-only host too (AUGSVC_DEVICE=auto falls back to the CPU).
#
# Base image: the official PyTorch CUDA *runtime* image, pinned by tag. It already holds a
# CUDA build of torch + torchvision that matches its CUDA/cuDNN libraries, which is the part
# that is large and easy to get wrong; everything augsvc adds on top is small, pure-Python
# or manylinux wheels. "runtime" (not "devel"): no compiler or CUDA headers are needed,
# nothing here builds CUDA code. CUDA 12.8 runs on Hopper and Blackwell GPUs and, through
# CUDA minor-version compatibility, on any host driver of the 12.x series (>= 525).
# Python in this image is 3.11 (augsvc requires >= 3.11; pip refuses otherwise).
# To move to a newer torch, change this tag only: the install below adapts to it.
ARG BASE_IMAGE=pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime

# ---- build: the augsvc and SDK wheels, built away from the final image (no sources left) ----
# `augsvc recipe` is built on the SDK (clients/python), so the service wheel depends on it.
FROM ${BASE_IMAGE} AS build
# The optional JPEG region decoder (augsvc/codec/_jpeg_region.c) compiles against the
# system's libjpeg-turbo; the distribution's current packages are wanted, not a pin.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libjpeg-turbo8-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY augsvc ./augsvc
COPY clients/python/pyproject.toml clients/python/README.md ./clients/python/
COPY clients/python/augsvc_client ./clients/python/augsvc_client
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . ./clients/python

# ---- runtime ----
FROM ${BASE_IMAGE}

# The region decoder's one runtime library.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libjpeg-turbo8 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# torch handling. constraints.txt pins the reference machine's exact versions, including
# torch==2.14.1 / torchvision==0.29.1, a CPU/CUDA-13 pair that is not the torch of this base
# image. Installing with those pins would replace the base image's CUDA torch by a different
# multi-GB build (or fail to resolve), so:
#   1. drop the torch / torchvision lines from the constraints, and
#   2. pin torch / torchvision to exactly the versions the base image ships (read from the
#      installed distributions, local tag such as +cu128 included).
# Every other dependency keeps its constraints.txt pin, and pip can never swap the CUDA torch
# behind our back: if a pinned dependency ever needs a newer torch than the base image has
# (pyproject: torch>=2.4, kornia 0.9 needs >=2.5.1), the build fails here, loudly, and the fix
# is a newer BASE_IMAGE. The final import check catches a torch/torchvision ABI mismatch.
COPY constraints.txt /tmp/constraints.txt
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    grep -viE '^(torch|torchvision)==' /tmp/constraints.txt > /tmp/constraints-image.txt \
    && python -c "from importlib.metadata import version as v; print(f'torch=={v(\"torch\")}'); print(f'torchvision=={v(\"torchvision\")}')" \
       >> /tmp/constraints-image.txt \
    && pip install --no-cache-dir -c /tmp/constraints-image.txt --find-links /wheels "$(echo /wheels/augsvc-*.whl)[s3,coco]" \
    && python -c "import torch, torchvision, kornia, botocore, pycocotools.mask, augsvc.api.app; from augsvc.codec import jpeg_region; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'region decoder', jpeg_region.AVAILABLE)" \
    && rm /tmp/constraints.txt /tmp/constraints-image.txt

# Non-root user with a fixed UID/GID (the Kubernetes securityContext and any host volume
# permissions refer to 10001). HOME is /tmp: the only writable place when the root filesystem
# is read-only (Kubernetes mounts an emptyDir there, compose a tmpfs), and where CUDA's JIT
# cache and torch's cache directories go.
RUN groupadd --system --gid 10001 augsvc \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /tmp \
       --shell /usr/sbin/nologin augsvc
ENV HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    CUDA_CACHE_PATH=/tmp/.nv/ComputeCache

# Service defaults; every AUGSVC_* setting can be overridden at run time (see README).
# auto = the GPU when the container sees one, else the CPU.
ENV AUGSVC_DEVICE=auto \
    AUGSVC_ENGINE_THREADS=1 \
    AUGSVC_QUEUE_DEPTH=8

USER 10001:10001
WORKDIR /tmp
EXPOSE 8000

# /healthz is liveness only (never touches Redis or the GPU). python, since the image has no
# curl; urlopen raises, so the check fails, on a refused connection, a timeout or non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# SIGTERM: uvicorn stops accepting, lets in-flight requests and streams finish for up to
# 30 s (augsvc.cli.serve.GRACEFUL_SHUTDOWN_S), then exits. Give it more than that:
# docker stop -t 45 / compose stop_grace_period 45s / Kubernetes terminationGracePeriodSeconds.
# Exec form: augsvc is PID 1 and receives the signal itself.
STOPSIGNAL SIGTERM
CMD ["augsvc", "serve", "--host", "0.0.0.0", "--port", "8000"]
