"""Images for labs, made without a registry: a Debian base from debootstrap, a tiny busybox
image for light machines, and the gateway image built on the base from wheels made here."""
