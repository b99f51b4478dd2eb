"""What developers and operators run around the runtime, never imported by an Airflow worker.

- cli.py: the `payouts` command
- airflow_runner.py, airflow_env.py: `payouts run` drives a full payout and reconciliation in Airflow
- airflow_standalone.py: `make airflow`, Airflow and the console on this machine
- cluster.py: the no-Docker cluster (CeleryExecutor, Redis, several workers) of docs/cluster.md
- seed.py: the synthetic platform (recipients and their earnings) that `payouts run` and the benchmarks pay
"""
