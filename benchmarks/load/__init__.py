"""Parts of the VTN load benchmark (`benchmarks.vtn_load`): PKI, servers, client, report."""
