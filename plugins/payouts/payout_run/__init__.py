"""The payout run, stage by stage, without Airflow.

- stages.py: open, snapshot + reserve, the gate's record, the row checks, FX, routing and the
  batch plan, the run's finish and summary
- approval.py: thresholds, the audited decisions and four eyes
- submit.py: stops, write-ahead attempts, submission through the batch's connector, answers by
  reason class, the fallback wave, resolving and polling what is not final
"""
