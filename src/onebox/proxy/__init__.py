"""The gateway's proxies: the reverse proxy that gives every machine a URL by name (nginx,
driven from here) with HTTPS from the lab's certificate authority, and the forward proxy
(HTTP CONNECT, SOCKS5, PAC file) that lets LAN neighbours reach lab machines."""
