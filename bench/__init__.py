"""The benchmark suite: onebox measured side by side with the tools it stands in for
(docker run, dnsmasq, nginx, HAProxy, tinyproxy, squid), written to bench/RESULTS.md by
`bench/run`. Nothing here is a test and nothing in tests/ asserts a time."""
