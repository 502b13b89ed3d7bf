"""The lab's DNS server: authoritative for the lab's names, a forwarder for the rest."""
