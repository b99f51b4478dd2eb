"""The sandbox's bank mode: a bank host-to-host over a real SFTP server (asyncssh) on loopback."""
