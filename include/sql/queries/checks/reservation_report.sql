SELECT
    coalesce(i.currency, o.currency) AS currency,
    coalesce(i.items_count, 0) AS items_count,
    coalesce(i.items_total, 0) AS items_total,
    coalesce(i.reserved_count, 0) + coalesce(o.orphan_count, 0) AS reserved_count,
    coalesce(i.reserved_total, 0) + coalesce(o.orphan_total, 0) AS reserved_total,
    coalesce(i.payable_total, 0) + coalesce(o.orphan_payable_total, 0) AS payable_total,
    coalesce(o.orphan_count, 0) AS orphan_reservations,
    coalesce(i.items_count, 0) - coalesce(i.reserved_count, 0) - coalesce(o.orphan_count, 0) AS count_diff,
    coalesce(i.items_total, 0) - coalesce(i.reserved_total, 0) - coalesce(o.orphan_total, 0) AS total_diff,
    coalesce(i.items_mismatched, 0) AS items_mismatched
FROM (
    SELECT currency,
           count(*) AS items_count,
           sum(amount_minor)::bigint AS items_total,
           count(reserved_minor) AS reserved_count,
           coalesce(sum(reserved_minor), 0)::bigint AS reserved_total,
           coalesce(sum(payable_minor), 0)::bigint AS payable_total,
           count(*) FILTER (WHERE reserved_minor IS DISTINCT FROM amount_minor
                               OR payable_minor IS DISTINCT FROM amount_minor
                               OR stray_postings > 0) AS items_mismatched
    FROM (
        SELECT it.item_id, it.currency, it.amount_minor,
               (-sum(p.amount_minor) FILTER (WHERE p.account = 'reserved' AND p.currency = it.currency))::bigint
                   AS reserved_minor,
               (sum(p.amount_minor) FILTER (WHERE p.account = 'payable' AND p.currency = it.currency))::bigint
                   AS payable_minor,
               count(p.posting_id) FILTER (WHERE p.account NOT IN ('reserved', 'payable')
                                              OR p.currency <> it.currency) AS stray_postings
        FROM payouts.payout_items it
        LEFT JOIN ledger.postings p ON p.txn_id = 'reserve:' || it.item_id
        WHERE it.run_id = {run}
        GROUP BY it.item_id, it.currency, it.amount_minor
    ) per_item
    GROUP BY currency
) i
FULL JOIN (
    SELECT p.currency,
           count(DISTINCT p.txn_id) AS orphan_count,
           coalesce(-sum(p.amount_minor) FILTER (WHERE p.account = 'reserved'), 0)::bigint AS orphan_total,
           coalesce(sum(p.amount_minor) FILTER (WHERE p.account = 'payable'), 0)::bigint AS orphan_payable_total
    FROM ledger.postings p
    WHERE starts_with(p.txn_id, 'reserve:' || {run} || '-')
      AND NOT EXISTS (SELECT 1 FROM payouts.payout_items x
                      WHERE x.item_id = substr(p.txn_id, 9) AND x.run_id = {run})
    GROUP BY p.currency
) o ON o.currency = i.currency
