"""A bank host-to-host: pain.001 files over SFTP, pain.002 and camt back (connector kind `bank_h2h`)."""
