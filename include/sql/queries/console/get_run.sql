SELECT r.run_id, r.dag_run_id, r.trigger, r.status, r.created_by, r.conf, r.created_at, r.updated_at,
       r.timings_s, (SELECT count(*) FROM payouts.payout_items i WHERE i.run_id = r.run_id) AS items,
       a.decision AS approval_decision, a.decided_by AS approved_by, a.policy AS approval_policy,
       a.decided_at AS approved_at
FROM payouts.runs r LEFT JOIN payouts.approvals a USING (run_id) WHERE r.run_id = %s
