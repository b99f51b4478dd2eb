"""Airflow glue: what the DAGs call, and the executors.

- tasks.py: one function per DAG task (connection, timing, the call)
- hitl.py: the approval steps, with the Human-in-the-loop FourEyesApprovalOperator
- executors.py: the executor that keeps a task's workload apart
"""
