"""The payout run, stage by stage, without Airflow.

- stages.py: open, snapshot + reserve (each item's rail decided), the gate's record, the row
  checks, FX and the batch plan
- approval.py: thresholds, the approval view, the audited release and four eyes
- submit.py: write-ahead attempts, submission through the batch's connector, answers by
  reason class, the fallback wave, resolving and polling what is not final
- stops.py: kill switches and funding pauses, for a run or a rail
- summary.py: the run's finish and its summary
"""
