"""Scale-out on Ray: see `vidmatte.distributed.driver`."""
