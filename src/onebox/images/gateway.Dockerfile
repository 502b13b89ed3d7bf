# The gateway image: the lab's first container. onebox.images.gateway builds it from wheels
# made on the host, because no package index answers from inside containers.
FROM onebox/base:bookworm

# First and alone, so that Docker's cache keeps it across every change to onebox itself.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates iproute2 procps nginx openssh-client \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

# Settings before files: each step after a changed one runs again, even one that only sets
# metadata, and onebox's wheel changes with every edit.
ENV PATH=/opt/onebox/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/opt/onebox/bin/onebox-gateway", "health"]
ENTRYPOINT ["/opt/onebox/bin/onebox-gateway"]
CMD ["run"]

# Dependencies change less often than onebox, so they get their own cached layers.
COPY wheels/deps/ /wheels/
RUN python3 -m venv /opt/onebox \
    && /opt/onebox/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \
        /wheels/*.whl

COPY wheels/onebox/ /wheels/
RUN /opt/onebox/bin/pip install --no-index --no-cache-dir --disable-pip-version-check \
        --find-links /wheels onebox
