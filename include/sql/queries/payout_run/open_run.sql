-- Create the payout run owned by one Airflow DAG run, or find it on a retry.
WITH created AS (
    INSERT INTO payouts.runs (run_id, dag_run_id, trigger, conf)
    SELECT 'R' || lpad(n::text, 6, '0'), %(dag_run_id)s, %(trigger)s, %(conf)s
    FROM (SELECT nextval('payouts.run_no_seq') AS n) seq
    WHERE NOT EXISTS (SELECT 1 FROM payouts.runs WHERE dag_run_id = %(dag_run_id)s)
    ON CONFLICT (dag_run_id) DO NOTHING
    RETURNING run_id
)
SELECT run_id FROM created
UNION ALL
SELECT run_id FROM payouts.runs WHERE dag_run_id = %(dag_run_id)s
LIMIT 1
