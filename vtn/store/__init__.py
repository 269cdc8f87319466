"""The VTN's persistence: tables, one repository per aggregate, and the `Store` that opens
transactions. Repositories map rows to `oadr.model` / `vtn` records and back; they decide
nothing."""
