"""Labs: one private network world each: a subnet, a domain, a gateway and machines."""
