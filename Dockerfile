# Same steps as `make install`: a venv in /app/.venv with the project installed.
# (Not built on the development machines: they have no Docker engine.)
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN make install PYTHON=python3
ENV PATH="/app/.venv/bin:${PATH}"
ENTRYPOINT ["sealcheck"]
CMD ["--help"]
