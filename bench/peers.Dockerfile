# The peers onebox is measured against, from Debian, in one image: dnsmasq, nginx (also the
# backend web server), HAProxy, tinyproxy and squid. Each container of it runs one of them
# with a configuration the benchmark writes into it before it starts.
FROM onebox/base:bookworm
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       dnsmasq nginx haproxy tinyproxy squid \
    && apt-get clean && rm -rf /var/lib/apt/lists/* \
    && rm -f /etc/nginx/sites-enabled/default
