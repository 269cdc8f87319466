"""Privacy-preserving metering data service: consent, anonymised access, audit (issue 13).

Prosumers decide who sees their metering data, for what purpose and how finely
(`consent`); recipients see individual series only under per-recipient pseudonyms
(`pseudonyms`) and otherwise only aggregates that pass the 15/15 and differencing rules
(`anonymity`), optionally with differential-privacy noise against a budget (`privacy`,
`noise`). Readings are stored as one AES-GCM blob per prosumer-day under the prosumer's own
key, wrapped by a master key kept outside the database (`crypto`, `keys`), so erasure is
crypto-shredding. Every access, allowed or refused, lands in an append-only log.

Threat model, in short (docs/data-service.md has the table): a recipient gets no more than its
live grants allow; recipients cannot link pseudonyms; a database or backup thief gets
ciphertext and metadata, not readings; history cannot be rewritten through the service's own
code or database role (triggers); residual risks are colluding recipients and multi-query
linear attacks (use DP), pre-erasure backups (until they expire or the master key is rotated),
and the VTN's plaintext readings until they are ingested with `--purge-source`.

Pure: consent, anonymity, pseudonyms, privacy, series. Adapters: crypto, keys, noise, store/,
service, queries, ingest, jobs, http (the VTN extension), cli.
"""
